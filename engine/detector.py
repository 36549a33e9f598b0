"""A trained detector: score images, explain them with heatmaps, save and load."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.calibration import Calibration
from engine.checkpoint import load_checkpoint, save_checkpoint, upgrade_state_dict
from engine.config import DetectorConfig
from engine.data.images import load_image
from engine.data.transforms import image_to_tensor, to_unit
from engine.device import select_device
from engine.errors import CheckpointError, ImageLoadError
from engine.inputs import ImageInput, load_images, source_name
from engine.models.attentdiffernet.gradcam import resize_heatmap
from engine.models.attentdiffernet.heatmaps import DEFAULT_HEATMAP_METHOD, compute_heatmaps
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.scoring import model_input, prepare_for_device, score_images, test_view_ids

logger = logging.getLogger(__name__)

ScoreProgress = Callable[[int, int], None]  # (images done, images total)


@dataclass(frozen=True)
class ScoreResult:
    """The score of one image; ``index`` is its position in the list given to ``score``."""

    index: int
    source: str
    score: float
    percentile: float
    threshold: float | None
    is_anomalous: bool | None


@dataclass
class ScoreBatch:
    """Scores of the readable images, and one error per image that could not be read."""

    results: list[ScoreResult] = field(default_factory=list)
    failures: list[ImageLoadError] = field(default_factory=list)

    @property
    def scores(self) -> np.ndarray:
        """The scores in input order (failed images left out)."""
        return np.array([r.score for r in self.results], dtype=np.float64)


class Detector:
    """An AttentDifferNet model with its config and calibration; the engine's main object."""

    def __init__(
        self,
        model: AttentDifferNetModel,
        config: DetectorConfig,
        calibration: Calibration,
        device: torch.device | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.device = device or select_device(config.score.device)
        self.model = prepare_for_device(model, self.device).eval()
        self.config = config
        self.calibration = calibration
        self.metadata = dict(metadata or {})

    @property
    def default_threshold(self) -> float | None:
        """The calibration threshold (a quantile of held-out normal scores)."""
        return self.calibration.threshold

    def score(
        self,
        images: Sequence[ImageInput],
        *,
        threshold: float | None = None,
        views: int | None = None,
        chunk_size: int = 16,
        on_progress: ScoreProgress | None = None,
    ) -> ScoreBatch:
        """Score ``images``; a verdict uses ``threshold`` or else the calibration default."""
        limit = self.default_threshold if threshold is None else threshold
        n_views = views or self.config.score.test_views
        view_ids = test_view_ids(self.config.model, self.config.score, n_views)
        batch = ScoreBatch()
        for start in range(0, len(images), chunk_size):
            loaded = load_images(
                images[start : start + chunk_size], self.config.model.image_size, offset=start
            )
            batch.failures.extend(loaded.failures)
            values = score_images(
                self.model, loaded.tensor, view_ids, self.device, self.config.score.batch_size
            )
            for index, name, value in zip(loaded.indices, loaded.names, values, strict=True):
                batch.results.append(self._result(index, name, float(value), limit))
            if on_progress is not None:
                on_progress(min(start + chunk_size, len(images)), len(images))
        return batch

    def score_one(self, image: ImageInput, *, threshold: float | None = None) -> ScoreResult:
        """Score one image; an unreadable image raises :class:`ImageLoadError`."""
        batch = self.score([image], threshold=threshold)
        if batch.failures:
            raise batch.failures[0]
        return batch.results[0]

    def _result(self, index: int, name: str, value: float, limit: float | None) -> ScoreResult:
        verdict = None if limit is None or math.isnan(value) else value > limit
        return ScoreResult(
            index=index,
            source=name,
            score=value,
            percentile=self.calibration.percentile(value),
            threshold=limit,
            is_anomalous=verdict,
        )

    def explain(self, image: ImageInput, method: str = DEFAULT_HEATMAP_METHOD) -> np.ndarray:
        """Heatmap (float32 in [0, 1]) at the image's own resolution (height × width).

        It highlights the regions that raise the un-rotated (identity) full-size view's Σz²;
        ``method`` is one of ``HEATMAP_METHODS`` (``engine.models.attentdiffernet.heatmaps``).
        """
        picture = load_image(image, name=source_name(image, 0))
        x01 = to_unit(image_to_tensor(picture, self.config.model.image_size)).unsqueeze(0)
        prepared = model_input(self.config.model, x01)
        heatmap = compute_heatmaps(self.model, prepared.to(self.device), method)[0]
        width, height = picture.size
        return resize_heatmap(heatmap, height, width)

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint that :func:`load_detector` and ``adn`` can load."""
        return save_checkpoint(
            path,
            config=self.config,
            calibration=self.calibration,
            state_dict=self.model.state_dict(),
            metadata={**self.metadata, **(metadata or {})},
        )


def load_detector(path: str | Path, device: str = "auto") -> Detector:
    """Load a checkpoint written by :meth:`Detector.save` (no pretrained weights file needed)."""
    data = load_checkpoint(path)
    # The checkpoint holds the whole model, backbone included: build it empty, then fill it.
    model_config = data.config.model
    model = AttentDifferNetModel(model_config, load_backbone_weights=False)
    try:
        model.load_state_dict(upgrade_state_dict(data.state_dict), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: the stored weights do not fit the stored config "
            f"(written by engine {data.versions.get('engine', '?')}): {exc}"
        ) from exc
    logger.info("loaded %s (%s/%s)", path, model_config.backbone.name, model_config.variant)
    return Detector(model, data.config, data.calibration, select_device(device), data.metadata)
