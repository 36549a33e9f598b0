"""Threshold proposals agree with a brute-force search and with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from dashboard.services.threshold_methods import (
    FALSE_ALARM_CAP,
    MAX_F1,
    MIN_COST,
    REVIEW_BAND,
    TARGET_RECALL,
    ThresholdMethodError,
    false_alarm_cap,
    max_f1,
    min_cost,
    propose,
    review_band,
    target_recall,
)

# 10 normals and 10 anomalous with overlap in the middle.
NORMALS = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.55, 0.70]
ANOMALOUS = [0.32, 0.45, 0.50, 0.60, 0.65, 0.75, 0.80, 0.85, 0.90, 0.95]
SCORES = np.array(NORMALS + ANOMALOUS)
LABELS = np.array([False] * 10 + [True] * 10)


def _recall(t: float) -> float:
    return float(np.mean(SCORES[LABELS] >= t))


def _fpr(t: float) -> float:
    return float(np.mean(SCORES[~LABELS] >= t))


def test_max_f1_matches_brute_force_with_sklearn() -> None:
    proposal = max_f1(SCORES, LABELS)
    best = max(f1_score(LABELS, t <= SCORES) for t in SCORES)
    assert proposal.method == MAX_F1
    assert proposal.metrics["f1"] == pytest.approx(best)
    assert f1_score(LABELS, proposal.value <= SCORES) == pytest.approx(best)
    # Ties resolve to the highest threshold with that F1.
    assert proposal.value == max(t for t in SCORES if f1_score(LABELS, t <= SCORES) == best)


@pytest.mark.parametrize("recall", [0.5, 0.8, 0.9, 0.95, 1.0])
def test_target_recall_is_the_highest_threshold_reaching_it(recall: float) -> None:
    proposal = target_recall(SCORES, LABELS, recall=recall)
    assert _recall(proposal.value) >= recall
    higher = [t for t in SCORES if t > proposal.value]
    assert all(_recall(t) < recall for t in higher)
    assert proposal.params == {"recall": recall}
    assert proposal.metrics["recall"] == pytest.approx(_recall(proposal.value))


def test_target_recall_hand_values() -> None:
    # 9 of 10 anomalous at or above 0.45; all 10 need 0.32.
    assert target_recall(SCORES, LABELS, recall=0.9).value == 0.45
    assert target_recall(SCORES, LABELS, recall=1.0).value == 0.32


@pytest.mark.parametrize("cap", [0.0, 0.1, 0.2, 0.35, 0.5])
def test_false_alarm_cap_is_the_lowest_threshold_within_it(cap: float) -> None:
    proposal = false_alarm_cap(SCORES, LABELS, cap=cap)
    assert _fpr(proposal.value) <= cap
    lower = [t for t in SCORES if t < proposal.value]
    assert all(_fpr(t) > cap for t in lower)
    assert proposal.method == FALSE_ALARM_CAP


def test_false_alarm_cap_hand_values() -> None:
    assert false_alarm_cap(SCORES, LABELS, cap=0.0).value == 0.75  # above the 0.70 normal
    assert false_alarm_cap(SCORES, LABELS, cap=0.1).value == 0.60  # only 0.70 flagged
    assert false_alarm_cap(SCORES, LABELS, cap=0.2).value == 0.45  # 0.55 and 0.70 flagged


def test_cap_zero_with_a_normal_on_top_flags_nothing() -> None:
    proposal = false_alarm_cap([0.2, 0.9], [True, False], cap=0.0)
    assert proposal.value > 0.9
    assert proposal.metrics["fp"] == 0 and proposal.metrics["tp"] == 0


def test_min_cost_matches_brute_force() -> None:
    proposal = min_cost(SCORES, LABELS, cost_miss=10.0, cost_false_alarm=1.0)
    costs = {
        t: 10 * np.sum(LABELS & (t > SCORES)) + np.sum(~LABELS & (t <= SCORES)) for t in SCORES
    }
    best = min(costs.values())
    assert costs[proposal.value] == best
    assert proposal.metrics["expected_cost_per_image"] == pytest.approx(best / SCORES.size)
    assert proposal.method == MIN_COST


def test_min_cost_prevalence_reweights_the_classes() -> None:
    # A rare defect makes false alarms dominate: the threshold moves up.
    balanced = min_cost(SCORES, LABELS, cost_miss=5.0, cost_false_alarm=1.0)
    rare = min_cost(SCORES, LABELS, cost_miss=5.0, cost_false_alarm=1.0, prevalence=0.01)
    assert rare.value > balanced.value
    assert rare.params["prevalence"] == 0.01
    # Expected cost with prevalence p: 5 p miss_rate + (1 - p) false_alarm_rate.
    expected = 5 * 0.01 * (1 - _recall(rare.value)) + 0.99 * _fpr(rare.value)
    assert rare.metrics["expected_cost_per_image"] == pytest.approx(expected, abs=1e-6)


def test_review_band_bounds_and_share() -> None:
    proposal = review_band(SCORES, LABELS, recall=1.0, cap=0.0)
    assert proposal.method == REVIEW_BAND
    assert (proposal.value, proposal.upper_value) == (0.32, 0.75)
    assert proposal.value <= proposal.upper_value
    in_band = np.mean((SCORES >= 0.32) & (SCORES < 0.75))
    assert proposal.metrics["review_share"] == pytest.approx(in_band)
    assert proposal.metrics["missed_defect_rate"] == 0.0
    assert proposal.metrics["false_alarm_rate"] == 0.0


def test_review_band_collapses_when_one_threshold_meets_both() -> None:
    proposal = review_band([0.1, 0.2, 0.8, 0.9], [False, False, True, True], recall=1.0, cap=0.0)
    assert proposal.value == proposal.upper_value == 0.8
    assert proposal.metrics["review_share"] == 0.0
    assert "no image needs a person" in proposal.note


@pytest.mark.parametrize(
    ("labels", "missing"), [([False, False], "anomalous"), ([True, True], "normal")]
)
def test_clear_error_without_one_class(labels: list[bool], missing: str) -> None:
    with pytest.raises(ThresholdMethodError, match=f"No reviewed {missing} images"):
        max_f1([0.1, 0.2], labels)


def test_parameter_errors_are_clear() -> None:
    with pytest.raises(ThresholdMethodError, match="target recall"):
        target_recall(SCORES, LABELS, recall=0.0)
    with pytest.raises(ThresholdMethodError, match="false-alarm cap"):
        false_alarm_cap(SCORES, LABELS, cap=1.0)
    with pytest.raises(ThresholdMethodError, match="at least one of the two costs"):
        min_cost(SCORES, LABELS, cost_miss=0, cost_false_alarm=0)
    with pytest.raises(ThresholdMethodError, match="unknown method"):
        propose("magic", SCORES, LABELS)


def test_propose_dispatches_by_name() -> None:
    assert propose(TARGET_RECALL, SCORES, LABELS, recall=0.9).value == 0.45
    band = propose(REVIEW_BAND, SCORES, LABELS, recall=1.0, cap=0.0)
    assert band.upper_value == 0.75
