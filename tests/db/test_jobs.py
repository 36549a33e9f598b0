from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.errors import InvalidValueError, JobStateError
from db.models import Job, utcnow
from db.repositories import jobs as job_repo
from db.session import session_scope
from tests.db.factories import make_project, make_user


def test_create_claim_progress_succeed(session: Session) -> None:
    user = make_user(session)
    project = make_project(session)
    job = job_repo.create_job(
        session, kind="train", project_id=project.id, params={"variant": "se"}, actor=user
    )
    assert (job.status, job.progress, job.attempts, job.created_by) == ("queued", 0.0, 0, user.id)
    claimed = job_repo.claim_job(session, job.id, worker_name="gpu-0", celery_task_id="task-1")
    assert claimed is not None
    assert (claimed.status, claimed.worker_name, claimed.attempts) == ("running", "gpu-0", 1)
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    assert claimed.celery_task_id == "task-1"
    assert job_repo.claim_job(session, job.id, worker_name="gpu-1") is None

    assert job_repo.update_progress(session, job.id, 0.25, "epoch 1/4") is True
    progressed = job_repo.get_job(session, job.id)
    assert (progressed.progress, progressed.message) == (0.25, "epoch 1/4")
    assert job_repo.heartbeat(session, job.id, attempt=1) is True
    with pytest.raises(InvalidValueError):
        job_repo.update_progress(session, job.id, 1.5)
    with pytest.raises(InvalidValueError):
        job_repo.update_progress(session, job.id, float("nan"))

    done = job_repo.finish_succeeded(
        session, job.id, message="trained", result={"model_version_id": 3}
    )
    assert (done.status, done.progress, done.result_json) == (
        "succeeded",
        1.0,
        {"model_version_id": 3},
    )
    assert done.finished_at is not None
    assert job_repo.update_progress(session, job.id, 0.5) is False
    with pytest.raises(JobStateError, match="is succeeded"):
        job_repo.finish_failed(session, job.id, error="late")
    with pytest.raises(JobStateError):
        job_repo.finish_succeeded(session, job.id)


def test_claim_is_exclusive_across_sessions(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        job_id = job_repo.create_job(session, kind="score").id
    with session_scope(session_factory) as first, session_scope(session_factory) as second:
        assert job_repo.claim_job(first, job_id, worker_name="a") is not None
        first.commit()
        assert job_repo.claim_job(second, job_id, worker_name="b") is None
    with session_scope(session_factory) as session:
        assert job_repo.get_job(session, job_id).worker_name == "a"


def test_failures_and_cancellation(session: Session) -> None:
    queued = job_repo.create_job(session, kind="train")
    failed = job_repo.finish_failed(
        session, queued.id, error="model not trained yet; train it first"
    )
    assert (failed.status, failed.error) == ("failed", "model not trained yet; train it first")
    with pytest.raises(InvalidValueError):
        job_repo.finish_failed(session, job_repo.create_job(session, kind="x").id, error="  ")

    waiting = job_repo.create_job(session, kind="score")
    assert job_repo.request_cancel(session, waiting.id).status == "cancelled"
    assert job_repo.claim_job(session, waiting.id, worker_name="w") is None

    running = job_repo.create_job(session, kind="train")
    job_repo.claim_job(session, running.id, worker_name="w")
    assert job_repo.is_cancel_requested(session, running.id) is False
    assert job_repo.request_cancel(session, running.id).status == "running"
    assert job_repo.is_cancel_requested(session, running.id) is True
    stopped = job_repo.finish_cancelled(session, running.id, message="stopped after epoch 2")
    assert (stopped.status, stopped.message) == ("cancelled", "stopped after epoch 2")
    assert job_repo.request_cancel(session, running.id).status == "cancelled"


def test_stale_jobs_are_found_and_requeued(session: Session) -> None:
    fresh = job_repo.create_job(session, kind="train")
    stale = job_repo.create_job(session, kind="train")
    cancelled_stale = job_repo.create_job(session, kind="score")
    queued = job_repo.create_job(session, kind="score")
    for job in (fresh, stale, cancelled_stale):
        job_repo.claim_job(session, job.id, worker_name="w")
    job_repo.request_cancel(session, cancelled_stale.id)

    later = utcnow() + timedelta(seconds=300)
    assert job_repo.find_stale_jobs(session, older_than_s=600, now=later) == []
    job_repo.heartbeat(session, fresh.id, attempt=1)
    found = job_repo.find_stale_jobs(session, older_than_s=120, now=later)
    assert {j.id for j in found} == {fresh.id, stale.id, cancelled_stale.id}
    assert queued.id not in {j.id for j in found}
    assert job_repo.find_stale_jobs(session, older_than_s=120) == []

    assert job_repo.requeue_job(session, stale.id, reason="worker w stopped responding") is True
    again = job_repo.get_job(session, stale.id)
    assert (again.status, again.worker_name, again.progress) == ("queued", None, 0.0)
    assert again.message == "worker w stopped responding"
    reclaimed = job_repo.claim_job(session, stale.id, worker_name="w2")
    assert reclaimed is not None and reclaimed.attempts == 2
    assert job_repo.requeue_job(session, cancelled_stale.id, reason="worker lost") is False
    assert job_repo.get_job(session, cancelled_stale.id).status == "cancelled"
    assert job_repo.requeue_job(session, queued.id, reason="not running") is False


def test_list_recent_jobs(session: Session) -> None:
    project = make_project(session)
    jobs = [
        job_repo.create_job(session, kind=k, project_id=project.id)
        for k in ("train", "score", "train")
    ]
    job_repo.create_job(session, kind="train")
    job_repo.claim_job(session, jobs[0].id, worker_name="w")
    assert [j.id for j in job_repo.list_recent_jobs(session, project_id=project.id)] == [
        jobs[2].id,
        jobs[1].id,
        jobs[0].id,
    ]
    assert [
        j.id
        for j in job_repo.list_recent_jobs(
            session, project_id=project.id, kind="train", statuses=["running"]
        )
    ] == [jobs[0].id]
    assert len(job_repo.list_recent_jobs(session, limit=2)) == 2
    with pytest.raises(InvalidValueError):
        job_repo.list_recent_jobs(session, statuses=["sleeping"])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def any_session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A session on SQLite (the embedded store) and on PostgreSQL (the team store)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("session")
        return
    factory: sessionmaker[Session] = request.getfixturevalue("pg_factory")
    with factory() as session:
        yield session
        session.rollback()


def _state(session: Session, job_id: int) -> tuple[Any, ...]:
    return tuple(
        session.execute(
            select(
                Job.status,
                Job.attempts,
                Job.worker_name,
                Job.progress,
                Job.message,
                Job.error,
                Job.result_json,
                Job.heartbeat_at,
                Job.finished_at,
            ).where(Job.id == job_id)
        ).one()
    )


def test_the_writes_of_an_overtaken_attempt_are_refused(any_session: Session) -> None:
    session = any_session
    job_id = job_repo.create_job(session, kind="train").id
    assert job_repo.claim_job(session, job_id, worker_name="w1") is not None  # attempt 1
    assert job_repo.requeue_job(session, job_id, reason="w1 stopped responding", attempt=1) is True
    assert job_repo.heartbeat(session, job_id, attempt=1) is False  # queued: nobody's
    with pytest.raises(JobStateError, match="is queued"):
        job_repo.finish_failed(session, job_id, error="late failure of attempt 1", attempt=1)
    second = job_repo.claim_job(session, job_id, worker_name="w2")
    assert second is not None and second.attempts == 2
    assert job_repo.update_progress(
        session, job_id, 0.4, "epoch 4/10", details={"epoch": 4}, attempt=2
    )
    before = _state(session, job_id)

    assert job_repo.heartbeat(session, job_id, attempt=1) is False
    assert (
        job_repo.update_progress(session, job_id, 0.9, "epoch 9/10", details={"e": 9}, attempt=1)
        is False
    )
    assert job_repo.requeue_job(session, job_id, reason="attempt 1 looks stale", attempt=1) is False
    with pytest.raises(JobStateError, match="running as attempt 2; attempt 1 cannot"):
        job_repo.finish_succeeded(session, job_id, message="attempt 1 done", attempt=1)
    with pytest.raises(JobStateError, match="running as attempt 2"):
        job_repo.finish_failed(session, job_id, error="attempt 1 failed", attempt=1)
    with pytest.raises(JobStateError, match="running as attempt 2"):
        job_repo.finish_cancelled(session, job_id, message="attempt 1 stopped", attempt=1)
    assert _state(session, job_id) == before

    assert job_repo.heartbeat(session, job_id, attempt=2) is True
    done = job_repo.finish_succeeded(
        session, job_id, message="trained", result={"ok": 1}, attempt=2
    )
    assert (done.status, done.attempts, done.worker_name) == ("succeeded", 2, "w2")
    assert job_repo.heartbeat(session, job_id, attempt=2) is False  # finished: no longer running
