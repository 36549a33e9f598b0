"""The train and score jobs run in this process on a SQLite store (no broker, no worker process)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Heatmap, Image, Job, ModelVersion, Score
from db.repositories import claim_job, get_active_threshold, request_cancel, requeue_job
from db.session import session_scope
from engine.visualize import heatmap_from_png
from jobspec import DEFAULT_HEATMAP_METHOD, HeatmapMethod
from tests.worker.seed import CATEGORY, job_row, model_row, queue_score, queue_train, seed_project
from worker.jobs import artifacts
from worker.jobs.runner import (
    CANCELLED,
    FAILED,
    LOST,
    SKIPPED,
    SUCCEEDED,
    JobBody,
    JobContext,
    run_job,
)
from worker.jobs.score import ScoreJob, clear_detector_cache
from worker.jobs.train import TrainJob
from worker.settings import WorkerSettings

Factory = sessionmaker[Session]


def _leftovers(data_dir: Path) -> list[str]:
    root = artifacts.models_root(data_dir)
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


@pytest.mark.slow
def test_train_then_score_then_redeliver(settings: WorkerSettings, factory: Factory) -> None:
    seeded = seed_project(factory, settings.data_dir)
    model_id, train_id = queue_train(factory, seeded, variant="se")
    assert run_job(train_id, TrainJob(), settings) == SUCCEEDED

    job = job_row(factory, train_id)
    assert (job.status, job.progress, job.attempts) == ("succeeded", 1.0, 1)
    assert job.message is not None and "good_000.png" in job.message  # the broken file
    assert job.result_json is not None
    assert job.result_json["train_images"] + job.result_json["calibration_images"] == 7
    assert job.result_json["unreadable"] == 1
    n_calibration = job.result_json["calibration_images"]

    model = model_row(factory, model_id)
    assert model.status == "ready"
    assert model.artifact_path == f"models/{model_id}/model.adn"
    assert (settings.data_dir / model.artifact_path).is_file()
    assert _leftovers(settings.data_dir) == [str(model_id)]
    assert model.training_image_count == 7  # 8 normals, one unreadable; the anomalous one unused
    assert model.metrics_json is not None
    assert len(model.metrics_json["epoch_losses"]) == 2
    assert model.metrics_json["failures"][0]["image"] == "good_000.png"
    assert model.config_json["model"]["variant"] == "se"
    assert model.config_json["model"]["backbone"]["weights"] == "random"
    assert model.config_json["train"]["device"] == "cpu"
    assert model.calibration_json is not None and model.calibration_json["threshold"] is not None

    with session_scope(factory) as session:
        threshold = get_active_threshold(session, model_id)
        assert threshold is not None
        assert threshold.method == "manual"
        assert threshold.params_json == {
            "source": "calibration",
            "quantile": model.calibration_json["quantile"],
        }
        # The active threshold is the calibration quantile (linear interpolation) of the
        # held-out normals' stored scores, computed here by hand.
        normals = sorted(model.calibration_json["scores"])
        assert len(normals) == n_calibration
        position = (len(normals) - 1) * model.calibration_json["quantile"]
        low = int(position)
        high = min(low + 1, len(normals) - 1)
        expected = normals[low] + (position - low) * (normals[high] - normals[low])
        assert threshold.value == pytest.approx(expected, rel=1e-9)
        assert model.calibration_json["threshold"] == pytest.approx(expected, rel=1e-9)

    score_id = queue_score(factory, seeded, model_id)
    assert run_job(score_id, ScoreJob(), settings) == SUCCEEDED
    job = job_row(factory, score_id)
    assert (job.status, job.progress) == ("succeeded", 1.0)
    assert job.message is not None
    assert job.message.startswith("scored 3 of 4 images")
    assert "check_000.png" in job.message
    with session_scope(factory) as session:
        scores = list(session.scalars(select(Score).where(Score.model_version_id == model_id)))
        assert len(scores) == 3
        assert all(s.job_id == score_id and s.percentile is not None for s in scores)
        stored = session.execute(
            select(Heatmap, Image.original_name)
            .join(Score, Score.id == Heatmap.score_id)
            .join(Image, Image.id == Score.image_id)
        ).all()
        assert sorted(h.score_id for h, _ in stored) == sorted(s.id for s in scores)
        defect_maps = [heatmap_from_png(h.png) for h, name in stored if name.startswith("defect")]
        assert len(defect_maps) == 2
        for values in defect_maps:
            # A real Grad-CAM map of a planted defect spans [0, 1]; a zero or flat one is none.
            # (A normal image's map may be all zero with this tiny random-weight model.)
            assert values.max() > 0.9 and values.min() < 0.1 and values.std() > 0.05

    # A redelivered message finds the job finished: nothing changes.
    before = job_row(factory, score_id)
    assert run_job(score_id, ScoreJob(), settings) == SKIPPED
    assert run_job(train_id, TrainJob(), settings) == SKIPPED
    after = job_row(factory, score_id)
    assert (after.status, after.finished_at, after.attempts) == (
        before.status,
        before.finished_at,
        before.attempts,
    )

    # A second score job of the same images skips what is stored (the resume path).
    again = queue_score(factory, seeded, model_id)
    assert run_job(again, ScoreJob(), settings) == SUCCEEDED
    result = job_row(factory, again).result_json or {}
    assert (result["scored"], result["skipped_already_scored"]) == (0, 3)
    assert result["failures"][0]["image"] == "check_000.png"  # still unreadable, still listed

    # Asking for a second heatmap method scores the images again and adds that method's maps.
    methods = (HeatmapMethod.INPUT_GRADIENT.value, DEFAULT_HEATMAP_METHOD.value)
    extra = queue_score(factory, seeded, model_id, heatmaps=methods)
    assert run_job(extra, ScoreJob(), settings) == SUCCEEDED
    result = job_row(factory, extra).result_json or {}
    assert (result["scored"], result["heatmaps"]) == (3, list(methods))
    with session_scope(factory) as session:
        stored_methods = session.execute(
            select(Heatmap.method, func.count()).group_by(Heatmap.method)
        ).all()
    assert dict(stored_methods) == {m: 3 for m in methods}


@pytest.mark.slow
def test_cancel_stops_training_and_cleans_up(settings: WorkerSettings, factory: Factory) -> None:
    seeded = seed_project(factory, settings.data_dir, n_train=6)
    model_id, job_id = queue_train(
        factory, seeded, overrides={"epochs": 1000, "image_size": 32, "test_views": 1}
    )
    outcome: list[str] = []
    runner = threading.Thread(target=lambda: outcome.append(run_job(job_id, TrainJob(), settings)))
    runner.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = job_row(factory, job_id)
        if job.message and job.message.startswith("epoch"):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"training never reported an epoch: {job.message!r}")
    assert job.result_json is not None and job.result_json["live"]["phase"] == "training"
    assert any(name.startswith(".tmp-") for name in _leftovers(settings.data_dir))
    # As the dashboard does: take the write lock first, the worker is writing its progress.
    with session_scope(factory, immediate=True) as session:
        request_cancel(session, job_id)
    runner.join(timeout=30)
    assert not runner.is_alive()

    assert outcome == [CANCELLED]
    job = job_row(factory, job_id)
    assert job.status == "cancelled"
    assert job.message is not None and "cancelled" in job.message
    assert model_row(factory, model_id).status == "failed"
    assert _leftovers(settings.data_dir) == [], "no model folder and no temporary folder"


class _Raising(JobBody):
    kind = "train"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.stopped: list[str] = []

    def run(self, ctx: JobContext) -> None:
        raise self.exc

    def on_stopped(self, session: Session, ctx: JobContext, reason: str) -> None:
        self.stopped.append(reason)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RuntimeError("boom"), "RuntimeError: boom"),
        (SoftTimeLimitExceeded(), "ADN_TASK_SOFT_TIME_LIMIT_S"),
        (KeyError("x"), "KeyError: 'x'"),
    ],
)
def test_failures_are_recorded_with_a_message(
    settings: WorkerSettings, factory: Factory, exc: BaseException, expected: str
) -> None:
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    _model_id, job_id = queue_train(factory, seeded)
    body = _Raising(exc)
    assert run_job(job_id, body, settings) == FAILED
    job = job_row(factory, job_id)
    assert job.status == "failed"
    assert job.error is not None and expected in job.error
    assert body.stopped == [job.error]


def _set_params(factory: Factory, job_id: int, **changes: Any) -> None:
    with session_scope(factory) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.params_json = {**job.params_json, **changes}


def _set_model(factory: Factory, model_id: int, **changes: Any) -> None:
    with session_scope(factory) as session:
        model = session.get(ModelVersion, model_id)
        assert model is not None
        for key, value in changes.items():
            setattr(model, key, value)


@pytest.mark.parametrize(
    ("params", "model", "expected"),
    [
        ({"overrides": {"learning_rate": 1}}, {}, "unknown overrides learning_rate"),
        ({"category": "gadget"}, {}, "no training images"),
        ({"batch_ids": [9999]}, {}, "no training images"),
        ({}, {"backbone": "efficientnet_b5"}, "backbone.name='efficientnet_b5'"),
        ({"model_version_id": 9999}, {}, "model version 9999 does not exist"),
    ],
)
def test_train_failures_say_what_to_fix(
    settings: WorkerSettings,
    factory: Factory,
    params: dict[str, Any],
    model: dict[str, Any],
    expected: str,
) -> None:
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    model_id, job_id = queue_train(factory, seeded)
    _set_params(factory, job_id, **params)
    _set_model(factory, model_id, **model)
    assert run_job(job_id, TrainJob(), settings) == FAILED
    job = job_row(factory, job_id)
    assert job.error is not None and expected in job.error, job.error
    if "model_version_id" not in params:
        assert model_row(factory, model_id).status == "failed"
    assert _leftovers(settings.data_dir) == []


def test_training_uses_only_normal_images_of_the_category(
    settings: WorkerSettings, factory: Factory
) -> None:
    from worker.jobs.inputs import training_images

    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    with session_scope(factory) as session:
        images = training_images(
            session,
            settings.data_dir,
            project_id=seeded.project_id,
            batch_ids=[seeded.train_batch_id, seeded.inspect_batch_id],
            image_ids=None,
            category=CATEGORY,
        )
        assert [i.id for i in images] == seeded.train_image_ids
        picked = training_images(
            session,
            settings.data_dir,
            project_id=seeded.project_id,
            batch_ids=[],
            image_ids=[seeded.anomalous_train_image_id, seeded.train_image_ids[1]],
            category=None,
        )
        assert [i.id for i in picked] == [seeded.train_image_ids[1]]


def test_score_needs_a_ready_model(settings: WorkerSettings, factory: Factory) -> None:
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    model_id, _train_id = queue_train(factory, seeded)
    score_id = queue_score(factory, seeded, model_id)
    assert run_job(score_id, ScoreJob(), settings) == FAILED
    job = job_row(factory, score_id)
    assert job.error is not None and "is pending, not ready" in job.error


def test_a_job_sent_to_the_wrong_task_fails(settings: WorkerSettings, factory: Factory) -> None:
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    _model_id, train_id = queue_train(factory, seeded)
    assert run_job(train_id, ScoreJob(), settings) == FAILED
    assert "sent to the 'score' task" in (job_row(factory, train_id).error or "")


def test_a_cancelled_queued_job_is_not_run(settings: WorkerSettings, factory: Factory) -> None:
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    _model_id, job_id = queue_train(factory, seeded)
    # As the dashboard does: take the write lock first, the worker is writing its progress.
    with session_scope(factory, immediate=True) as session:
        request_cancel(session, job_id)
    assert run_job(job_id, TrainJob(), settings) == SKIPPED
    assert job_row(factory, job_id).attempts == 0
    assert run_job(123456, TrainJob(), settings) == SKIPPED  # no such job


def test_score_records_missing_model_file(settings: WorkerSettings, factory: Factory) -> None:
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    model_id, _ = queue_train(factory, seeded)
    _set_model(factory, model_id, status="ready", artifact_path=f"models/{model_id}/model.adn")
    clear_detector_cache()
    score_id = queue_score(factory, seeded, model_id)
    assert run_job(score_id, ScoreJob(), settings) == FAILED
    assert "model file" in (job_row(factory, score_id).error or "")


class _Overtaken(JobBody):
    """Loses its job to another worker mid-run (the sweep re-queued it), then fails."""

    kind = "train"

    def run(self, ctx: JobContext) -> None:
        with ctx.session() as session:
            requeue_job(session, ctx.job_id, reason="test: worker presumed dead")
            claim_job(session, ctx.job_id, worker_name="other@host pid 2")
        ctx.monitor.poll()
        assert ctx.should_stop(), "the monitor must notice that the job is someone else's"
        raise RuntimeError("late failure of the old attempt")


def test_an_overtaken_attempt_leaves_the_new_one_alone(
    settings: WorkerSettings, factory: Factory
) -> None:
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    model_id, job_id = queue_train(factory, seeded)
    assert run_job(job_id, _Overtaken(), settings) == LOST
    job = job_row(factory, job_id)
    assert (job.status, job.attempts, job.worker_name) == ("running", 2, "other@host pid 2")
    assert job.error is None
    assert model_row(factory, model_id).status == "pending"
