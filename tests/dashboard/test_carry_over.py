"""A retrained child starts from its own calibration threshold; the Thresholds page offers to
carry the parent's threshold method over (run on the child's scores, not the parent's value)."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.services import carry_over
from dashboard.services import threshold_methods as methods
from db.errors import InvalidValueError, PermissionDeniedError
from db.repositories import (
    get_active_threshold,
    get_user,
    save_threshold,
)
from db.session import session_scope
from tests.dashboard.conftest import StudioData
from tests.dashboard.lineage import confirm_added_normals, ready_child

CALIBRATION = 0.12


def retrained_child(studio: StudioData, *, parent_method: str = "target_recall") -> int:
    """A ready child of the studio's model (normal inspect images 2 and 3 added) scoring every
    inspect image at half the parent's score, with its calibration threshold active; the parent's
    active threshold is by ``parent_method``."""
    confirm_added_normals(studio)
    with session_scope(studio.factory) as session:
        reviewer = get_user(session, studio.users["reviewer"].id)
        params = {"recall": 0.75} if parent_method == "target_recall" else {}
        save_threshold(
            session,
            model_version_id=studio.model.id,
            value=0.5,
            method=parent_method,
            params=params,
            actor=reviewer,
        )
    child = ready_child(studio)
    with session_scope(studio.factory) as session:
        # What the train job saves: the child's own calibration threshold.
        save_threshold(
            session,
            model_version_id=child,
            value=CALIBRATION,
            method="manual",
            params={"source": "calibration", "quantile": 0.99},
        )
    return child


def test_the_parents_method_runs_on_the_childs_own_labelled_scores(
    studio: StudioData, dispatch_calls: list[tuple[int, str]]
) -> None:
    child = retrained_child(studio)
    with session_scope(studio.factory) as session:
        start = get_active_threshold(session, child)
        assert start is not None and (start.value, start.method) == (CALIBRATION, "manual")
    parent = carry_over.parent_method(studio.factory, child, None)
    assert parent is not None and parent.carriable
    assert (parent.parent_id, parent.method, parent.label) == (
        studio.model.id,
        "target_recall",
        "Target recall (recall 0.75)",
    )
    preview = carry_over.preview_carry_over(
        studio.factory, child, None, parent, use_known_labels=True
    )
    assert preview.excluded_training == 2  # the two normals it trained on
    n = studio.inspect_batch
    kept = [*n.normal_ids[:2], *n.anomalous_ids]
    expected = methods.target_recall(
        np.array([studio.model.scores[i] / 2 for i in kept]),
        np.array([i in n.anomalous_ids for i in kept]),
        recall=0.75,
    )
    assert preview.proposal is not None and preview.proposal.value == expected.value

    with pytest.raises(PermissionDeniedError):
        carry_over.carry_over(
            studio.factory,
            actor_id=studio.users["viewer"].id,
            model_version_id=child,
            category=None,
            use_known_labels=True,
        )
    saved = carry_over.carry_over(
        studio.factory,
        actor_id=studio.users["reviewer"].id,
        model_version_id=child,
        category=None,
        use_known_labels=True,
    )
    assert (saved.version, saved.method, saved.value) == (2, "target_recall", expected.value)
    assert saved.params == {"recall": 0.75, carry_over.CARRIED_FROM: parent.threshold_id}
    assert saved.metrics["labelled_from_known_labels"] == 6
    assert saved.metrics["labelled_from_verdicts"] == 0
    with session_scope(studio.factory) as session:
        assert get_active_threshold(session, studio.model.id).value == 0.5  # type: ignore[union-attr]

    # Only the child's verdicts (both trained on): no labels left, so nothing to propose.
    without_known = carry_over.preview_carry_over(
        studio.factory, child, None, parent, use_known_labels=False
    )
    assert without_known.proposal is None and "No reviewed anomalous" in without_known.problem


def test_a_hand_set_parent_threshold_does_not_carry_over(
    studio: StudioData, dispatch_calls: list[tuple[int, str]]
) -> None:
    child = retrained_child(studio, parent_method="manual")
    parent = carry_over.parent_method(studio.factory, child, None)
    assert parent is not None and not parent.carriable
    assert "set by hand" in parent.reason
    with pytest.raises(InvalidValueError, match="set by hand"):
        carry_over.carry_over(
            studio.factory,
            actor_id=studio.users["reviewer"].id,
            model_version_id=child,
            category=None,
            use_known_labels=True,
        )
    assert carry_over.parent_method(studio.factory, studio.model.id, None) is None
