from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import InvalidValueError
from db.models import Role
from db.repositories import (
    effective_threshold,
    get_active_threshold,
    list_audit,
    list_threshold_versions,
    restore_threshold,
    save_threshold,
)
from tests.db.factories import make_model, make_project, make_user


def _active_ids(session: Session, model_id: int) -> list[int]:
    return [
        t.id for t in list_threshold_versions(session, model_id, all_scopes=True) if t.is_active
    ]


def test_versions_one_active_and_restore(session: Session) -> None:
    reviewer = make_user(session, Role.REVIEWER)
    model = make_model(session, make_project(session))
    v1 = save_threshold(
        session,
        model_version_id=model.id,
        value=0.5,
        method="max_f1",
        params={"beta": 1},
        metrics={"f1": 0.8},
        actor=reviewer,
    )
    v2 = save_threshold(
        session, model_version_id=model.id, value=0.7, method="manual", actor=reviewer
    )
    v3 = save_threshold(
        session,
        model_version_id=model.id,
        value=0.4,
        upper_value=0.9,
        method="review_band",
        actor=reviewer,
    )
    assert [t.version for t in list_threshold_versions(session, model.id)] == [3, 2, 1]
    assert _active_ids(session, model.id) == [v3.id]
    assert get_active_threshold(session, model.id) is v3
    assert (v1.created_by, v1.params_json, v1.metrics_json) == (
        reviewer.id,
        {"beta": 1},
        {"f1": 0.8},
    )

    restored = restore_threshold(session, v1.id, actor=reviewer)
    assert restored is v1
    assert _active_ids(session, model.id) == [v1.id]
    assert get_active_threshold(session, model.id) is v1
    assert not v2.is_active and not v3.is_active
    actions = [e.action for e in list_audit(session, entity_type="threshold")]
    assert actions == ["threshold.restore", "threshold.save", "threshold.save", "threshold.save"]

    v4 = save_threshold(session, model_version_id=model.id, value=0.6, method="manual")
    assert v4.version == 4
    assert _active_ids(session, model.id) == [v4.id]


def test_category_scopes_are_independent(session: Session) -> None:
    model = make_model(session, make_project(session))
    shared = save_threshold(session, model_version_id=model.id, value=0.5, method="manual")
    screw = save_threshold(
        session, model_version_id=model.id, category="screw", value=0.8, method="manual"
    )
    screw2 = save_threshold(
        session, model_version_id=model.id, category="screw", value=0.85, method="manual"
    )
    assert (screw.version, screw2.version) == (1, 2)
    assert set(_active_ids(session, model.id)) == {shared.id, screw2.id}
    assert effective_threshold(session, model.id, "screw") is screw2
    assert effective_threshold(session, model.id, "nut") is shared
    assert effective_threshold(session, model.id, None) is shared
    assert get_active_threshold(session, model.id, "nut") is None


def test_database_refuses_a_second_active_threshold(session: Session) -> None:
    model = make_model(session, make_project(session))
    save_threshold(session, model_version_id=model.id, value=0.5, method="manual")
    session.flush()
    with pytest.raises(IntegrityError):
        session.execute(
            text(
                "INSERT INTO thresholds (model_version_id, category, version, value, method, "
                "params_json, metrics_json, created_at, is_active) VALUES "
                "(:m, NULL, 9, 0.1, 'manual', '{}', '{}', '2024-01-01 00:00:00', 1)"
            ),
            {"m": model.id},
        )


def test_invalid_thresholds(session: Session) -> None:
    model = make_model(session, make_project(session))
    with pytest.raises(InvalidValueError, match="below the lower"):
        save_threshold(
            session, model_version_id=model.id, value=0.5, upper_value=0.4, method="review_band"
        )
    with pytest.raises(InvalidValueError, match="finite"):
        save_threshold(session, model_version_id=model.id, value=float("nan"), method="manual")
    with pytest.raises(InvalidValueError, match="method"):
        save_threshold(session, model_version_id=model.id, value=0.5, method="gut_feeling")
    assert list_threshold_versions(session, model.id) == []
