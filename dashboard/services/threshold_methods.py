"""Threshold proposals from labelled scores: max F1, target recall, false-alarm cap, minimum
expected cost, and a two-threshold review band.

Candidate thresholds are the observed scores (plus one just above the highest, which flags
nothing); a score at or above the threshold is anomalous, the same rule as the model verdict.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dashboard.services.metrics import Sweep, band_counts, confusion_at, sweep, to_arrays

logger = logging.getLogger(__name__)

MANUAL = "manual"
MAX_F1 = "max_f1"
TARGET_RECALL = "target_recall"
FALSE_ALARM_CAP = "max_false_alarm_rate"
MIN_COST = "min_cost"
REVIEW_BAND = "review_band"

METHOD_LABELS: dict[str, str] = {
    MANUAL: "Manual",
    MAX_F1: "Maximise F1",
    TARGET_RECALL: "Target recall (miss at most x % of defects)",
    FALSE_ALARM_CAP: "False-alarm cap (at most x % of normal images flagged)",
    MIN_COST: "Minimum expected cost",
    REVIEW_BAND: "Review band (auto-pass / people / auto-fail)",
}

_EPS = 1e-9


class ThresholdMethodError(ValueError):
    """A method cannot propose a threshold from these labels or parameters."""


@dataclass(frozen=True)
class ThresholdProposal:
    """A proposed threshold (T1, and T2 for a review band) with how and how well."""

    method: str
    value: float
    upper_value: float | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    note: str = ""


def _checked(scores: Any, positives: Any) -> tuple[np.ndarray, np.ndarray]:
    values, labels = to_arrays(scores, positives)
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    if n_pos == 0:
        raise ThresholdMethodError(
            "No reviewed anomalous images yet. Mark some images as anomalous on the Review page "
            "(or use the known labels that came with the upload) before proposing a threshold."
        )
    if n_neg == 0:
        raise ThresholdMethodError(
            "No reviewed normal images yet. Mark some images as normal on the Review page "
            "(or use the known labels that came with the upload) before proposing a threshold."
        )
    return values, labels


def _fraction(name: str, value: float, *, allow_zero: bool, allow_one: bool) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ThresholdMethodError(f"{name} must be a number, got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    high_ok = value <= 1 if allow_one else value < 1
    if not (low_ok and high_ok):
        low = "0" if allow_zero else "just above 0"
        high = "1 (100 %)" if allow_one else "just below 1 (100 %)"
        raise ThresholdMethodError(f"{name} must be between {low} and {high}, got {value}")
    return float(value)


def _single(
    method: str, result: Sweep, index: int, params: dict[str, Any], **extra: float
) -> ThresholdProposal:
    metrics: dict[str, Any] = result.confusion(index).as_dict()
    metrics.update({k: round(float(v), 6) for k, v in extra.items()})
    return ThresholdProposal(
        method=method,
        value=float(result.thresholds[index]),
        upper_value=None,
        params=params,
        metrics=metrics,
    )


def max_f1(scores: Any, positives: Any) -> ThresholdProposal:
    """The threshold with the highest F1 (the highest such threshold on ties)."""
    values, labels = _checked(scores, positives)
    result = sweep(values, labels)
    f1 = 2 * result.tp / (2 * result.tp + result.fp + result.fn)
    return _single(MAX_F1, result, int(np.argmax(f1)), {})


def _target_recall_index(result: Sweep, target: float) -> int:
    needed = math.ceil(target * result.n_pos - _EPS)
    return int(np.argmax(result.tp >= needed))


def target_recall(scores: Any, positives: Any, *, recall: float) -> ThresholdProposal:
    """The highest threshold whose recall is at least ``recall`` (0 < recall <= 1)."""
    target = _fraction("target recall", recall, allow_zero=False, allow_one=True)
    values, labels = _checked(scores, positives)
    result = sweep(values, labels)
    return _single(TARGET_RECALL, result, _target_recall_index(result, target), {"recall": target})


def _false_alarm_index(result: Sweep, cap: float) -> int:
    allowed = math.floor(cap * result.n_neg + _EPS)
    return int(np.flatnonzero(result.fp <= allowed)[-1])


def false_alarm_cap(scores: Any, positives: Any, *, cap: float) -> ThresholdProposal:
    """The lowest threshold whose false-alarm rate is at most ``cap`` (0 <= cap < 1)."""
    limit = _fraction("false-alarm cap", cap, allow_zero=True, allow_one=False)
    values, labels = _checked(scores, positives)
    result = sweep(values, labels)
    return _single(FALSE_ALARM_CAP, result, _false_alarm_index(result, limit), {"cap": limit})


def min_cost(
    scores: Any,
    positives: Any,
    *,
    cost_miss: float,
    cost_false_alarm: float,
    prevalence: float | None = None,
) -> ThresholdProposal:
    """The threshold with the lowest expected cost per image.

    Cost = cost_miss x P(defect) x miss rate + cost_false_alarm x P(normal) x false-alarm rate,
    with P(defect) = ``prevalence`` when given, else the share of defects among the labels.
    """
    for name, amount in (("cost per miss", cost_miss), ("cost per false alarm", cost_false_alarm)):
        if not isinstance(amount, int | float) or not math.isfinite(amount) or amount < 0:
            raise ThresholdMethodError(f"{name} must be 0 or more, got {amount!r}")
    if cost_miss == 0 and cost_false_alarm == 0:
        raise ThresholdMethodError("set at least one of the two costs above 0")
    values, labels = _checked(scores, positives)
    result = sweep(values, labels)
    if prevalence is None:
        p_defect = result.n_pos / (result.n_pos + result.n_neg)
    else:
        p_defect = _fraction("defect prevalence", prevalence, allow_zero=False, allow_one=False)
    cost = (
        cost_miss * p_defect * result.fn / result.n_pos
        + cost_false_alarm * (1 - p_defect) * result.fp / result.n_neg
    )
    index = int(np.argmin(cost))
    params: dict[str, Any] = {
        "cost_miss": float(cost_miss),
        "cost_false_alarm": float(cost_false_alarm),
    }
    if prevalence is not None:
        params["prevalence"] = p_defect
    return _single(MIN_COST, result, index, params, expected_cost_per_image=float(cost[index]))


def review_band(scores: Any, positives: Any, *, recall: float, cap: float) -> ThresholdProposal:
    """Two thresholds: below T1 images pass automatically, at or above T2 they fail, people
    review the rest.

    T1 is the highest threshold keeping recall >= ``recall`` (at most 1 - recall of the defects
    pass automatically); T2 the lowest keeping the false-alarm rate <= ``cap``. When one value
    meets both targets (T1 >= T2), the band is empty and both become that value.
    """
    target = _fraction("target recall", recall, allow_zero=False, allow_one=True)
    limit = _fraction("false-alarm cap", cap, allow_zero=True, allow_one=False)
    values, labels = _checked(scores, positives)
    result = sweep(values, labels)
    lower = float(result.thresholds[_target_recall_index(result, target)])
    upper = float(result.thresholds[_false_alarm_index(result, limit)])
    note = ""
    if lower >= upper:
        upper = lower
        note = "One threshold meets both targets, so no image needs a person."
    counts = band_counts(values, labels, lower, upper)
    metrics: dict[str, Any] = counts.as_dict()
    metrics["recall_at_t1"] = round(confusion_at(values, labels, lower).recall, 6)
    metrics["false_alarm_rate_at_t2"] = round(
        confusion_at(values, labels, upper).false_alarm_rate, 6
    )
    return ThresholdProposal(
        method=REVIEW_BAND,
        value=lower,
        upper_value=upper,
        params={"recall": target, "cap": limit},
        metrics=metrics,
        note=note,
    )


def propose(method: str, scores: Any, positives: Any, **params: Any) -> ThresholdProposal:
    """Run the method named ``method`` (one of the ``METHOD_LABELS`` keys except manual)."""
    if method == MAX_F1:
        return max_f1(scores, positives)
    if method == TARGET_RECALL:
        return target_recall(scores, positives, recall=params["recall"])
    if method == FALSE_ALARM_CAP:
        return false_alarm_cap(scores, positives, cap=params["cap"])
    if method == MIN_COST:
        return min_cost(
            scores,
            positives,
            cost_miss=params["cost_miss"],
            cost_false_alarm=params["cost_false_alarm"],
            prevalence=params.get("prevalence"),
        )
    if method == REVIEW_BAND:
        return review_band(scores, positives, recall=params["recall"], cap=params["cap"])
    known = ", ".join(m for m in METHOD_LABELS if m != MANUAL)
    raise ThresholdMethodError(f"unknown method {method!r}; use one of {known}")
