"""Run one job: claim its row, run its body beside a heartbeat thread, finish the row.

A job that cannot be claimed (finished, cancelled, or running elsewhere) is a redelivered or
duplicate message: it is logged and nothing else happens. A claim starts an attempt with its
:class:`~worker.jobs.lease.JobLease`, through which every later write of the attempt goes; an
attempt whose lease is lost stops without touching the row. Errors become a failed row with a
message people can act on; unexpected ones also log their traceback.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import StoreError
from db.models import Job
from db.session import session_scope
from worker.errors import JobCancelled, JobLostError, WorkerError
from worker.jobs.lease import JobLease, claim
from worker.jobs.progress import JobMonitor, ProgressReporter
from worker.jobs.store import session_factory
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

SKIPPED, SUCCEEDED, FAILED, CANCELLED, LOST = "skipped", "succeeded", "failed", "cancelled", "lost"


@dataclass
class JobContext:
    """What a job body needs: its row's data, settings, database, lease and progress channels."""

    job_id: int
    kind: str
    params: dict[str, Any]
    project_id: int | None
    settings: WorkerSettings
    factory: sessionmaker[Session]
    lease: JobLease
    monitor: JobMonitor
    reporter: ProgressReporter
    notes: list[str] = field(default_factory=list)

    @property
    def attempt(self) -> int:
        """This attempt's number (1 for the first claim of the job)."""
        return self.lease.attempt

    def session(self, *, immediate: bool = False) -> AbstractContextManager[Session]:
        """A transaction that commits at the end of the block."""
        return session_scope(self.factory, immediate=immediate)

    def should_stop(self) -> bool:
        """Whether the body must stop now (cancel requested, or the lease lost)."""
        return self.lease.should_stop()

    def check(self) -> None:
        """Raise :class:`JobCancelled` or :class:`JobLostError` when the body must stop."""
        self.lease.check()

    def before_success(self) -> None:
        """Stop the heartbeat thread before the body marks the job succeeded.

        After that, a heartbeat would find the row finished and take it for a lost job.
        """
        self.monitor.stop()


class JobBody:
    """The work of one job kind; :meth:`run` finishes the row itself when it succeeds."""

    kind = ""

    def run(self, ctx: JobContext) -> None:
        """Do the work and mark the job succeeded (in the same transaction as its results)."""
        raise NotImplementedError

    def on_stopped(self, session: Session, ctx: JobContext, reason: str) -> None:
        """Database side effects of a failed or cancelled run (same transaction as the row)."""


def worker_name(hostname: str | None = None) -> str:
    """``"<celery node or host> pid <pid>"``: who runs a job, as shown in the job list."""
    return f"{hostname or socket.gethostname()} pid {os.getpid()}"


def run_job(
    job_id: int,
    body: JobBody,
    settings: WorkerSettings,
    *,
    worker: str | None = None,
    task_id: str | None = None,
) -> str:
    """Claim and run job ``job_id``; return what happened (``succeeded``, ``skipped``, ...)."""
    factory = session_factory(settings)
    claimed = claim(factory, job_id, worker=worker or worker_name(), task_id=task_id)
    if claimed is None:
        _log_unclaimed(factory, job_id)
        return SKIPPED
    kind, lease = claimed.kind, claimed.lease
    logger.info("job %s (%s) claimed, attempt %s", job_id, kind, lease.attempt)
    interval = settings.progress_interval_s
    ctx = JobContext(
        job_id=job_id,
        kind=kind,
        params=claimed.params,
        project_id=claimed.project_id,
        settings=settings,
        factory=factory,
        lease=lease,
        monitor=JobMonitor(lease, interval),
        reporter=ProgressReporter(lease, interval),
    )
    if kind != body.kind:
        reason = f"job {job_id} is a {kind!r} job but was sent to the {body.kind!r} task"
        return _finish_stopped(ctx, body, reason, cancelled=False)
    try:
        with ctx.monitor:
            try:
                body.run(ctx)
            finally:
                release_gpu_memory()
    except JobLostError as exc:
        logger.warning("job %s stopped here: %s", job_id, exc)
        return LOST
    except JobCancelled as exc:
        return _finish_stopped(ctx, body, str(exc), cancelled=True)
    except SoftTimeLimitExceeded:
        reason = (
            f"stopped: the job ran longer than the time limit of "
            f"{settings.task_soft_time_limit_s} s (ADN_TASK_SOFT_TIME_LIMIT_S). Use a shorter "
            "schedule (fewer epochs or images, the fast preset) or raise ADN_TASK_TIME_LIMIT_S."
        )
        return _finish_stopped(ctx, body, reason, cancelled=False)
    except Exception as exc:
        readable = readable_error(exc)
        if readable is None:
            logger.exception("job %s failed unexpectedly", job_id)
            readable = f"{type(exc).__name__}: {exc}"
        else:
            logger.warning("job %s failed: %s", job_id, readable)
        return _finish_stopped(ctx, body, readable, cancelled=False)
    logger.info("job %s (%s) succeeded", job_id, kind)
    return SUCCEEDED


def release_gpu_memory() -> None:
    """Hand cached CUDA memory back after a job, so other processes on the GPU can use it."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def readable_error(exc: BaseException) -> str | None:
    """The message of an error raised on purpose (engine, store, worker); None for others."""
    engine_errors = sys.modules.get("engine.errors")
    if engine_errors is not None and isinstance(exc, engine_errors.EngineError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, StoreError | WorkerError):
        return str(exc) or type(exc).__name__
    return None


def _finish_stopped(ctx: JobContext, body: JobBody, reason: str, *, cancelled: bool) -> str:
    """Mark the row cancelled or failed (with the body's side effects) in one transaction."""
    try:
        with ctx.session(immediate=True) as session:
            ctx.lease.hold(session)
            body.on_stopped(session, ctx, reason)
            if cancelled:
                ctx.lease.cancel(session, message=_with_notes(reason, ctx.notes))
            else:
                ctx.lease.fail(session, error=reason, message=_with_notes("", ctx.notes) or None)
    except JobLostError as exc:
        logger.warning("job %s not marked as it %s: %s", ctx.job_id, _word(cancelled), exc)
        return LOST
    except (StoreError, SQLAlchemyError):
        # The sweep finds the stale row later and re-queues or fails it.
        logger.exception("job %s: could not record that it %s", ctx.job_id, _word(cancelled))
        return LOST
    logger.info("job %s %s: %s", ctx.job_id, _word(cancelled), reason)
    return CANCELLED if cancelled else FAILED


def _word(cancelled: bool) -> str:
    return "was cancelled" if cancelled else "failed"


def _with_notes(text: str, notes: list[str]) -> str:
    return " · ".join(part for part in [text, *notes] if part)


def _log_unclaimed(factory: sessionmaker[Session], job_id: int) -> None:
    with session_scope(factory) as session:
        job = session.get(Job, job_id)
        if job is None:
            logger.warning("job %s does not exist; message ignored", job_id)
        else:
            logger.info(
                "job %s is %s%s; this delivery does nothing",
                job_id,
                job.status,
                " (cancel requested)" if job.cancel_requested else "",
            )


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive slices of ``items`` of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
