"""Jobs: send queued rows to the workers by name, list them, cancel and retry them.

The dashboard writes the job row, commits, then sends the task. When the broker is down the
row stays queued and the workers' sweep re-sends it later: nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from dashboard.services.models import lineage_text
from dashboard.services.store import SessionFactory
from db.errors import JobStateError
from db.models import JobStatus, ModelStatus, ModelVersion, TrainingSource, User
from db.repositories import (
    copy_training_images,
    create_job,
    create_model_version,
    get_job,
    get_model_version,
    get_user,
    list_recent_jobs,
    mark_model_failed,
    model_names,
    parent_ids,
    request_cancel,
    set_model_job,
    source_counts,
    usernames,
)
from db.session import session_scope
from jobspec import model_version_of

logger = logging.getLogger(__name__)

DISPATCH_MODULE = "worker.dispatch"  # the only worker module the dashboard uses
KINDS: tuple[str, ...] = ("train", "score")
STATUSES: tuple[str, ...] = tuple(s.value for s in JobStatus)
ACTIVE: tuple[str, ...] = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
RETRYABLE: tuple[str, ...] = (JobStatus.FAILED.value, JobStatus.CANCELLED.value)
BROKER_DOWN = (
    "The job queue (broker) cannot be reached right now, so {what} could not be handed to the "
    "workers. Nothing is lost: the job stays queued and the workers pick it up when the broker "
    "is back. Check that the worker services (Redis in the team setup) are running. ({reason})"
)


@dataclass(frozen=True)
class SendResult:
    """Whether one job was handed to the broker, and what to tell people when it was not."""

    job_id: int
    kind: str
    sent: bool
    task_id: str | None = None
    problem: str | None = None


def send_jobs(jobs: Iterable[tuple[int, str]]) -> list[SendResult]:
    """Send committed jobs ``(job_id, kind)`` by name; never raises for a broker problem."""
    pending = list(jobs)
    try:
        # Imported when first needed: sending needs Celery, which a page that only reads does not.
        import worker.dispatch as dispatch
    except ImportError as exc:
        logger.error("cannot import %s: %s", DISPATCH_MODULE, exc)
        problem = BROKER_DOWN.format(what="the job", reason=f"worker package missing: {exc}")
        return [SendResult(i, k, False, problem=problem) for i, k in pending]
    results: list[SendResult] = []
    for job_id, kind in pending:
        try:
            task_id = dispatch.send_job(job_id, kind)
        except dispatch.BrokerUnavailableError as exc:
            logger.warning("job %s not sent, broker unavailable: %s", job_id, exc)
            problem = BROKER_DOWN.format(what=f"job {job_id}", reason=exc)
            results.append(SendResult(job_id, kind, False, problem=problem))
            continue
        results.append(SendResult(job_id, kind, True, task_id=str(task_id)))
    return results


@dataclass(frozen=True)
class JobRow:
    """One job as plain values for the live table."""

    id: int
    kind: str
    status: str
    progress: float
    message: str | None
    error: str | None
    model: str | None
    model_version_id: int | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    cancel_requested: bool
    worker: str | None

    @property
    def can_cancel(self) -> bool:
        """Queued or running, and not already asked to stop."""
        return self.status in ACTIVE and not self.cancel_requested

    @property
    def can_retry(self) -> bool:
        """Failed or cancelled."""
        return self.status in RETRYABLE


def job_rows(
    factory: SessionFactory,
    *,
    project_id: int | None,
    statuses: Iterable[str] | None = None,
    kind: str | None = None,
    limit: int = 200,
) -> list[JobRow]:
    """Recent jobs of a project (newest first), filtered by status and kind."""
    wanted = list(statuses) if statuses is not None else None
    with session_scope(factory) as session:
        jobs = list_recent_jobs(
            session, project_id=project_id, kind=kind or None, statuses=wanted or None, limit=limit
        )
        model_ids = {m for j in jobs if (m := model_version_of(j.params_json))}
        models = model_names(session, model_ids)
        lineages = _lineages(session, model_ids)
        names = usernames(session, {j.created_by for j in jobs if j.created_by is not None})
        return [
            JobRow(
                id=j.id,
                kind=j.kind,
                status=j.status,
                progress=float(j.progress or 0.0),
                message=j.message,
                error=j.error,
                model=_model_label(models, lineages, model_version_of(j.params_json)),
                model_version_id=model_version_of(j.params_json),
                created_by=names.get(j.created_by) if j.created_by is not None else None,
                created_at=j.created_at,
                started_at=j.started_at,
                finished_at=j.finished_at,
                attempts=j.attempts,
                cancel_requested=bool(j.cancel_requested),
                worker=j.worker_name,
            )
            for j in jobs
        ]


def _lineages(session: Session, model_ids: Iterable[int]) -> dict[int, str]:
    """``"child of #3, +25 confirmed normals"`` per retrained model version."""
    parents = parent_ids(session, model_ids)
    counts = source_counts(session, parents)
    added = TrainingSource.CONFIRMED_NORMAL.value
    return {m: lineage_text(p, counts.get(m, {}).get(added, 0)) for m, p in parents.items()}


def _model_label(
    models: dict[int, tuple[str, str]], lineages: dict[int, str], model_id: int | None
) -> str | None:
    if model_id is None or model_id not in models:
        return None
    name, variant = models[model_id]
    lineage = lineages.get(model_id)
    return f"{name} · {variant}" + (f" · {lineage}" if lineage else "")


def cancel_job(factory: SessionFactory, job_id: int, *, actor_id: int) -> str:
    """Ask a job to stop; returns its status afterwards. A queued training job is cancelled
    at once, and its pending model version marked failed."""
    with session_scope(factory, immediate=True) as session:
        job = request_cancel(session, job_id, actor=get_user(session, actor_id))
        if job.kind == "train" and job.status == JobStatus.CANCELLED.value:
            model_id = model_version_of(job.params_json)
            if model_id is not None and get_model_version(session, model_id).status == (
                ModelStatus.PENDING.value
            ):
                mark_model_failed(session, model_id, reason=f"training job {job_id} cancelled")
        return str(job.status)


def retry_job(factory: SessionFactory, job_id: int, *, actor_id: int) -> SendResult:
    """Queue a new job with the same parameters as a failed or cancelled one (a training job
    gets a new pending model version), commit, then send it. The result names the new job."""
    with session_scope(factory, immediate=True) as session:
        new_id, kind = _write_retry(session, job_id, actor=get_user(session, actor_id))
    return send_jobs([(new_id, kind)])[0]


def _write_retry(session: Session, job_id: int, *, actor: User) -> tuple[int, str]:
    old = get_job(session, job_id)
    if old.status not in RETRYABLE:
        raise JobStateError(
            f"job {job_id} is {old.status}; only failed or cancelled jobs can be retried."
        )
    params = dict(old.params_json or {})
    model_id = model_version_of(params)
    new_model: ModelVersion | None = None
    if old.kind == "train" and model_id is not None:
        previous = get_model_version(session, model_id)
        new_model = create_model_version(
            session,
            project_id=previous.project_id,
            name=previous.name,
            variant=previous.variant,
            backbone=previous.backbone,
            category=previous.category,
            config=dict(previous.config_json or {}),
            training_image_count=previous.training_image_count,
            parent_id=previous.parent_id,
            actor=actor,
        )
        copy_training_images(session, previous.id, new_model.id)  # a retraining keeps its lineage
        params["model_version_id"] = new_model.id
    job = create_job(session, kind=old.kind, project_id=old.project_id, params=params, actor=actor)
    if new_model is not None:
        set_model_job(session, new_model.id, job.id)
    logger.info("job %s retried as job %s by %r", job_id, job.id, actor.username)
    return job.id, str(job.kind)
