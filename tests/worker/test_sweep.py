"""The sweep on a SQLite store and an embedded broker: dead workers, lost messages, pruning."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Job, utcnow
from db.repositories import claim_job, create_job, request_cancel
from db.session import session_scope
from tests.worker.clock import FakeClock
from tests.worker.seed import job_row, model_row, queue_score, queue_train, seed_project
from tests.worker.services import broker_messages
from worker.celery_app import make_celery
from worker.jobs import artifacts
from worker.settings import WorkerSettings
from worker.sweep import SweepState, SweepTimer, consumes_light_queue, sweep

Factory = sessionmaker[Session]


def _make_stale(factory: Factory, job_id: int, attempts: int = 1) -> None:
    """Claim the job, then age its heartbeat as if its worker had died a minute ago."""
    with session_scope(factory) as session:
        assert claim_job(session, job_id, worker_name="gone@host pid 1") is not None
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=60), attempts=attempts)
        )


def _stale_train_job(
    settings: WorkerSettings, factory: Factory, attempts: int = 1
) -> tuple[int, int]:
    """A small project's train job whose worker died: (model version id, job id)."""
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    model_id, job_id = queue_train(factory, seeded)
    _make_stale(factory, job_id, attempts)
    return model_id, job_id


def _age(factory: Factory, job_id: int, seconds: float) -> None:
    with session_scope(factory) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(created_at=utcnow() - timedelta(seconds=seconds))
        )


def _queued_jobs(settings: WorkerSettings) -> list[tuple[str, list[Any]]]:
    return [(m["task"], m["args"]) for m in broker_messages(settings.data_dir / "broker.sqlite")]


def test_a_stale_job_is_requeued_and_sent_again(settings: WorkerSettings, factory: Factory) -> None:
    app = make_celery(settings, include=[])
    model_id, job_id = _stale_train_job(settings, factory)
    leftover = artifacts.make_temp_dir(settings.data_dir, model_id)
    state = SweepState(settings.resend_queued_after_s)

    report = sweep(settings, app, state)
    assert report.requeued == [job_id] and report.failed == []
    job = job_row(factory, job_id)
    assert job.status == "queued"
    assert job.message == (
        "the worker running this job stopped (attempt 1 of 3); re-queued to run again"
    )
    assert _queued_jobs(settings) == [("adn.gpu.train", [job_id])]
    assert model_row(factory, model_id).status == "pending"
    assert leftover.exists(), "the next attempt removes it when it starts"

    assert sweep(settings, app, state).resent == []  # just sent: no duplicate right away
    assert len(_queued_jobs(settings)) == 1


def test_a_stale_job_fails_once_attempts_run_out(
    settings: WorkerSettings, factory: Factory
) -> None:
    app = make_celery(settings, include=[])
    model_id, job_id = _stale_train_job(settings, factory, attempts=3)
    artifacts.make_temp_dir(settings.data_dir, model_id)

    report = sweep(settings, app)
    assert report.failed == [job_id]
    job = job_row(factory, job_id)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.startswith("the worker running this job stopped (attempt 3);")
    assert "ADN_MAX_JOB_ATTEMPTS=3" in job.error
    assert model_row(factory, model_id).status == "failed"
    assert list(artifacts.models_root(settings.data_dir).iterdir()) == []
    assert _queued_jobs(settings) == []


def test_a_stale_job_asked_to_cancel_is_cancelled(
    settings: WorkerSettings, factory: Factory
) -> None:
    app = make_celery(settings, include=[])
    # even with no attempt left: cancelled, not failed
    model_id, job_id = _stale_train_job(settings, factory, attempts=3)
    with session_scope(factory) as session:
        request_cancel(session, job_id)
    report = sweep(settings, app)
    assert report.cancelled == [job_id]
    assert job_row(factory, job_id).status == "cancelled"
    assert model_row(factory, model_id).status == "failed"
    assert _queued_jobs(settings) == []


def test_other_job_kinds_are_left_alone(settings: WorkerSettings, factory: Factory) -> None:
    with session_scope(factory) as session:
        job_id = create_job(session, kind="evaluate").id
    _make_stale(factory, job_id)
    report = sweep(settings, make_celery(settings, include=[]))
    assert report.requeued == [] and report.failed == []
    assert job_row(factory, job_id).status == "running"


def test_old_queued_jobs_are_resent_with_growing_pauses(
    settings: WorkerSettings, factory: Factory
) -> None:
    app = make_celery(settings, include=[])
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    model_id, old = queue_train(factory, seeded)
    _age(factory, old, 60)
    young = queue_score(factory, seeded, model_id)
    clock = FakeClock()
    state = SweepState(first_after_s=10, clock=clock)

    assert sweep(settings, app, state).resent == [old]
    assert _queued_jobs(settings) == [("adn.gpu.train", [old])]
    clock.now += 5
    assert sweep(settings, app, state).resent == []
    clock.now += 6  # 11 s after the first re-send: the pause was 10 s
    assert sweep(settings, app, state).resent == [old]
    clock.now += 15  # the pause is now 20 s
    assert sweep(settings, app, state).resent == []
    _age(factory, young, 60)
    clock.now += 10
    assert sweep(settings, app, state).resent == [old, young]


def test_broker_down_leaves_jobs_queued(settings: WorkerSettings, factory: Factory) -> None:
    _model_id, job_id = _stale_train_job(settings, factory)
    down = dataclasses.replace(settings, broker_url="redis://127.0.0.1:1/0")
    report = sweep(down, make_celery(down, include=[]))
    assert report.requeued == [job_id]
    assert report.errors and "job" in report.errors[0]
    assert job_row(factory, job_id).status == "queued"  # the next sweep sends it


def test_prune_runs_at_most_every_ten_minutes() -> None:
    clock = FakeClock()
    state = SweepState(1.0, clock=clock)
    assert state.prune_due() is True
    clock.now += 60
    assert state.prune_due() is False
    clock.now += 600
    assert state.prune_due() is True


def test_the_sweep_prunes_the_embedded_broker(settings: WorkerSettings) -> None:
    report = sweep(settings, make_celery(settings, include=[]))
    assert report.pruned == 0 and report.errors == []


def test_timer_runs_the_sweep_in_light_queue_workers_only(settings: WorkerSettings) -> None:
    app = make_celery(settings, include=[])
    assert consumes_light_queue(app)
    app.amqp.queues.select(["gpu"])
    assert not consumes_light_queue(app)
    timer = SweepTimer(settings, make_celery(settings, include=[]), interval_s=0.05)
    timer.start()
    try:
        deadline = time.monotonic() + 10
        while timer.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        timer.stop()
    assert timer.runs >= 2


@pytest.mark.parametrize("broken", ["sqlite:////nonexistent-folder/x/studio.db"])
def test_timer_survives_a_failing_sweep(settings: WorkerSettings, broken: str) -> None:
    bad = dataclasses.replace(settings, database_url=broken)
    timer = SweepTimer(bad, make_celery(settings, include=[]), interval_s=60)
    assert timer.run_once() is None
    assert timer.runs == 1


def test_the_tasks_run_on_the_apps_settings(
    settings: WorkerSettings, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.celery_app import app
    from worker.tasks import score
    from worker.tasks import sweep as sweep_task

    monkeypatch.setattr(app, "adn_settings", settings)
    seeded = seed_project(factory, settings.data_dir, n_train=3, n_inspect=2)
    _model_id, job_id = queue_train(factory, seeded)
    _make_stale(factory, job_id, attempts=3)
    report = sweep_task.apply().get()
    assert report["failed"] == [job_id]
    _model_id, other = queue_train(factory, seeded, variant="se")
    assert score.apply(args=[other]).get() == "failed"  # a train job sent to the score task
    assert "sent to the 'score' task" in job_row(factory, other).error
