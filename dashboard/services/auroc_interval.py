"""AUROC intervals that stay quick on large labelled sets: the stratified bootstrap up to
:data:`BOOTSTRAP_MAX_IMAGES` images, DeLong's normal interval above it.

At that size the two agree to a fraction of a point (the tests check it), while the bootstrap's
cost grows with the images times the resamples (``bench/results/browser-pages.md``: Compare's
first open at 100,000 images).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from dashboard.services.metrics import (
    AurocEstimate,
    MetricsError,
    average_ranks,
    bootstrap_auroc,
    require_both_classes,
)

BOOTSTRAP_MAX_IMAGES = 5000


def auroc_estimate(
    scores: np.ndarray,
    positives: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AurocEstimate:
    """AUROC with a 95 % interval and ``n_boot`` replicates, by the method the size allows."""
    if scores.size <= BOOTSTRAP_MAX_IMAGES:
        return bootstrap_auroc(scores, positives, n_boot=n_boot, confidence=confidence, seed=seed)
    return delong_auroc(scores, positives, n_draws=n_boot, confidence=confidence, seed=seed)


def delong_variance(scores: np.ndarray, positives: np.ndarray) -> tuple[float, float]:
    """AUROC and DeLong's variance of it, from mid-ranks (O(n log n))."""
    n_pos, n_neg = require_both_classes(positives)
    all_ranks = average_ranks(scores)
    pos_ranks = all_ranks[positives]
    neg_ranks = all_ranks[~positives]
    # Per anomalous image: the share of normal images below it (ties count one half).
    above_normals = (pos_ranks - average_ranks(scores[positives])) / n_neg
    # Per normal image: the share of anomalous images above it.
    below_anomalies = 1.0 - (neg_ranks - average_ranks(scores[~positives])) / n_pos
    auroc = float(above_normals.mean())
    variance = 0.0
    if n_pos > 1:
        variance += float(above_normals.var(ddof=1)) / n_pos
    if n_neg > 1:
        variance += float(below_anomalies.var(ddof=1)) / n_neg
    return auroc, variance


def delong_auroc(
    scores: np.ndarray,
    positives: np.ndarray,
    *,
    n_draws: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AurocEstimate:
    """AUROC with DeLong's normal interval; the replicates are draws from that normal (for the
    intervals of means over independent categories)."""
    if not 0 < confidence < 1:
        raise MetricsError(f"confidence must be between 0 and 1, got {confidence}")
    auroc, variance = delong_variance(scores, positives)
    spread = float(np.sqrt(variance))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    replicates = np.clip(np.random.default_rng(seed).normal(auroc, spread, n_draws), 0.0, 1.0)
    return AurocEstimate(
        auroc=auroc,
        low=max(0.0, auroc - z * spread),
        high=min(1.0, auroc + z * spread),
        replicates=replicates,
        n_anomalous=int(positives.sum()),
        n_normal=int(positives.size - positives.sum()),
    )
