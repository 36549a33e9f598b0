"""Training/scoring services and worker reports, without the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboard.services import models as models_service
from dashboard.services import training, worker_status
from db.errors import InvalidValueError, PermissionDeniedError
from db.repositories import create_model_version, get_user, list_recent_jobs
from db.session import session_scope
from tests.dashboard.conftest import BatchInfo, ModelInfo, ProjectInfo, StudioUser


def _request(project: ProjectInfo, batches: list[int], **changes) -> training.TrainRequest:
    values = {
        "project_id": project.id,
        "name": "m",
        "batch_ids": batches,
        "backbone": "mobilenet_v2",
        "variants": ["se"],
        "preset": "fast",
    }
    values.update(changes)
    return training.TrainRequest(**values)


def test_viewer_cannot_queue_training_or_scoring(
    studio_factory, studio_users: dict[str, StudioUser], studio_project, train_batch, ready_model
) -> None:
    with session_scope(studio_factory) as session:
        viewer = get_user(session, studio_users["viewer"].id)
        with pytest.raises(PermissionDeniedError):
            training.queue_training(
                session, _request(studio_project, [train_batch.id]), actor=viewer
            )
        with pytest.raises(PermissionDeniedError):
            training.queue_scoring(
                session,
                project_id=studio_project.id,
                model_version_id=ready_model.id,
                batch_ids=[train_batch.id],
                actor=viewer,
            )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variants": []}, "no attention variant"),
        ({"variants": ["transformer"]}, "unknown variant"),
        ({"backbone": "resnet9000"}, "unknown backbone"),
        ({"preset": "turbo"}, "unknown preset"),
        ({"name": "  "}, "model name is empty"),
        ({"batch_ids": []}, "no training batch chosen"),
        ({"overrides": {"epochs": 0}}, "epochs must be a whole number"),
        ({"overrides": {"lr": 3}}, "unknown schedule override"),
        ({"category": "gizmo"}, "no training images in category 'gizmo'"),
    ],
)
def test_bad_training_requests_are_refused(
    studio_factory, studio_users, studio_project, train_batch, changes, message
) -> None:
    with session_scope(studio_factory) as session:
        actor = get_user(session, studio_users["reviewer"].id)
        with pytest.raises(InvalidValueError, match=message):
            training.queue_training(
                session, _request(studio_project, [train_batch.id], **changes), actor=actor
            )
        assert list_recent_jobs(session, project_id=studio_project.id) == []


def test_inspect_batches_are_not_training_data(
    studio_factory, studio_users, studio_project, inspect_batch: BatchInfo
) -> None:
    with session_scope(studio_factory) as session:
        actor = get_user(session, studio_users["reviewer"].id)
        with pytest.raises(InvalidValueError, match="not normal training images"):
            training.queue_training(
                session, _request(studio_project, [inspect_batch.id]), actor=actor
            )


def test_training_count_leaves_out_known_anomalies(
    studio_factory, studio_project, train_batch: BatchInfo, inspect_batch: BatchInfo
) -> None:
    with session_scope(studio_factory) as session:
        ids = [train_batch.id, inspect_batch.id]
        assert training.count_selected_images(session, studio_project.id, ids) == 14
        assert training.count_selected_images(session, studio_project.id, ids, training=True) == 10
        assert training.categories_of(session, studio_project.id, ids) == ["widget"]
        assert training.categories_of(session, studio_project.id, []) == []


def test_scoring_needs_a_ready_model(
    studio_factory, studio_users, studio_project, inspect_batch: BatchInfo, ready_model: ModelInfo
) -> None:
    with session_scope(studio_factory) as session:
        actor = get_user(session, studio_users["reviewer"].id)
        pending = create_model_version(
            session, project_id=studio_project.id, name="p", variant="se", backbone="alexnet"
        )
        with pytest.raises(InvalidValueError, match="not ready"):
            training.queue_scoring(
                session,
                project_id=studio_project.id,
                model_version_id=pending.id,
                batch_ids=[inspect_batch.id],
                actor=actor,
            )
        with pytest.raises(InvalidValueError, match="no batch chosen"):
            training.queue_scoring(
                session,
                project_id=studio_project.id,
                model_version_id=ready_model.id,
                batch_ids=[],
                actor=actor,
            )
        choices = models_service.model_choices(session, studio_project.id, status="ready")
        assert [c.id for c in choices] == [ready_model.id]
        assert "CBAM" in choices[0].label and "mobilenet_v2" in choices[0].label


def test_worker_reports_are_read_and_summarised(tmp_path: Path) -> None:
    assert worker_status.read_reports(tmp_path) == []
    folder = tmp_path / "workers"
    folder.mkdir()
    (folder / "a.json").write_text(
        json.dumps(
            {
                "name": "a",
                "device": "cpu",
                "weights": {"alexnet": "missing: not downloaded"},
                "updated_at": "2026-01-01T00:00:00+00:00",
            }
        )
    )
    (folder / "b.json").write_text(
        json.dumps(
            {
                "name": "b",
                "device": "cuda:0",
                "weights": {"alexnet": "available: cached", "mobilenet_v2": "available: bundled"},
                "updated_at": "2026-01-02T00:00:00Z",
            }
        )
    )
    (folder / "broken.json").write_text("{not json")
    reports = worker_status.read_reports(tmp_path)
    assert [r.name for r in reports] == ["b", "a", "broken"]
    assert reports[-1].problem and "unreadable" in reports[-1].problem
    status = {s.backbone: s for s in worker_status.weights_status(reports)}
    assert status["alexnet"].available is True and status["alexnet"].detail.startswith("b:")
    assert status["mobilenet_v2"].available is True
    assert status["efficientnet_lite0"].available is None
    only_a = worker_status.weights_status([reports[1]])
    assert {s.backbone: s.available for s in only_a}["alexnet"] is False
