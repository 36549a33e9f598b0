"""Progress at a bounded rate, readable messages, heartbeat and cancel flag of a running job."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.repositories import create_job, request_cancel, requeue_job
from db.session import session_scope
from engine import TrainProgress
from tests.worker.clock import FakeClock
from tests.worker.seed import job_row
from worker.errors import JobCancelled, JobLostError
from worker.jobs import artifacts
from worker.jobs.lease import JobLease, claim
from worker.jobs.progress import JobMonitor, ProgressReporter, eta_text, format_duration
from worker.jobs.train import json_safe, train_message

Factory = sessionmaker[Session]


def _claimed(factory: Factory, worker: str = "test") -> JobLease:
    with session_scope(factory) as session:
        job_id = create_job(session, kind="train").id
    claimed = claim(factory, job_id, worker=worker)
    assert claimed is not None
    return claimed.lease


def test_progress_is_written_at_a_bounded_rate(factory: Factory) -> None:
    lease = _claimed(factory)
    clock = FakeClock()
    reporter = ProgressReporter(lease, interval_s=2.0, clock=clock)
    assert reporter.report(0.1, "epoch 1/10", {"epoch": 1}) is True
    for step in range(50):  # a burst of reports within the interval: none is written
        clock.now += 0.01
        assert reporter.report(0.1 + step / 1000, f"step {step}") is False
    assert job_row(factory, lease.job_id).message == "epoch 1/10"
    clock.now += 2.0
    assert reporter.report(0.5, "epoch 5/10", {"epoch": 5}) is True
    assert reporter.report(0.6, "saving", force=True) is True  # forced writes always go through
    assert reporter.writes == 3
    job = job_row(factory, lease.job_id)
    assert (job.progress, job.message) == (0.6, "saving")
    assert job.result_json == {"live": {"epoch": 5}}
    assert job.heartbeat_at is not None


def test_reporter_notices_a_job_taken_away(factory: Factory) -> None:
    lease = _claimed(factory)
    with session_scope(factory) as session:
        requeue_job(session, lease.job_id, reason="test")
    reporter = ProgressReporter(lease, interval_s=1.0)
    assert reporter.report(0.2, "epoch 2/10") is False
    assert lease.lost and lease.should_stop()
    with pytest.raises(JobLostError):
        lease.check()
    job = job_row(factory, lease.job_id)
    assert job.status == "queued" and job.message != "epoch 2/10"


def test_a_zombie_attempt_cannot_write_into_the_next_attempt(factory: Factory) -> None:
    zombie = _claimed(factory, worker="w1")
    with session_scope(factory) as session:
        requeue_job(session, zombie.job_id, reason="w1 stopped responding", attempt=1)
    claimed = claim(factory, zombie.job_id, worker="w2")
    assert claimed is not None and claimed.lease.attempt == 2
    current = claimed.lease
    assert ProgressReporter(current, interval_s=0).report(0.3, "epoch 3/10", {"epoch": 3})
    before = job_row(factory, zombie.job_id)

    assert ProgressReporter(zombie, interval_s=0).report(0.9, "epoch 9/10", {"e": 9}) is False
    assert zombie.lost and zombie.renew() is False
    with pytest.raises(JobLostError):
        zombie.confirm()
    with pytest.raises(JobLostError), session_scope(factory) as session:
        zombie.succeed(session, message="done by the zombie", result={"x": 1})
    after = job_row(factory, zombie.job_id)
    assert (after.status, after.attempts, after.worker_name) == ("running", 2, "w2")
    assert (after.progress, after.message, after.result_json) == (
        before.progress,
        before.message,
        before.result_json,
    )
    assert not current.lost and current.renew() is True


def test_a_fresh_lease_is_refused_once_another_attempt_holds_the_row(factory: Factory) -> None:
    """The check is on the attempt, not the status: the row is ``running`` for both."""
    old = _claimed(factory, worker="w1")
    with session_scope(factory) as session:
        requeue_job(session, old.job_id, reason="test", attempt=1)
    assert claim(factory, old.job_id, worker="w2") is not None
    assert job_row(factory, old.job_id).status == "running"
    assert old.renew() is False and old.lost


def test_monitor_heartbeats_and_reads_the_cancel_flag(factory: Factory) -> None:
    lease = _claimed(factory)
    first = job_row(factory, lease.job_id).heartbeat_at
    with JobMonitor(lease, interval_s=0.05) as monitor:
        deadline = time.monotonic() + 30
        while job_row(factory, lease.job_id).heartbeat_at == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not lease.should_stop()
        with session_scope(factory, immediate=True) as session:  # as the dashboard cancels
            request_cancel(session, lease.job_id)
        deadline = time.monotonic() + 30
        while not lease.should_stop() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert monitor.lease is lease
    assert lease.cancel_requested and not lease.lost
    with pytest.raises(JobCancelled):
        lease.check()
    job = job_row(factory, lease.job_id)
    assert job.heartbeat_at is not None and first is not None and job.heartbeat_at > first


def _progress(phase: str, **kwargs: object) -> TrainProgress:
    values: dict[str, object] = {
        "phase": phase,
        "fraction": 0.25,
        "epoch": 3,
        "epochs": 12,
        "step": 1,
        "steps": 4,
        "loss": 0.8123,
        "elapsed_s": 40.0,
        "eta_s": 120.0,
    }
    values.update(kwargs)
    return TrainProgress(**values)  # type: ignore[arg-type]


def test_messages_read_well() -> None:
    assert train_message(_progress("training")) == "epoch 3/12 · loss 0.812 · 2 min left"
    assert train_message(_progress("training", eta_s=None, loss=None)) == "epoch 3/12"
    assert train_message(_progress("features", eta_s=30.0)) == "computing features 25% · 30 s left"
    assert train_message(_progress("calibrating")).startswith("calibrating the default threshold")
    assert train_message(_progress("loading", message="5 training images")) == "5 training images"
    assert format_duration(59.2) == "60 s"
    assert format_duration(3900) == "1 h 5 min"
    assert eta_text(None) == "" and eta_text(float("nan")) == ""


def test_json_safe_drops_nan_and_infinity() -> None:
    assert json_safe({"a": [1.0, float("nan")], "b": (float("inf"), "x")}) == {
        "a": [1.0, None],
        "b": [None, "x"],
    }


# --- model folders -------------------------------------------------------------------------------


def test_publish_renames_the_temp_folder_into_place(tmp_path: Path) -> None:
    temp = artifacts.make_temp_dir(tmp_path, 7)
    (temp / "model.adn").write_text("new")
    other = artifacts.make_temp_dir(tmp_path, 71)  # another model's: left alone
    stale = artifacts.make_temp_dir(tmp_path, 7)
    assert artifacts.remove_temp_dirs(tmp_path, 7) == 2
    assert not temp.exists() and not stale.exists() and other.exists()

    temp = artifacts.make_temp_dir(tmp_path, 7)
    (temp / "model.adn").write_text("first")
    final = artifacts.publish(temp, tmp_path, 7)
    assert final == tmp_path / "models" / "7"
    assert (final / "model.adn").read_text() == "first"
    again = artifacts.make_temp_dir(tmp_path, 7)
    (again / "model.adn").write_text("second")
    artifacts.publish(again, tmp_path, 7)  # an earlier attempt's folder is replaced
    assert (final / "model.adn").read_text() == "second"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        ".tmp-71-" + other.name.split("-", 2)[2],
        "7",
    ]
    assert artifacts.artifact_relative_path(7) == "models/7/model.adn"


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_engine_device_passes_plain_choices(device: str) -> None:
    from worker.jobs.device import engine_device

    assert engine_device(device) == device
