"""DeLong's AUROC variance against a brute-force computation, and its interval against the
bootstrap's on a set large enough to use it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dashboard.services import auroc_interval
from dashboard.services.auroc_interval import auroc_estimate, delong_auroc, delong_variance
from dashboard.services.metrics import MetricsError, bootstrap_auroc


def _brute_delong(scores: np.ndarray, positives: np.ndarray) -> tuple[float, float]:
    pos, neg = scores[positives], scores[~positives]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
    return float(kernel.mean()), v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size


def _separated(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    positives = rng.random(n) < 0.15
    scores = rng.normal(size=n) + shift * positives
    return np.round(scores, 2), positives  # rounded: ties between and within classes


def test_delong_variance_equals_the_pairwise_definition() -> None:
    scores, positives = _separated(np.random.default_rng(4), 300, 1.0)
    auroc, variance = delong_variance(scores, positives)
    expected_auroc, expected_variance = _brute_delong(scores, positives)
    assert auroc == pytest.approx(roc_auc_score(positives, scores), abs=1e-12)
    assert auroc == pytest.approx(expected_auroc, abs=1e-12)
    assert variance == pytest.approx(expected_variance, rel=1e-9)


def test_delong_and_bootstrap_intervals_agree_on_a_large_set() -> None:
    scores, positives = _separated(np.random.default_rng(5), 6000, 1.2)
    boot = bootstrap_auroc(scores, positives, n_boot=1000, seed=1)
    normal = delong_auroc(scores, positives, seed=1)
    assert normal.auroc == pytest.approx(boot.auroc, abs=1e-12)
    assert normal.low == pytest.approx(boot.low, abs=0.004)
    assert normal.high == pytest.approx(boot.high, abs=0.004)
    # The draws stand for the estimate's spread (the mean row's interval averages them).
    assert np.std(normal.replicates) == pytest.approx(np.std(boot.replicates), rel=0.1)


def test_the_estimate_bootstraps_small_sets_and_uses_delong_above_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scores, positives = _separated(np.random.default_rng(6), 400, 1.0)
    small = auroc_estimate(scores, positives, n_boot=200, seed=2)
    np.testing.assert_array_equal(
        small.replicates, bootstrap_auroc(scores, positives, n_boot=200, seed=2).replicates
    )
    monkeypatch.setattr(auroc_interval, "BOOTSTRAP_MAX_IMAGES", 399)
    large = auroc_estimate(scores, positives, n_boot=200, seed=2)
    np.testing.assert_array_equal(
        large.replicates, delong_auroc(scores, positives, n_draws=200, seed=2).replicates
    )
    assert (large.low, large.high) != (small.low, small.high)


def test_delong_refuses_one_class_and_a_bad_confidence() -> None:
    with pytest.raises(MetricsError, match="both anomalous and normal"):
        delong_auroc(np.array([0.1, 0.2]), np.array([True, True]))
    with pytest.raises(MetricsError, match="confidence"):
        delong_auroc(np.array([0.1, 0.9]), np.array([False, True]), confidence=1.5)


def test_perfect_separation_has_a_degenerate_delong_interval() -> None:
    estimate = delong_auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool))
    assert estimate.auroc == estimate.low == estimate.high == 1.0
