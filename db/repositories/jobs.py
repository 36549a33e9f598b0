"""Jobs: the row is the source of truth; transitions are single guarded UPDATEs.

Life cycle: queued -> running (claim) -> succeeded | failed | cancelled. A queued job can be
cancelled or failed directly; a running job whose worker stopped can be re-queued.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
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


def _guarded_update(session: Session, job_id: int, allowed: Iterable[str], **values: Any) -> bool:
    """UPDATE the job only while its status is one of `allowed`; True if a row changed."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_([str(s) for s in allowed]))
        .values(**values)
    )
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount == 1


def _state_error(session: Session, job_id: int, wanted: str) -> JobStateError:
    job = _reload(session, job_id)
    return JobStateError(
        f"job {job_id} ({job.kind}) is {job.status}; it cannot be {wanted} from that status. "
        "Reload the job list; another worker or person may have changed it."
    )


def set_celery_task_id(session: Session, job_id: int, celery_task_id: str) -> Job:
    """Remember the broker's task id of a job (after sending it)."""
    job = get_job(session, job_id)
    job.celery_task_id = celery_task_id
    session.flush()
    return job


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
    session: Session, job_id: int, progress: float, message: str | None = None
) -> bool:
    """Set progress (0..1) and message of a running job, and refresh its heartbeat.

    One UPDATE, nothing loaded. False when the job is no longer running.
    """
    if math.isnan(progress) or not -_PROGRESS_TOLERANCE <= progress <= 1 + _PROGRESS_TOLERANCE:
        raise InvalidValueError(f"progress must be between 0 and 1, got {progress!r}")
    values: dict[str, Any] = {
        "progress": min(1.0, max(0.0, float(progress))),
        "heartbeat_at": utcnow(),
    }
    if message is not None:
        values["message"] = message
    return _guarded_update(session, job_id, [JobStatus.RUNNING], **values)


def heartbeat(session: Session, job_id: int) -> bool:
    """Record that the worker of a running job is alive; False when it is not running."""
    return _guarded_update(session, job_id, [JobStatus.RUNNING], heartbeat_at=utcnow())


def finish_succeeded(
    session: Session,
    job_id: int,
    *,
    message: str | None = None,
    result: dict[str, Any] | None = None,
) -> Job:
    """Mark a running job succeeded (progress 1), or raise `JobStateError`."""
    changed = _guarded_update(
        session,
        job_id,
        [JobStatus.RUNNING],
        status=JobStatus.SUCCEEDED.value,
        progress=1.0,
        message=message,
        result_json=result,
        finished_at=utcnow(),
    )
    if not changed:
        raise _state_error(session, job_id, "marked succeeded")
    return _reload(session, job_id)


def finish_failed(
    session: Session,
    job_id: int,
    *,
    error: str,
    message: str | None = None,
) -> Job:
    """Mark a queued or running job failed with an error text people can act on."""
    if not error.strip():
        raise InvalidValueError("a failed job needs an error text that says what went wrong")
    changed = _guarded_update(
        session,
        job_id,
        [JobStatus.QUEUED, JobStatus.RUNNING],
        status=JobStatus.FAILED.value,
        error=error,
        message=message,
        finished_at=utcnow(),
    )
    if not changed:
        raise _state_error(session, job_id, "marked failed")
    return _reload(session, job_id)


def finish_cancelled(session: Session, job_id: int, *, message: str | None = None) -> Job:
    """Mark a queued or running job cancelled (the worker calls this after stopping)."""
    changed = _guarded_update(
        session,
        job_id,
        [JobStatus.QUEUED, JobStatus.RUNNING],
        status=JobStatus.CANCELLED.value,
        message=message or "cancelled on request",
        finished_at=utcnow(),
    )
    if not changed:
        raise _state_error(session, job_id, "marked cancelled")
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


def requeue_job(session: Session, job_id: int, *, reason: str) -> bool:
    """Put a running job (whose worker died) back in the queue; True if it was re-queued.

    A job that was asked to cancel is marked cancelled instead, and False is returned. The
    caller resends the task and decides, from `attempts`, when to fail the job instead.
    """
    job = get_job(session, job_id)
    if job.cancel_requested:
        _guarded_update(
            session,
            job_id,
            [JobStatus.RUNNING],
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
