"""Score statistics of held-out normal images: a default threshold and percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Sorted scores of normal images the flow never saw, and the threshold they imply."""

    scores: tuple[float, ...]
    quantile: float
    threshold: float | None

    @classmethod
    def from_scores(cls, scores: Sequence[float] | np.ndarray, quantile: float) -> Calibration:
        """Calibrate on ``scores``; the threshold is their ``quantile`` (None when empty)."""
        values = np.sort(np.asarray(scores, dtype=np.float64))
        threshold = float(np.quantile(values, quantile)) if values.size else None
        return cls(scores=tuple(float(v) for v in values), quantile=quantile, threshold=threshold)

    def percentile(self, score: float) -> float:
        """Share (in %) of calibration normals scoring at or below ``score``; NaN without any."""
        if not self.scores:
            return math.nan
        rank = np.searchsorted(np.asarray(self.scores), score, side="right")
        return 100.0 * float(rank) / len(self.scores)

    def summary(self) -> dict[str, float]:
        """Count, mean, spread and extremes of the calibration scores."""
        if not self.scores:
            return {"count": 0.0}
        values = np.asarray(self.scores)
        return {
            "count": float(values.size),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in checkpoints and model-version rows)."""
        return {"scores": list(self.scores), "quantile": self.quantile, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        threshold = data.get("threshold")
        return cls(
            scores=tuple(float(v) for v in data.get("scores", [])),
            quantile=float(data["quantile"]),
            threshold=None if threshold is None else float(threshold),
        )
