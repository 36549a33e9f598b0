"""Real worker processes run real jobs: team mode (Redis + PostgreSQL), the embedded default, a
worker killed mid-training, and a Redis restart that loses the queued messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import upgrade_to_head
from db.models import Heatmap, Job, Score, Threshold
from db.session import make_engine, make_session_factory, session_scope
from tests.worker.seed import Seeded, job_row, model_row, queue_score, queue_train, seed_project
from tests.worker.services import (
    REDIS_URL,
    PrivateRedis,
    WorkerProcess,
    pg_database,
    redis_client,
    wait_for,
    worker_env,
)
from worker.celery_app import make_celery
from worker.dispatch import send_job
from worker.jobs import artifacts
from worker.settings import WorkerSettings

Factory = sessionmaker[Session]
JOB_WAIT_S = 120.0
# Long enough that a kill always lands mid-training; the test shortens it before the rerun.
ENDLESS = {"epochs": 1000, "image_size": 32, "test_views": 1, "cache_views_per_image": 1}


@contextmanager
def store(url: str) -> Iterator[Factory]:
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def status_is(factory: Factory, job_id: int, *statuses: str) -> bool:
    return job_row(factory, job_id).status in statuses


def wait_status(factory: Factory, job_id: int, status: str, log: Path) -> Job:
    wait_for(
        lambda: status_is(factory, job_id, status, "failed", "cancelled", "succeeded"),
        JOB_WAIT_S,
        f"job {job_id} to finish",
        log,
    )
    job = job_row(factory, job_id)
    assert job.status == status, (job.status, job.error, job.message)
    return job


def sender(data_dir: Path, broker_url: str, database_url: str) -> Any:
    settings = WorkerSettings(data_dir=data_dir, broker_url=broker_url, database_url=database_url)
    return make_celery(settings, include=[])


def assert_trained_and_scored(
    factory: Factory, data_dir: Path, seeded: Seeded, model_id: int, jobs: list[int]
) -> None:
    for job_id in jobs:
        job = job_row(factory, job_id)
        assert (job.status, job.progress) == ("succeeded", 1.0), (job.error, job.message)
    model = model_row(factory, model_id)
    assert model.status == "ready"
    assert (data_dir / model.artifact_path).is_file()
    with session_scope(factory) as session:
        mine = Threshold.model_version_id == model_id
        assert session.scalar(select(func.count()).select_from(Threshold).where(mine)) == 1
        scored = list(session.scalars(select(Score).where(Score.model_version_id == model_id)))
        assert sorted(s.image_id for s in scored) == sorted(
            set(seeded.inspect_image_ids) - {seeded.broken_inspect_image_id}
        )
        heatmaps = session.scalar(
            select(func.count())
            .select_from(Heatmap)
            .join(Score, Score.id == Heatmap.score_id)
            .where(Score.model_version_id == model_id)
        )
        assert heatmaps == len(scored)


def train_then_score(factory: Factory, data_dir: Path, app: Any, log: Path) -> None:
    """Queue a training, then a scoring of its model, to the running worker; check the store."""
    seeded = seed_project(factory, data_dir, name="line 2")
    model_id, train_id = queue_train(factory, seeded, variant="cbam")
    send_job(train_id, "train", app)
    wait_status(factory, train_id, "succeeded", log)
    score_id = queue_score(factory, seeded, model_id)
    send_job(score_id, "score", app)
    wait_status(factory, score_id, "succeeded", log)
    assert_trained_and_scored(factory, data_dir, seeded, model_id, [train_id, score_id])


def kill_mid_training(
    factory: Factory, data_dir: Path, env: dict[str, str], app: Any, log: Path
) -> tuple[int, int]:
    """Start a long training, SIGKILL the whole worker group while it runs; return ids."""
    seeded = seed_project(factory, data_dir, n_train=5, n_inspect=2)
    model_id, job_id = queue_train(factory, seeded, overrides=ENDLESS)
    send_job(job_id, "train", app)
    worker = WorkerProcess(env, log, node="doomed")
    with worker:
        wait_for(
            lambda: (job_row(factory, job_id).message or "").startswith("epoch"),
            JOB_WAIT_S,
            "the training to report an epoch",
            log,
        )
        worker.kill_group()
    job = job_row(factory, job_id)
    assert job.status == "running"
    assert not artifacts.model_dir(data_dir, model_id).exists(), "a half-written model is visible"
    assert any(artifacts.models_root(data_dir).glob(f".tmp-{model_id}-*"))
    return model_id, job_id


def shorten(factory: Factory, job_id: int) -> None:
    """Make the re-run quick (the schedule is read when the job is claimed again)."""
    with session_scope(factory) as session:
        job = session.get(Job, job_id)
        assert job is not None
        overrides = {**job.params_json["overrides"], "epochs": 2}
        job.params_json = {**job.params_json, "overrides": overrides}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_team_mode_requeues_a_killed_workers_job_then_trains_and_scores(tmp_path: Path) -> None:
    """Redis + PostgreSQL: the worker dies mid-training; after a restart the sweep re-queues
    the job and it completes; then a train and a score job run end to end."""
    client = redis_client()
    client.flushdb()
    data_dir = tmp_path / "data"
    log = tmp_path / "worker.log"
    try:
        with pg_database() as url, store(url) as factory:
            env = worker_env(
                data_dir,
                database_url=url,
                broker_url=REDIS_URL,
                stale_job_after_s=3,
                sweep_interval_s=1,
            )
            app = sender(data_dir, REDIS_URL, url)
            model_id, job_id = kill_mid_training(factory, data_dir, env, app, log)
            shorten(factory, job_id)
            with WorkerProcess(env, log, node="rescuer"):
                job = wait_status(factory, job_id, "succeeded", log)
                assert job.attempts == 2
                assert model_row(factory, model_id).status == "ready"
                assert sorted(p.name for p in artifacts.models_root(data_dir).iterdir()) == [
                    str(model_id)
                ], "the dead attempt's temporary folder is gone"
                train_then_score(factory, data_dir, app, log)
            assert "re-queued" in log.read_text()
    finally:
        client.flushdb()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_embedded_mode_fails_a_job_out_of_attempts_then_trains_and_scores(tmp_path: Path) -> None:
    """The embedded default (SQLite store, SQLite broker): the worker dies mid-training and no
    attempt is left, so the sweep fails the job; then a train and a score job run end to end."""
    data_dir = tmp_path / "data"
    log = tmp_path / "worker.log"
    settings = WorkerSettings(data_dir=data_dir)
    upgrade_to_head(settings.database_url)
    env = worker_env(data_dir, stale_job_after_s=3, sweep_interval_s=1, max_job_attempts=1)
    assert "ADN_DATABASE_URL" not in env and "ADN_BROKER_URL" not in env
    with store(settings.database_url) as factory:
        app = make_celery(settings, include=[])
        model_id, job_id = kill_mid_training(factory, data_dir, env, app, log)
        with WorkerProcess(env, log, node="sweeper"):
            wait_for(lambda: any((data_dir / "workers").glob("sweeper-*.json")), 60, "report", log)
            job = wait_status(factory, job_id, "failed", log)
            assert job.error is not None
            assert job.error.startswith("the worker running this job stopped (attempt 1);")
            assert model_row(factory, model_id).status == "failed"
            assert list(artifacts.models_root(data_dir).iterdir()) == []
            train_then_score(factory, data_dir, app, log)
        assert not list((data_dir / "workers").glob("sweeper-*.json")), "report left behind"


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_jobs_queued_before_a_redis_restart_are_not_lost(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "worker.log"
    settings = WorkerSettings(data_dir=data_dir)
    upgrade_to_head(settings.database_url)
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        with store(settings.database_url) as factory:
            seeded = seed_project(factory, data_dir, n_train=5, n_inspect=2)
            app = sender(data_dir, server.url, settings.database_url)
            jobs = [queue_train(factory, seeded, variant=v)[1] for v in ("none", "se")]
            for job_id in jobs:
                send_job(job_id, "train", app)
            assert redis_client(server.url).llen("gpu") == 2
            server.restart()  # no persistence: the queued messages are gone
            assert redis_client(server.url).llen("gpu") == 0
            env = worker_env(
                data_dir, broker_url=server.url, sweep_interval_s=1, resend_queued_after_s=1
            )
            with WorkerProcess(env, log):
                for job_id in jobs:
                    wait_status(factory, job_id, "succeeded", log)
    finally:
        server.stop()
