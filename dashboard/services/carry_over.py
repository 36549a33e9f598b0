"""Carry a parent's threshold method over to a retrained child.

A child starts from its own calibration threshold (the train job saves it). Its scores are on
their own scale, so the parent's *value* means nothing for it; the parent's *method* (max F1,
a target recall, a false-alarm cap, a cost ratio or a review band, with its parameters) does:
carrying it over runs that method on the child's labelled scores and saves the result as the
child's new active version. Images the child trained on are left out of those labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dashboard.services import threshold_methods as methods
from dashboard.services.metrics import MetricsError
from dashboard.services.store import SessionFactory
from dashboard.services.thresholds import (
    LabelledData,
    ThresholdVersion,
    load_labelled,
    save_version,
)
from db.errors import InvalidValueError
from db.repositories import (
    current_verdicts,
    effective_threshold,
    get_model_version,
    training_image_ids,
)
from db.session import session_scope

logger = logging.getLogger(__name__)

CARRIED_FROM = "carried_from_threshold_id"


@dataclass(frozen=True)
class ParentMethod:
    """The parent's threshold deciding a scope, and whether its method can carry over."""

    parent_id: int
    threshold_id: int
    version: int
    category: str | None
    method: str
    params: dict[str, Any]
    reason: str = ""  # why it cannot carry over (empty when it can)

    @property
    def carriable(self) -> bool:
        return not self.reason

    @property
    def label(self) -> str:
        """The method's name with its parameters."""
        name = methods.METHOD_LABELS.get(self.method, self.method).split(" (")[0]
        shown = {k: v for k, v in self.params.items() if k != CARRIED_FROM}
        if not shown:
            return name
        parts = (f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
        return f"{name} ({', '.join(parts)})"


@dataclass(frozen=True)
class CarryOverPreview:
    """What the parent's method proposes on the child's labelled scores."""

    proposal: methods.ThresholdProposal | None
    problem: str  # why there is no proposal (empty when there is)
    data: LabelledData
    excluded_training: int  # labelled images left out because the child trained on them


def _reason(method: str, params: dict[str, Any]) -> str:
    if method != methods.MANUAL:
        return ""
    if params.get("source") == "calibration":
        return (
            "The parent's active threshold is its calibration threshold; this model already "
            "starts from its own calibration threshold, the same method."
        )
    return (
        "The parent's threshold was set by hand. Two models score on different scales, so a "
        "hand-set value does not carry over: set this model's own on the slider below."
    )


def parent_method(
    factory: SessionFactory, model_version_id: int, category: str | None
) -> ParentMethod | None:
    """The method of the parent's threshold deciding ``category`` (its own, else the
    all-categories one); None for a model without a parent or a parent without a threshold."""
    with session_scope(factory) as session:
        parent_id = get_model_version(session, model_version_id).parent_id
        if parent_id is None:
            return None
        row = effective_threshold(session, parent_id, category)
        if row is None:
            return None
        params = dict(row.params_json or {})
        return ParentMethod(
            parent_id=parent_id,
            threshold_id=row.id,
            version=row.version,
            category=row.category,
            method=row.method,
            params=params,
            reason=_reason(row.method, params),
        )


def _without_training_images(
    factory: SessionFactory, model_version_id: int, data: LabelledData
) -> tuple[LabelledData, int]:
    with session_scope(factory) as session:
        trained = training_image_ids(session, model_version_id)
        dropped = [int(i) for i in data.image_ids.tolist() if int(i) in trained]
        reviewed = current_verdicts(session, dropped)
    by_verdict = sum(1 for v in reviewed.values() if v.label in ("anomalous", "normal"))
    keep = ~np.isin(data.image_ids, np.array(dropped, dtype=np.int64))
    kept = replace(
        data,
        image_ids=data.image_ids[keep],
        scores=data.scores[keep],
        positives=data.positives[keep],
        from_verdicts=data.from_verdicts - by_verdict,
        from_known_labels=data.from_known_labels - (len(dropped) - by_verdict),
    )
    return kept, len(dropped)


def _proposal_params(parent: ParentMethod) -> dict[str, Any]:
    """The keyword arguments of ``methods.propose`` from the parent's stored parameters."""
    keys = {
        methods.TARGET_RECALL: ("recall",),
        methods.FALSE_ALARM_CAP: ("cap",),
        methods.REVIEW_BAND: ("recall", "cap"),
        methods.MIN_COST: ("cost_miss", "cost_false_alarm", "prevalence"),
    }.get(parent.method, ())
    return {k: parent.params[k] for k in keys if k in parent.params}


def preview_carry_over(
    factory: SessionFactory,
    model_version_id: int,
    category: str | None,
    parent: ParentMethod,
    *,
    use_known_labels: bool,
) -> CarryOverPreview:
    """Run the parent's method on the child's labelled scores of ``category`` (not those of
    images the child trained on)."""
    data = load_labelled(factory, model_version_id, category, use_known_labels=use_known_labels)
    data, excluded = _without_training_images(factory, model_version_id, data)
    if not parent.carriable:
        return CarryOverPreview(None, parent.reason, data, excluded)
    try:
        proposal = methods.propose(
            parent.method, data.scores, data.positives, **_proposal_params(parent)
        )
    except (methods.ThresholdMethodError, MetricsError, KeyError) as exc:
        return CarryOverPreview(None, str(exc), data, excluded)
    return CarryOverPreview(proposal, "", data, excluded)


def carry_over(
    factory: SessionFactory,
    *,
    actor_id: int,
    model_version_id: int,
    category: str | None,
    use_known_labels: bool,
) -> ThresholdVersion:
    """Save the parent's method, run on the child's labelled scores, as the child's new active
    threshold version of ``category`` (reviewers and admins; the store checks the role)."""
    parent = parent_method(factory, model_version_id, category)
    if parent is None:
        raise InvalidValueError(
            "this model has no parent threshold to carry over; set its threshold on the slider"
        )
    preview = preview_carry_over(
        factory, model_version_id, category, parent, use_known_labels=use_known_labels
    )
    proposal = preview.proposal
    if proposal is None:
        raise InvalidValueError(preview.problem.rstrip("."))
    saved = save_version(
        factory,
        actor_id=actor_id,
        model_version_id=model_version_id,
        category=category,
        value=proposal.value,
        upper_value=proposal.upper_value,
        method=proposal.method,
        params={**proposal.params, CARRIED_FROM: parent.threshold_id},
        data=preview.data,
    )
    logger.info(
        "threshold method %s of model %s carried over to model %s",
        parent.method,
        parent.parent_id,
        model_version_id,
    )
    return saved
