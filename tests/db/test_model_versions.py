from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from db.errors import InvalidValueError
from db.repositories import (
    create_job,
    create_model_version,
    get_model_version,
    list_model_versions,
    mark_model_failed,
    mark_model_ready,
    set_model_job,
)
from tests.db.factories import make_project


def test_model_version_life_cycle(session: Session) -> None:
    project = make_project(session)
    job = create_job(session, kind="train", project_id=project.id)
    model = create_model_version(
        session,
        project_id=project.id,
        name="screw cbam",
        variant="cbam",
        backbone="efficientnet_b5",
        category="screw",
        config={"epochs": 3},
        training_image_count=120,
        job_id=job.id,
    )
    assert model.status == "pending"
    assert model.config_json == {"epochs": 3}
    mark_model_ready(
        session,
        model.id,
        artifact_path="models/1/model.adn",
        metrics={"auroc": 0.97},
        calibration={"mean": 1.0},
    )
    loaded = get_model_version(session, model.id)
    assert loaded.status == "ready"
    assert loaded.artifact_path == "models/1/model.adn"
    assert loaded.metrics_json == {"auroc": 0.97}
    assert loaded.calibration_json == {"mean": 1.0}
    assert loaded.job_id == job.id

    failed = create_model_version(
        session,
        project_id=project.id,
        name="screw se",
        variant="se",
        backbone="b",
        category="screw",
    )
    set_model_job(session, failed.id, job.id)
    mark_model_failed(session, failed.id, reason="out of memory")
    other = create_model_version(
        session, project_id=project.id, name="nut", variant="none", backbone="b", category="nut"
    )
    assert {m.id for m in list_model_versions(session, project_id=project.id)} == {
        model.id,
        failed.id,
        other.id,
    }
    assert [
        m.id
        for m in list_model_versions(
            session, project_id=project.id, category="screw", status="ready"
        )
    ] == [model.id]
    assert [m.id for m in list_model_versions(session, project_id=project.id, variant="se")] == [
        failed.id
    ]


def test_model_version_validation(session: Session) -> None:
    project = make_project(session)
    with pytest.raises(InvalidValueError, match="variant 'eca'"):
        create_model_version(session, project_id=project.id, name="x", variant="eca", backbone="b")
    with pytest.raises(InvalidValueError):
        create_model_version(
            session,
            project_id=project.id,
            name="x",
            variant="se",
            backbone="b",
            training_image_count=-1,
        )
