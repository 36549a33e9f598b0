"""Role enforcement: a viewer cannot change state even by calling the functions directly."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from db.errors import InvalidValueError, PermissionDeniedError
from db.ingest import ingest_files
from db.models import Role
from db.repositories import (
    add_verdict,
    create_batch,
    create_job,
    create_model_version,
    create_project,
    request_cancel,
    restore_threshold,
    save_threshold,
    set_active,
    verdict_history,
)
from db.roles import has_role, require_role
from db.settings import StoreSettings
from tests.db.factories import make_batch, make_image, make_model, make_project, make_user


def test_role_hierarchy(session: Session) -> None:
    admin = make_user(session, Role.ADMIN)
    reviewer = make_user(session, Role.REVIEWER)
    viewer = make_user(session, Role.VIEWER)
    assert has_role(admin, Role.REVIEWER) and has_role(admin, Role.VIEWER)
    assert has_role(reviewer, Role.REVIEWER) and not has_role(reviewer, Role.ADMIN)
    assert has_role(viewer, Role.VIEWER) and not has_role(viewer, Role.REVIEWER)
    require_role(admin, Role.ADMIN)
    with pytest.raises(
        PermissionDeniedError, match=r"has role .viewer.*need role admin or reviewer"
    ):
        require_role(viewer, Role.REVIEWER, action="save verdicts")
    with pytest.raises(InvalidValueError):
        require_role(admin, "superuser")


def test_deactivated_users_are_refused(session: Session) -> None:
    admin = make_user(session, Role.ADMIN)
    reviewer = make_user(session, Role.REVIEWER)
    set_active(session, reviewer.id, False, actor=admin)
    with pytest.raises(PermissionDeniedError, match="deactivated"):
        require_role(reviewer, Role.VIEWER)


def test_viewer_cannot_change_anything(session: Session, store_settings: StoreSettings) -> None:
    viewer = make_user(session, Role.VIEWER)
    project = make_project(session)
    batch = make_batch(session, project)
    image = make_image(session, batch)
    model = make_model(session, project)
    reviewer = make_user(session, Role.REVIEWER)
    threshold = save_threshold(
        session, model_version_id=model.id, value=0.5, method="manual", actor=reviewer
    )
    save_threshold(session, model_version_id=model.id, value=0.7, method="manual", actor=reviewer)
    job = create_job(session, kind="score", actor=reviewer)

    attempts = {
        "verdict": lambda: add_verdict(session, image_id=image.id, label="anomalous", user=viewer),
        "project": lambda: create_project(session, name="mine", actor=viewer),
        "batch": lambda: create_batch(
            session, project_id=project.id, name="b", purpose="train", actor=viewer
        ),
        "model": lambda: create_model_version(
            session,
            project_id=project.id,
            name="m",
            variant="se",
            backbone="b",
            actor=viewer,
        ),
        "job": lambda: create_job(session, kind="train", actor=viewer),
        "cancel": lambda: request_cancel(session, job.id, actor=viewer),
        "threshold": lambda: save_threshold(
            session, model_version_id=model.id, value=0.1, method="manual", actor=viewer
        ),
        "restore": lambda: restore_threshold(session, threshold.id, actor=viewer),
        "ingest": lambda: ingest_files(
            session,
            project_id=project.id,
            batch_id=batch.id,
            files=[],
            settings=store_settings,
            actor=viewer,
        ),
    }
    for name, attempt in attempts.items():
        with pytest.raises(PermissionDeniedError):
            attempt()
            pytest.fail(f"viewer was allowed to {name}")
    assert verdict_history(session, image.id) == []
    add_verdict(session, image_id=image.id, label="anomalous", user=reviewer)
    assert len(verdict_history(session, image.id)) == 1
