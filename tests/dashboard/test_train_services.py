"""Training/scoring services and worker reports, without the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboard.services import models as models_service
from dashboard.services import training, worker_status
from db.errors import InvalidValueError, PermissionDeniedError
from db.repositories import create_model_version, list_model_versions, list_recent_jobs
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
    studio_factory,
    studio_users: dict[str, StudioUser],
    studio_project,
    train_batch,
    ready_model,
    dispatch_calls: list[tuple[int, str]],
) -> None:
    viewer = studio_users["viewer"].id
    with pytest.raises(PermissionDeniedError):
        training.queue_training(
            studio_factory, _request(studio_project, [train_batch.id]), actor_id=viewer
        )
    with pytest.raises(PermissionDeniedError):
        training.queue_scoring(
            studio_factory,
            project_id=studio_project.id,
            model_version_id=ready_model.id,
            batch_ids=[train_batch.id],
            actor_id=viewer,
        )
    with session_scope(studio_factory) as session:
        jobs = list_recent_jobs(session, project_id=studio_project.id)
        assert [j.id for j in jobs] == [ready_model.job_id]  # only the fixture's training job
        assert [m.id for m in list_model_versions(session, project_id=studio_project.id)] == [
            ready_model.id
        ]
    assert dispatch_calls == []


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
    studio_factory,
    studio_users,
    studio_project,
    train_batch,
    changes,
    message,
    dispatch_calls: list[tuple[int, str]],
) -> None:
    with pytest.raises(InvalidValueError, match=message):
        training.queue_training(
            studio_factory,
            _request(studio_project, [train_batch.id], **changes),
            actor_id=studio_users["reviewer"].id,
        )
    with session_scope(studio_factory) as session:
        assert list_recent_jobs(session, project_id=studio_project.id) == []
        assert list_model_versions(session, project_id=studio_project.id) == []
    assert dispatch_calls == []


def test_inspect_batches_are_not_training_data(
    studio_factory, studio_users, studio_project, inspect_batch: BatchInfo
) -> None:
    with pytest.raises(InvalidValueError, match="not normal training images"):
        training.queue_training(
            studio_factory,
            _request(studio_project, [inspect_batch.id]),
            actor_id=studio_users["reviewer"].id,
        )
    with session_scope(studio_factory) as session:
        assert list_recent_jobs(session, project_id=studio_project.id) == []


def test_training_count_leaves_out_known_anomalies(
    studio_factory, studio_project, train_batch: BatchInfo, inspect_batch: BatchInfo
) -> None:
    ids = [train_batch.id, inspect_batch.id]
    assert training.count_selected_images(studio_factory, studio_project.id, ids) == 14
    assert (
        training.count_selected_images(studio_factory, studio_project.id, ids, training=True) == 10
    )
    assert training.categories_of(studio_factory, studio_project.id, ids) == ["widget"]
    assert training.categories_of(studio_factory, studio_project.id, []) == []


def test_scoring_needs_a_ready_model(
    studio_factory,
    studio_users,
    studio_project,
    inspect_batch: BatchInfo,
    ready_model: ModelInfo,
    dispatch_calls: list[tuple[int, str]],
) -> None:
    actor = studio_users["reviewer"].id
    with session_scope(studio_factory) as session:
        pending = create_model_version(
            session, project_id=studio_project.id, name="p", variant="se", backbone="alexnet"
        ).id
    with pytest.raises(InvalidValueError, match="not ready"):
        training.queue_scoring(
            studio_factory,
            project_id=studio_project.id,
            model_version_id=pending,
            batch_ids=[inspect_batch.id],
            actor_id=actor,
        )
    with pytest.raises(InvalidValueError, match="no batch chosen"):
        training.queue_scoring(
            studio_factory,
            project_id=studio_project.id,
            model_version_id=ready_model.id,
            batch_ids=[],
            actor_id=actor,
        )
    assert dispatch_calls == []
    choices = models_service.model_choices(studio_factory, studio_project.id, status="ready")
    assert [c.id for c in choices] == [ready_model.id]
    assert "CBAM" in choices[0].label and "mobilenet_v2" in choices[0].label
    assert models_service.ready_models(studio_factory, studio_project.id) == choices
    everything = models_service.model_choices(studio_factory, studio_project.id)
    assert [c.id for c in everything] == [pending, ready_model.id]  # newest first


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


def test_backbone_without_weights_is_refused_before_anything_is_written(
    studio_factory,
    studio_users: dict[str, StudioUser],
    studio_project,
    train_batch,
    dispatch_calls: list[tuple[int, str]],
) -> None:
    report = worker_status.WorkerReport(
        name="gpu-1",
        device="cuda:0",
        weights={"alexnet": "missing: no file", "mobilenet_v2": "available: bundled"},
    )
    statuses = {s.backbone: s for s in worker_status.weights_status([report])}
    request = _request(studio_project, [train_batch.id], backbone="alexnet")
    with pytest.raises(InvalidValueError, match=r"pretrained weights of alexnet .*mobilenet_v2"):
        training.queue_training(
            studio_factory, request, actor_id=studio_users["reviewer"].id, weights=statuses
        )
    with session_scope(studio_factory) as session:
        assert list_recent_jobs(session, project_id=studio_project.id) == []
    assert dispatch_calls == []
    # Weights nobody reported on are not refused (the queue warning covers a missing worker).
    unknown = worker_status.weights_status([])
    sent = training.queue_training(
        studio_factory,
        request,
        actor_id=studio_users["reviewer"].id,
        weights={s.backbone: s for s in unknown},
    )
    assert len(sent) == 1 and dispatch_calls == [(sent[0].queued.job_id, "train")]
