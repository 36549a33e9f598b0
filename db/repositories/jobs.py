"""Jobs: the row is the source of truth; transitions are single guarded UPDATEs.

Life cycle: queued -> running (claim) -> succeeded | failed | cancelled. A queued job can be
cancelled or failed directly; a running job whose worker stopped can be re-queued.

Each claim starts a new attempt (``attempts`` counts them). The writes of a running attempt
(heartbeat, progress, finishing) name that attempt and change the row only while it is still
``running`` as that attempt, so an attempt whose job was re-queued and claimed again can no
longer write into the next attempt's row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session

from db.errors import InvalidValueError, JobStateError
from db.models import Job, JobStatus, Role, User, utcnow
from db.repositories._common import check_choice, check_page, clean_name, get_or_raise
from db.repositories.audit import record_audit
from db.roles import require_role

logger = logging.getLogger(__name__)

_PROGRESS_TOLERANCE = 1e-6


def create_job(
    session: Session,
    *,
    kind: str,
    project_id: int | None = None,
    params: dict[str, Any] | None = None,
    celery_task_id: str | None = None,
    actor: User | None = None,
) -> Job:
    """Add a queued job (reviewers and admins when `actor` is given); commit, then send it."""
    if actor is not None:
        require_role(actor, Role.REVIEWER, action=f"start {kind} jobs")
    job = Job(
        kind=clean_name("job kind", kind, max_length=32),
        project_id=project_id,
        status=JobStatus.QUEUED.value,
        progress=0.0,
        params_json=dict(params or {}),
        cancel_requested=False,
        attempts=0,
        celery_task_id=celery_task_id,
        created_by=actor.id if actor is not None else None,
    )
    session.add(job)
    session.flush()
    record_audit(
        session,
        action="job.create",
        entity_type="job",
        entity_id=job.id,
        user=actor,
        details={"kind": job.kind, "project_id": project_id},
    )
    return job


def get_job(session: Session, job_id: int) -> Job:
    """The job with this id, or `NotFoundError`."""
    return get_or_raise(session, Job, job_id, "job")


def _reload(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        return get_job(session, job_id)
    return job


def _guarded_update(
    session: Session,
    job_id: int,
    allowed: Iterable[str],
    *,
    attempt: int | None = None,
    **values: Any,
) -> bool:
    """UPDATE the job only while its status is one of `allowed` (and, when `attempt` is given,
    while it is still that attempt); True if a row changed."""
    conditions = [Job.id == job_id, Job.status.in_([str(s) for s in allowed])]
    if attempt is not None:
        conditions.append(Job.attempts == attempt)
    statement = update(Job).where(*conditions).values(**values)
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount == 1


def _finishable(attempt: int | None) -> list[JobStatus]:
    """Statuses a finishing write accepts: an attempt finishes only its own running job."""
    if attempt is not None:
        return [JobStatus.RUNNING]
    return [JobStatus.QUEUED, JobStatus.RUNNING]


def _state_error(
    session: Session, job_id: int, wanted: str, attempt: int | None = None
) -> JobStateError:
    job = _reload(session, job_id)
    if attempt is not None and job.status == JobStatus.RUNNING.value and job.attempts != attempt:
        return JobStateError(
            f"job {job_id} ({job.kind}) is running as attempt {job.attempts}; attempt {attempt} "
            f"cannot be {wanted}. It was re-queued after its worker looked dead and is now run "
            "by another worker."
        )
    return JobStateError(
        f"job {job_id} ({job.kind}) is {job.status}; it cannot be {wanted} from that status. "
        "Reload the job list; another worker or person may have changed it."
    )


def claim_job(
    session: Session,
    job_id: int,
    *,
    worker_name: str,
    celery_task_id: str | None = None,
) -> Job | None:
    """Move a queued job to running for this worker; None when it is not queued (exclusive)."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": JobStatus.RUNNING.value,
        "worker_name": worker_name,
        "started_at": now,
        "heartbeat_at": now,
        "attempts": Job.attempts + 1,
        "message": None,
        "error": None,
    }
    if celery_task_id is not None:
        values["celery_task_id"] = celery_task_id
    statement = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.QUEUED.value,
            Job.cancel_requested.is_(False),
        )
        .values(**values)
    )
    result = cast(CursorResult[Any], session.execute(statement))
    if result.rowcount != 1:
        logger.info("job %s not claimed by %s: it is not queued", job_id, worker_name)
        return None
    return _reload(session, job_id)


def update_progress(
    session: Session,
    job_id: int,
    progress: float,
    message: str | None = None,
    *,
    details: Mapping[str, Any] | None = None,
    attempt: int | None = None,
) -> bool:
    """Set progress (0..1), message and live details (stored as ``{"live": details}`` in the
    result) of a running job, and refresh its heartbeat.

    One UPDATE, nothing loaded. False when the job is no longer running (as `attempt`, if given).
    """
    if math.isnan(progress) or not -_PROGRESS_TOLERANCE <= progress <= 1 + _PROGRESS_TOLERANCE:
        raise InvalidValueError(f"progress must be between 0 and 1, got {progress!r}")
    values: dict[str, Any] = {
        "progress": min(1.0, max(0.0, float(progress))),
        "heartbeat_at": utcnow(),
    }
    if message is not None:
        values["message"] = message
    if details is not None:
        values["result_json"] = {"live": dict(details)}
    return _guarded_update(session, job_id, [JobStatus.RUNNING], attempt=attempt, **values)


def heartbeat(session: Session, job_id: int, *, attempt: int) -> bool:
    """Record that attempt `attempt` of a running job is alive; False when the job is no longer
    running as that attempt (re-queued, claimed again, or finished)."""
    return _guarded_update(
        session, job_id, [JobStatus.RUNNING], attempt=attempt, heartbeat_at=utcnow()
    )


def finish_succeeded(
    session: Session,
    job_id: int,
    *,
    message: str | None = None,
    result: dict[str, Any] | None = None,
    attempt: int | None = None,
) -> Job:
    """Mark a running job (as `attempt`, if given) succeeded with progress 1, or raise
    `JobStateError`."""
    return _finish(
        session,
        job_id,
        JobStatus.SUCCEEDED,
        [JobStatus.RUNNING],
        attempt,
        progress=1.0,
        message=message,
        result_json=result,
    )


def finish_failed(
    session: Session,
    job_id: int,
    *,
    error: str,
    message: str | None = None,
    attempt: int | None = None,
) -> Job:
    """Mark a queued or running job failed with an error text people can act on.

    With `attempt`, only a job still running as that attempt; else `JobStateError`.
    """
    if not error.strip():
        raise InvalidValueError("a failed job needs an error text that says what went wrong")
    return _finish(
        session,
        job_id,
        JobStatus.FAILED,
        _finishable(attempt),
        attempt,
        error=error,
        message=message,
    )


def finish_cancelled(
    session: Session, job_id: int, *, message: str | None = None, attempt: int | None = None
) -> Job:
    """Mark a queued or running job cancelled (the worker calls this after stopping).

    With `attempt`, only a job still running as that attempt; else `JobStateError`.
    """
    return _finish(
        session,
        job_id,
        JobStatus.CANCELLED,
        _finishable(attempt),
        attempt,
        message=message or "cancelled on request",
    )


def _finish(
    session: Session,
    job_id: int,
    status: JobStatus,
    allowed: Iterable[str],
    attempt: int | None,
    **values: Any,
) -> Job:
    """Move the job to the finished `status` from one of `allowed`, or raise `JobStateError`."""
    changed = _guarded_update(
        session,
        job_id,
        allowed,
        attempt=attempt,
        status=status.value,
        finished_at=utcnow(),
        **values,
    )
    if not changed:
        raise _state_error(session, job_id, f"marked {status.value}", attempt)
    return _reload(session, job_id)


def request_cancel(session: Session, job_id: int, *, actor: User | None = None) -> Job:
    """Ask a job to stop: a queued job is cancelled at once, a running one is flagged for its
    worker; a finished job is left as it is."""
    if actor is not None:
        require_role(actor, Role.REVIEWER, action="cancel jobs")
    get_job(session, job_id)
    who = actor.username if actor is not None else "the system"
    cancelled_now = _guarded_update(
        session,
        job_id,
        [JobStatus.QUEUED],
        status=JobStatus.CANCELLED.value,
        cancel_requested=True,
        message=f"cancelled by {who} before it started",
        finished_at=utcnow(),
    )
    if not cancelled_now:
        _guarded_update(session, job_id, [JobStatus.RUNNING], cancel_requested=True)
    job = _reload(session, job_id)
    record_audit(
        session,
        action="job.cancel",
        entity_type="job",
        entity_id=job_id,
        user=actor,
        details={"status": job.status},
    )
    return job


def is_cancel_requested(session: Session, job_id: int) -> bool:
    """Whether someone asked the job to stop (one small SELECT)."""
    flag = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    if flag is None:
        get_job(session, job_id)
    return bool(flag)


def list_recent_jobs(
    session: Session,
    *,
    project_id: int | None = None,
    kind: str | None = None,
    statuses: Iterable[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Job]:
    """Jobs, newest first, optionally by project, kind and statuses."""
    check_page(limit, offset)
    query = select(Job)
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if statuses is not None:
        wanted = [check_choice("job status", s, (j.value for j in JobStatus)) for s in statuses]
        query = query.where(Job.status.in_(wanted))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def find_stale_jobs(
    session: Session, *, older_than_s: float, now: datetime | None = None
) -> list[Job]:
    """Running jobs whose last heartbeat (or start) is more than `older_than_s` seconds old."""
    if older_than_s <= 0:
        raise InvalidValueError(f"older_than_s must be positive, got {older_than_s}")
    cutoff = (now or utcnow()) - timedelta(seconds=older_than_s)
    query = (
        select(Job)
        .where(
            Job.status == JobStatus.RUNNING.value,
            or_(
                Job.heartbeat_at < cutoff,
                and_(Job.heartbeat_at.is_(None), Job.started_at < cutoff),
                and_(Job.heartbeat_at.is_(None), Job.started_at.is_(None)),
            ),
        )
        .order_by(Job.id)
    )
    return list(session.scalars(query))


def requeue_job(session: Session, job_id: int, *, reason: str, attempt: int | None = None) -> bool:
    """Put a running job (whose worker died) back in the queue; True if it was re-queued.

    A job that was asked to cancel is marked cancelled instead, and False is returned. With
    `attempt`, only a job still running as that attempt changes (False otherwise). The caller
    resends the task and decides, from `attempts`, when to fail the job instead.
    """
    job = get_job(session, job_id)
    if job.cancel_requested:
        _guarded_update(
            session,
            job_id,
            [JobStatus.RUNNING],
            attempt=attempt,
            status=JobStatus.CANCELLED.value,
            message=f"cancelled on request; {reason}",
            finished_at=utcnow(),
        )
        _reload(session, job_id)
        return False
    changed = _guarded_update(
        session,
        job_id,
        [JobStatus.RUNNING],
        attempt=attempt,
        status=JobStatus.QUEUED.value,
        worker_name=None,
        started_at=None,
        heartbeat_at=None,
        progress=0.0,
        message=reason,
    )
    _reload(session, job_id)
    if changed:
        logger.warning("job %s re-queued: %s", job_id, reason)
        record_audit(
            session,
            action="job.requeue",
            entity_type="job",
            entity_id=job_id,
            details={"reason": reason},
        )
    return changed
