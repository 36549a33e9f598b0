"""Progress at a bounded rate, a heartbeat thread, and cooperative cancellation of a running job.

:class:`ProgressReporter` writes progress and a readable message to the job row at most once per
``ADN_PROGRESS_INTERVAL_S`` (each write also refreshes the heartbeat). :class:`JobMonitor` runs
beside the job in a thread: at the same rate it refreshes the heartbeat (so a long step with no
progress report never looks like a dead worker) and reads the cancel flag, so the job's hot loop
only reads two booleans.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import StoreError
from db.models import Job, JobStatus
from db.repositories import heartbeat, is_cancel_requested, update_progress
from db.session import session_scope
from worker.errors import JobCancelled, JobLostError

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"2 min"``, ``"1 h 5 min"``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{math.ceil(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def eta_text(eta_s: float | None) -> str:
    """``"2 min left"``, or ``""`` when the time left is unknown."""
    if eta_s is None or not math.isfinite(eta_s):
        return ""
    return f"{format_duration(eta_s)} left"


def join_parts(*parts: str) -> str:
    """The non-empty parts joined with `` · ``."""
    return " · ".join(p for p in parts if p)


def set_live_details(session: Session, job_id: int, details: Mapping[str, Any]) -> bool:
    """Store ``{"live": details}`` as the result of a running job; False when it is not running."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .values(result_json={"live": dict(details)})
    )
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount == 1


class ProgressReporter:
    """Writes progress (0..1), message and live details to the job row at a bounded rate."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        job_id: int,
        interval_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.factory = factory
        self.job_id = job_id
        self.interval_s = interval_s
        self.clock = clock
        self.lost = False
        self.writes = 0
        self._last = -math.inf

    def report(
        self,
        fraction: float,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> bool:
        """Write unless the last write was less than the interval ago; True when written."""
        now = self.clock()
        if not force and now - self._last < self.interval_s:
            return False
        self._last = now
        fraction = min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0
        try:
            with session_scope(self.factory) as session:
                alive = update_progress(session, self.job_id, fraction, message)
                if alive and details is not None:
                    set_live_details(session, self.job_id, details)
        except (StoreError, SQLAlchemyError) as exc:
            # A database blip must not stop a long training; the monitor keeps trying too.
            logger.warning("job %s: could not write progress: %s", self.job_id, exc)
            return False
        self.writes += 1
        if not alive:
            self.lost = True
        return True


def owns_job(session: Session, job_id: int, attempt: int | None, worker: str | None) -> bool:
    """Whether the job is still running as this attempt of this worker.

    A job re-queued by the sweep and claimed again elsewhere is ``running`` too, so the status
    alone does not tell a worker that it lost its job; the attempt number and worker name do.
    """
    row = session.execute(
        select(Job.status, Job.attempts, Job.worker_name).where(Job.id == job_id)
    ).one_or_none()
    if row is None or row.status != JobStatus.RUNNING.value:
        return False
    if attempt is not None and row.attempts != attempt:
        return False
    return worker is None or row.worker_name == worker


class JobMonitor:
    """Heartbeat and cancel flag of one running job, polled by a daemon thread."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        job_id: int,
        interval_s: float,
        *,
        attempt: int | None = None,
        worker: str | None = None,
    ) -> None:
        self.factory = factory
        self.job_id = job_id
        self.interval_s = interval_s
        self.attempt = attempt
        self.worker = worker
        self.cancel_requested = False
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Check the job is still ours, refresh its heartbeat and read its cancel flag once."""
        try:
            with session_scope(self.factory) as session:
                alive = owns_job(session, self.job_id, self.attempt, self.worker)
                alive = alive and heartbeat(session, self.job_id)
                cancel = alive and is_cancel_requested(session, self.job_id)
        except (StoreError, SQLAlchemyError) as exc:
            logger.warning("job %s: heartbeat failed: %s", self.job_id, exc)
            return
        if cancel and not self.cancel_requested:
            logger.info("job %s: cancel requested", self.job_id)
        self.cancel_requested = self.cancel_requested or cancel
        if not alive and not self.lost:
            logger.warning("job %s is no longer this worker's (re-queued or failed)", self.job_id)
        self.lost = self.lost or not alive

    def should_stop(self) -> bool:
        """Whether the job must stop now (cancelled, or taken away from this worker)."""
        return self.cancel_requested or self.lost

    def check(self) -> None:
        """Raise :class:`JobLostError` or :class:`JobCancelled` when the job must stop."""
        if self.lost:
            raise JobLostError(f"job {self.job_id} was re-queued or failed by the sweep")
        if self.cancel_requested:
            raise JobCancelled("cancelled on request")

    def start(self) -> None:
        """Start the polling thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"job-{self.job_id}-monitor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the polling thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def __enter__(self) -> JobMonitor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
