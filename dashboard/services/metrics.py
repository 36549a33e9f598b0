"""Detection metrics in plain numpy: ROC, AUROC with a bootstrap interval, PR, confusion.

Labels are booleans (True = anomalous, the positive class). The decision rule everywhere is the
one the database uses for the model verdict: a score at or above the threshold is anomalous.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

ANOMALOUS = "anomalous"


class MetricsError(ValueError):
    """The inputs cannot give the requested metric (for example, only one class present)."""


@dataclass(frozen=True)
class Curve:
    """A ROC or PR curve: x and y values, and the threshold of each point (descending)."""

    x: np.ndarray
    y: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class Confusion:
    """Counts at one threshold and the rates derived from them."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n_anomalous(self) -> int:
        return self.tp + self.fn

    @property
    def n_normal(self) -> int:
        return self.fp + self.tn

    @property
    def precision(self) -> float:
        """Share of flagged images that are anomalous (0 when nothing is flagged)."""
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        """Share of anomalous images flagged (0 without anomalous images)."""
        return self.tp / self.n_anomalous if self.n_anomalous else 0.0

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0

    @property
    def false_alarm_rate(self) -> float:
        """Share of normal images flagged (false-positive rate)."""
        return self.fp / self.n_normal if self.n_normal else 0.0

    @property
    def miss_rate(self) -> float:
        """Share of anomalous images passed (1 - recall)."""
        return self.fn / self.n_anomalous if self.n_anomalous else 0.0

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.tn + self.fn
        return (self.tp + self.tn) / total if total else 0.0

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready counts and rates (stored with a threshold version)."""
        return {
            "threshold": float(self.threshold),
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "f1": round(self.f1, 6),
            "false_alarm_rate": round(self.false_alarm_rate, 6),
            "n_anomalous": self.n_anomalous,
            "n_normal": self.n_normal,
        }


def to_arrays(
    scores: Sequence[float] | np.ndarray, labels: Sequence[bool | str] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Float scores and boolean labels ("anomalous"/True = positive), checked for shape and NaN."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    raw = np.asarray(labels).ravel()
    positives = raw == ANOMALOUS if raw.dtype.kind in "UO" else raw.astype(bool)
    if values.shape != positives.shape:
        raise MetricsError(f"{values.size} scores but {positives.size} labels; they must match")
    if not np.all(np.isfinite(values)):
        raise MetricsError("some scores are NaN or infinite; re-score those images")
    return values, positives


def require_both_classes(positives: np.ndarray) -> tuple[int, int]:
    """(anomalous, normal) counts; a :class:`MetricsError` unless both are present."""
    n_pos = int(positives.sum())
    n_neg = int(positives.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise MetricsError(
            f"needs both anomalous and normal images; got {n_pos} anomalous and {n_neg} normal"
        )
    return n_pos, n_neg


@dataclass(frozen=True)
class Sweep:
    """Counts at every distinct score used as a threshold, highest threshold first.

    Index 0 is a threshold just above the highest score (nothing flagged); then one entry per
    distinct score, where the entry at threshold t counts the images with score >= t.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_pos: int
    n_neg: int

    @property
    def fn(self) -> np.ndarray:
        return self.n_pos - self.tp

    @property
    def tn(self) -> np.ndarray:
        return self.n_neg - self.fp

    def confusion(self, index: int) -> Confusion:
        """The confusion at entry ``index``."""
        return Confusion(
            threshold=float(self.thresholds[index]),
            tp=int(self.tp[index]),
            fp=int(self.fp[index]),
            tn=int(self.n_neg - self.fp[index]),
            fn=int(self.n_pos - self.tp[index]),
        )


def sweep(scores: np.ndarray, positives: np.ndarray) -> Sweep:
    """True and false positives for every distinct score as threshold (O(n log n))."""
    if scores.size == 0:
        raise MetricsError("no scores to sweep; review or label some images first")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    sorted_pos = positives[order]
    # Last index of each run of equal scores: all images with that score are flagged together.
    distinct = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    tps = np.cumsum(sorted_pos)[distinct]
    fps = (distinct + 1) - tps
    top = np.nextafter(sorted_scores[0], np.inf)
    return Sweep(
        thresholds=np.r_[top, sorted_scores[distinct]],
        tp=np.r_[0, tps].astype(np.int64),
        fp=np.r_[0, fps].astype(np.int64),
        n_pos=int(positives.sum()),
        n_neg=int(positives.size - positives.sum()),
    )


def roc_curve(scores: np.ndarray, positives: np.ndarray) -> Curve:
    """False-alarm rate (x) and recall (y) at every distinct threshold, from (0, 0) to (1, 1)."""
    n_pos, n_neg = require_both_classes(positives)
    result = sweep(scores, positives)
    return Curve(x=result.fp / n_neg, y=result.tp / n_pos, thresholds=result.thresholds)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], sorted_values.size]
    group_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney; a tie between classes counts one half)."""
    n_pos, n_neg = require_both_classes(positives)
    ranks = average_ranks(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass(frozen=True)
class AurocEstimate:
    """AUROC, its bootstrap interval and the bootstrap replicates (for derived intervals)."""

    auroc: float
    low: float
    high: float
    replicates: np.ndarray
    n_anomalous: int
    n_normal: int


def bootstrap_auroc(
    scores: np.ndarray,
    positives: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    chunk: int = 200,
) -> AurocEstimate:
    """AUROC with a stratified bootstrap percentile interval.

    Each replicate resamples the anomalous and the normal images separately (with replacement,
    same class sizes), so every replicate has both classes. Replicates are computed in chunks
    from per-value class counts, without sorting each resample.
    """
    n_pos, n_neg = require_both_classes(positives)
    if not 0 < confidence < 1:
        raise MetricsError(f"confidence must be between 0 and 1, got {confidence}")
    if n_boot < 1:
        raise MetricsError(f"n_boot must be at least 1, got {n_boot}")
    unique, codes = np.unique(scores, return_inverse=True)
    n_codes = unique.size
    pos_codes = codes[positives]
    neg_codes = codes[~positives]
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        offsets = (np.arange(size) * n_codes)[:, None]
        pos_pick = pos_codes[rng.integers(0, n_pos, size=(size, n_pos))] + offsets
        neg_pick = neg_codes[rng.integers(0, n_neg, size=(size, n_neg))] + offsets
        pos_hist = np.bincount(pos_pick.ravel(), minlength=size * n_codes).reshape(size, n_codes)
        neg_hist = np.bincount(neg_pick.ravel(), minlength=size * n_codes).reshape(size, n_codes)
        below = np.cumsum(neg_hist, axis=1) - neg_hist
        wins = (pos_hist * (below + 0.5 * neg_hist)).sum(axis=1)
        replicates[start : start + size] = wins / (n_pos * n_neg)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return AurocEstimate(
        auroc=auroc(scores, positives),
        low=float(low),
        high=float(high),
        replicates=replicates,
        n_anomalous=n_pos,
        n_normal=n_neg,
    )


def pr_curve(scores: np.ndarray, positives: np.ndarray) -> Curve:
    """Recall (x) and precision (y) at every distinct threshold, highest threshold first.

    The first point is (recall 0, precision 1) for a threshold above every score, as in
    scikit-learn's ``precision_recall_curve`` (read in reverse).
    """
    n_pos = int(positives.sum())
    if n_pos == 0:
        raise MetricsError("a precision-recall curve needs at least one anomalous image")
    result = sweep(scores, positives)
    flagged = result.tp + result.fp
    precision = np.divide(
        result.tp, flagged, out=np.ones(flagged.size, dtype=np.float64), where=flagged > 0
    )
    return Curve(x=result.tp / n_pos, y=precision, thresholds=result.thresholds)


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall gain) x precision, as scikit-learn."""
    curve = pr_curve(scores, positives)
    return float(np.sum(np.diff(curve.x) * curve.y[1:]))


def confusion_at(scores: np.ndarray, positives: np.ndarray, threshold: float) -> Confusion:
    """Counts at ``threshold``: score >= threshold is anomalous (the model-verdict rule)."""
    flagged = scores >= threshold
    return Confusion(
        threshold=float(threshold),
        tp=int(np.sum(flagged & positives)),
        fp=int(np.sum(flagged & ~positives)),
        tn=int(np.sum(~flagged & ~positives)),
        fn=int(np.sum(~flagged & positives)),
    )


@dataclass(frozen=True)
class BandCounts:
    """Where images fall with a review band: auto-pass (< T1), review, auto-fail (>= T2)."""

    lower: float
    upper: float
    passed: tuple[int, int]  # (anomalous, normal)
    review: tuple[int, int]
    failed: tuple[int, int]

    @property
    def total(self) -> int:
        return sum(self.passed) + sum(self.review) + sum(self.failed)

    @property
    def review_share(self) -> float:
        """Share of images routed to a person."""
        return sum(self.review) / self.total if self.total else 0.0

    @property
    def missed_defect_rate(self) -> float:
        """Share of anomalous images that pass automatically."""
        anomalous = self.passed[0] + self.review[0] + self.failed[0]
        return self.passed[0] / anomalous if anomalous else 0.0

    @property
    def false_alarm_rate(self) -> float:
        """Share of normal images that fail automatically."""
        normal = self.passed[1] + self.review[1] + self.failed[1]
        return self.failed[1] / normal if normal else 0.0

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready summary (stored with a review-band threshold version)."""
        return {
            "t1": float(self.lower),
            "t2": float(self.upper),
            "auto_pass_anomalous": self.passed[0],
            "auto_pass_normal": self.passed[1],
            "review_anomalous": self.review[0],
            "review_normal": self.review[1],
            "auto_fail_anomalous": self.failed[0],
            "auto_fail_normal": self.failed[1],
            "review_share": round(self.review_share, 6),
            "missed_defect_rate": round(self.missed_defect_rate, 6),
            "false_alarm_rate": round(self.false_alarm_rate, 6),
        }


def band_counts(
    scores: np.ndarray, positives: np.ndarray, lower: float, upper: float
) -> BandCounts:
    """Counts per class in the three zones of a review band (T1 <= T2)."""
    if upper < lower:
        raise MetricsError(f"T2 ({upper}) is below T1 ({lower}); T1 must not exceed T2")
    passed = scores < lower
    failed = scores >= upper
    review = ~passed & ~failed

    def split(zone: np.ndarray) -> tuple[int, int]:
        return int(np.sum(zone & positives)), int(np.sum(zone & ~positives))

    return BandCounts(lower, upper, split(passed), split(review), split(failed))
