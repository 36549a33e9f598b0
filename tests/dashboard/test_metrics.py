"""The numpy metrics agree with scikit-learn and with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.metrics import roc_curve as sk_roc_curve

from dashboard.services.metrics import (
    MetricsError,
    auroc,
    average_precision,
    band_counts,
    bootstrap_auroc,
    confusion_at,
    pr_curve,
    roc_curve,
    sweep,
    to_arrays,
)


def _data(seed: int, n: int = 300, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    positives = rng.random(n) < 0.3
    scores = rng.normal(0, 1, n) + 1.2 * positives
    if ties:
        scores = np.round(scores, 1)  # many equal scores, across both classes
    return scores, positives


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, True), (2, True), (3, False)])
def test_auroc_matches_sklearn_including_ties(seed: int, ties: bool) -> None:
    scores, positives = _data(seed, ties=ties)
    assert auroc(scores, positives) == pytest.approx(roc_auc_score(positives, scores), abs=1e-12)


def test_auroc_hand_computed_tie_counts_half() -> None:
    # pairs (pos, neg): (0.5, 0.5) tie -> 1/2; (0.9, 0.5) -> 1; (0.5, 0.2) -> 1; (0.9, 0.2) -> 1
    assert auroc(np.array([0.5, 0.9, 0.5, 0.2]), np.array([1, 1, 0, 0], bool)) == 0.875


@pytest.mark.parametrize(("seed", "ties"), [(4, False), (5, True)])
def test_roc_curve_matches_sklearn_points(seed: int, ties: bool) -> None:
    scores, positives = _data(seed, ties=ties)
    curve = roc_curve(scores, positives)
    fpr, tpr, thresholds = sk_roc_curve(positives, scores, drop_intermediate=False)
    np.testing.assert_allclose(curve.x, fpr)
    np.testing.assert_allclose(curve.y, tpr)
    np.testing.assert_allclose(curve.thresholds[1:], thresholds[1:])
    assert curve.thresholds[0] > scores.max()
    assert np.trapezoid(curve.y, curve.x) == pytest.approx(auroc(scores, positives))


@pytest.mark.parametrize(("seed", "ties"), [(6, False), (7, True)])
def test_pr_curve_and_average_precision_match_sklearn(seed: int, ties: bool) -> None:
    scores, positives = _data(seed, ties=ties)
    curve = pr_curve(scores, positives)
    precision, recall, thresholds = precision_recall_curve(positives, scores)
    # scikit-learn lists thresholds ascending and stops once recall reaches 1.
    kept = curve.thresholds[1:][::-1]
    start = len(kept) - len(thresholds)
    np.testing.assert_allclose(kept[start:], thresholds)
    np.testing.assert_allclose(curve.y[::-1][start : start + len(precision)], precision)
    np.testing.assert_allclose(curve.x[::-1][start : start + len(recall)], recall)
    assert average_precision(scores, positives) == pytest.approx(
        average_precision_score(positives, scores), abs=1e-12
    )


@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.4, 1.1, 5.0])
def test_confusion_matches_sklearn_with_the_at_or_above_rule(threshold: float) -> None:
    scores, positives = _data(8, ties=True)
    predicted = scores >= threshold
    tn, fp, fn, tp = confusion_matrix(positives, predicted, labels=[False, True]).ravel()
    result = confusion_at(scores, positives, threshold)
    assert (result.tp, result.fp, result.tn, result.fn) == (tp, fp, tn, fn)
    assert result.precision == pytest.approx(precision_score(positives, predicted, zero_division=0))
    assert result.recall == pytest.approx(recall_score(positives, predicted))
    assert result.f1 == pytest.approx(f1_score(positives, predicted, zero_division=0))
    assert result.false_alarm_rate == pytest.approx(fp / (fp + tn))


def test_score_equal_to_threshold_is_anomalous() -> None:
    result = confusion_at(np.array([0.5, 0.49]), np.array([True, False]), 0.5)
    assert (result.tp, result.fp, result.tn, result.fn) == (1, 0, 1, 0)
    assert result.as_dict()["f1"] == 1.0


def test_sweep_counts_every_distinct_threshold() -> None:
    result = sweep(np.array([0.9, 0.5, 0.5, 0.1]), np.array([True, True, False, False]))
    assert result.thresholds[1:].tolist() == [0.9, 0.5, 0.1]
    assert result.tp.tolist() == [0, 1, 2, 2]
    assert result.fp.tolist() == [0, 0, 1, 2]


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible() -> None:
    scores, positives = _data(9, n=400)
    first = bootstrap_auroc(scores, positives, n_boot=500, seed=3)
    again = bootstrap_auroc(scores, positives, n_boot=500, seed=3)
    assert first.low < first.auroc < first.high
    assert first.high - first.low < 0.2
    np.testing.assert_array_equal(first.replicates, again.replicates)


def test_bootstrap_replicates_equal_sklearn_on_the_same_resamples() -> None:
    scores, positives = _data(10, n=60, ties=True)
    estimate = bootstrap_auroc(scores, positives, n_boot=20, seed=11, chunk=7)
    # Replay the same stratified draws and score them with scikit-learn.
    rng = np.random.default_rng(11)
    pos, neg = scores[positives], scores[~positives]
    expected = []
    for start in range(0, 20, 7):
        size = min(7, 20 - start)
        pos_idx = rng.integers(0, pos.size, size=(size, pos.size))
        neg_idx = rng.integers(0, neg.size, size=(size, neg.size))
        for row in range(size):
            sample = np.r_[pos[pos_idx[row]], neg[neg_idx[row]]]
            labels = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
            expected.append(roc_auc_score(labels, sample))
    np.testing.assert_allclose(estimate.replicates, expected, atol=1e-12)


def test_perfect_separation_gives_a_degenerate_interval_at_one() -> None:
    estimate = bootstrap_auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool))
    assert estimate.auroc == estimate.low == estimate.high == 1.0


def test_one_class_only_is_a_clear_error() -> None:
    with pytest.raises(MetricsError, match="both anomalous and normal"):
        auroc(np.array([0.1, 0.2]), np.array([False, False]))
    with pytest.raises(MetricsError, match="at least one anomalous"):
        pr_curve(np.array([0.1, 0.2]), np.array([False, False]))


def test_to_arrays_reads_text_labels_and_refuses_nan() -> None:
    _, positives = to_arrays([0.1, 0.7], ["normal", "anomalous"])
    assert positives.tolist() == [False, True]
    with pytest.raises(MetricsError, match="NaN"):
        to_arrays([0.1, float("nan")], [True, False])
    with pytest.raises(MetricsError, match="must match"):
        to_arrays([0.1], [True, False])


def test_band_counts_split_the_three_zones() -> None:
    scores = np.array([0.1, 0.2, 0.4, 0.5, 0.6, 0.9])
    positives = np.array([False, True, False, True, False, True])
    counts = band_counts(scores, positives, 0.3, 0.6)
    assert counts.passed == (1, 1)
    assert counts.review == (1, 1)
    assert counts.failed == (1, 1)
    assert counts.review_share == pytest.approx(2 / 6)
    assert counts.missed_defect_rate == pytest.approx(1 / 3)
    assert counts.false_alarm_rate == pytest.approx(1 / 3)
    with pytest.raises(MetricsError, match="below T1"):
        band_counts(scores, positives, 0.6, 0.3)
