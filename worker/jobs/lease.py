"""One attempt's lease on its job row: every write of the attempt goes through it.

Claiming a queued job starts an attempt and creates its :class:`JobLease`. Every later write of
that attempt (heartbeat, progress, finishing) is one UPDATE that changes the row only while it is
still ``running`` as this attempt (job id and attempt number). A refused write means the row is
no longer this attempt's: the sweep re-queued it (its worker looked dead), another attempt
claimed it, or it was finished elsewhere. The lease is then lost for good, it writes nothing
more, and the attempt stops at its next check.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import JobStateError, StoreError
from db.repositories import (
    claim_job,
    finish_cancelled,
    finish_failed,
    finish_succeeded,
    heartbeat,
    is_cancel_requested,
    update_progress,
)
from db.session import session_scope
from worker.errors import JobCancelled, JobLostError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedJob:
    """A job this attempt claimed: its lease and what the job body needs from the row."""

    lease: JobLease
    kind: str
    params: dict[str, Any]
    project_id: int | None


def claim(
    factory: sessionmaker[Session], job_id: int, *, worker: str, task_id: str | None = None
) -> ClaimedJob | None:
    """Claim a queued job as a new attempt of ``worker``; None when it is not queued."""
    with session_scope(factory, immediate=True) as session:
        job = claim_job(session, job_id, worker_name=worker, celery_task_id=task_id)
        if job is None:
            return None
        lease = JobLease(factory, job_id, job.attempts, worker)
        return ClaimedJob(lease, job.kind, dict(job.params_json or {}), job.project_id)


class JobLease:
    """The hold of attempt ``attempt`` of ``worker`` on job ``job_id``.

    Thread-safe: the heartbeat thread and the job body share one lease.
    """

    def __init__(
        self, factory: sessionmaker[Session], job_id: int, attempt: int, worker: str
    ) -> None:
        self.factory = factory
        self.job_id = job_id
        self.attempt = attempt
        self.worker = worker
        self._lost = threading.Event()
        self._cancel = threading.Event()

    def __repr__(self) -> str:
        return f"JobLease(job={self.job_id}, attempt={self.attempt}, worker={self.worker!r})"

    @property
    def lost(self) -> bool:
        """Whether a write was refused: the row is no longer this attempt's."""
        return self._lost.is_set()

    @property
    def cancel_requested(self) -> bool:
        """Whether someone asked the job to stop (read at each heartbeat)."""
        return self._cancel.is_set()

    def should_stop(self) -> bool:
        """Whether the attempt must stop now (cancel requested, or the lease lost)."""
        return self.lost or self.cancel_requested

    def check(self) -> None:
        """Raise :class:`JobLostError` or :class:`JobCancelled` when the attempt must stop."""
        if self.lost:
            raise self._lost_error()
        if self.cancel_requested:
            raise JobCancelled("cancelled on request")

    # --- writes in a transaction of their own -----------------------------------------------

    def renew(self) -> bool:
        """Refresh the heartbeat and read the cancel flag; True when the write was accepted.

        False when it was refused (the lease is lost) or the database could not be reached
        (the lease stays held; the next renewal tries again).
        """
        if self.lost:
            return False
        try:
            with session_scope(self.factory) as session:
                accepted = heartbeat(session, self.job_id, attempt=self.attempt)
                cancel = accepted and is_cancel_requested(session, self.job_id)
        except (StoreError, SQLAlchemyError) as exc:
            logger.warning("job %s: heartbeat failed: %s", self.job_id, exc)
            return False
        if not accepted:
            self._mark_lost("its heartbeat was refused")
        elif cancel and not self.cancel_requested:
            logger.info("job %s: cancel requested", self.job_id)
            self._cancel.set()
        return accepted

    def report(self, fraction: float, message: str, details: Mapping[str, Any] | None) -> bool:
        """Write progress, message and live details; True when the write was accepted.

        A database error is logged and returns False: it must not stop a long training.
        """
        if self.lost:
            return False
        try:
            with session_scope(self.factory) as session:
                accepted = update_progress(
                    session,
                    self.job_id,
                    fraction,
                    message,
                    details=details,
                    attempt=self.attempt,
                )
        except (StoreError, SQLAlchemyError) as exc:
            logger.warning("job %s: could not write progress: %s", self.job_id, exc)
            return False
        if not accepted:
            self._mark_lost("its progress was refused")
        return accepted

    def confirm(self) -> None:
        """Raise :class:`JobLostError` unless the row is still this attempt's (a heartbeat in a
        transaction of its own; call it before a step a newer attempt must not see undone)."""
        with session_scope(self.factory) as session:
            self.hold(session)

    # --- writes in the caller's transaction --------------------------------------------------

    def hold(self, session: Session) -> None:
        """Refresh the heartbeat inside ``session``'s transaction, or raise :class:`JobLostError`.

        Call it first in a transaction that finishes the job: on PostgreSQL the row stays locked
        until the commit, so the sweep cannot re-queue the job meanwhile.
        """
        self.check_not_lost()
        if not heartbeat(session, self.job_id, attempt=self.attempt):
            self._mark_lost("it could not hold the row")
            raise self._lost_error()

    def succeed(
        self, session: Session, *, message: str | None, result: dict[str, Any] | None
    ) -> None:
        """Mark the job succeeded in ``session``'s transaction, or raise :class:`JobLostError`."""
        self.check_not_lost()
        try:
            finish_succeeded(
                session, self.job_id, message=message, result=result, attempt=self.attempt
            )
        except JobStateError as exc:
            raise self._refused(exc) from exc

    def fail(self, session: Session, *, error: str, message: str | None = None) -> None:
        """Mark the job failed in ``session``'s transaction, or raise :class:`JobLostError`."""
        self.check_not_lost()
        try:
            finish_failed(session, self.job_id, error=error, message=message, attempt=self.attempt)
        except JobStateError as exc:
            raise self._refused(exc) from exc

    def cancel(self, session: Session, *, message: str) -> None:
        """Mark the job cancelled in ``session``'s transaction, or raise :class:`JobLostError`."""
        self.check_not_lost()
        try:
            finish_cancelled(session, self.job_id, message=message, attempt=self.attempt)
        except JobStateError as exc:
            raise self._refused(exc) from exc

    def check_not_lost(self) -> None:
        """Raise :class:`JobLostError` when the lease is already lost."""
        if self.lost:
            raise self._lost_error()

    # --- internals ---------------------------------------------------------------------------

    def _mark_lost(self, why: str) -> None:
        if not self.lost:
            logger.warning(
                "job %s is no longer attempt %s of %s (%s): re-queued, taken over or finished "
                "elsewhere; this attempt stops",
                self.job_id,
                self.attempt,
                self.worker,
                why,
            )
        self._lost.set()

    def _refused(self, exc: JobStateError) -> JobLostError:
        self._mark_lost("its finishing write was refused")
        return JobLostError(str(exc))

    def _lost_error(self) -> JobLostError:
        return JobLostError(
            f"job {self.job_id} is no longer attempt {self.attempt} of {self.worker}: it was "
            "re-queued or failed by the sweep, or finished elsewhere"
        )
