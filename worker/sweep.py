"""The sweep: jobs whose worker died, jobs whose message was lost, and the broker's history.

Each run does three things:

a. A running job whose heartbeat is older than ``ADN_STALE_JOB_AFTER_S`` lost its worker: it is
   re-queued and sent again while its attempts are below ``ADN_MAX_JOB_ATTEMPTS``, else failed
   with a message (a training also marks its model version failed and removes its temp folder).
   Both writes name the attempt found stale: a job finished or claimed again meanwhile is left
   alone, and the stale attempt's lease is lost (its later writes are refused).
b. A job still queued ``ADN_RESEND_QUEUED_AFTER_S`` after it was created is sent again (its
   message may have been lost with a broker restart), then again after doubling pauses while it
   stays queued. Duplicates are harmless: only one delivery can claim a job.
c. Delivered messages of the embedded SQLite broker older than an hour are deleted (at most
   every ten minutes).

When it runs: every worker that consumes the ``light`` queue starts a timer thread in its main
process when it is ready, and sweeps every ``ADN_SWEEP_INTERVAL_S`` seconds (0 turns it off),
starting at once. That is the embedded worker (both queues) and the compose ``light-worker``; no
beat process is needed, and a busy pool (a long training) never delays it. The ``adn.light.sweep``
task runs the same sweep on demand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from db.errors import JobStateError
from db.models import Job, JobStatus, utcnow
from db.repositories import find_stale_jobs, finish_failed, requeue_job
from db.session import session_scope
from jobspec import model_version_of
from worker import broker
from worker.celery_app import LIGHT_QUEUE
from worker.dispatch import TASK_FOR_KIND, send_job
from worker.errors import BrokerUnavailableError, WorkerError
from worker.jobs.store import session_factory
from worker.jobs.train import fail_pending_model
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

PRUNE_DELIVERED_AFTER_S = 3600.0
MAX_RESEND_PAUSE_S = 1800.0
PRUNE_EVERY_S = 600.0

Clock = Callable[[], float]


@dataclass
class SweepReport:
    """What one sweep did, by job id."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    pruned: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the sweep task's log line)."""
        return {
            "requeued": self.requeued,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "resent": self.resent,
            "pruned": self.pruned,
            "errors": self.errors,
        }


class SweepState:
    """What one process remembers between sweeps: when it last sent each queued job (the pause
    doubles while a job stays queued) and when it last pruned the broker."""

    def __init__(
        self,
        first_after_s: float,
        max_pause_s: float = MAX_RESEND_PAUSE_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self.first_after_s = first_after_s
        self.max_pause_s = max(max_pause_s, first_after_s)
        self.clock = clock
        self._sent: dict[int, tuple[float, int]] = {}
        self._pruned_at: float | None = None

    def due(self, job_id: int, queued_for_s: float) -> bool:
        """Whether a job queued for ``queued_for_s`` seconds should be sent again now."""
        last = self._sent.get(job_id)
        if last is None:
            return queued_for_s >= self.first_after_s
        sent_at, count = last
        pause = min(self.max_pause_s, self.first_after_s * 2 ** (count - 1))
        return self.clock() - sent_at >= pause

    def sent(self, job_id: int) -> None:
        """Record that the job was just sent."""
        _, count = self._sent.get(job_id, (0.0, 0))
        self._sent[job_id] = (self.clock(), count + 1)

    def keep_only(self, job_ids: set[int]) -> None:
        """Forget jobs that are no longer queued."""
        for job_id in set(self._sent) - job_ids:
            del self._sent[job_id]

    def prune_due(self) -> bool:
        """True at most once per :data:`PRUNE_EVERY_S` (and on the first sweep)."""
        now = self.clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_S:
            return False
        self._pruned_at = now
        return True


def sweep(
    settings: WorkerSettings,
    app: Celery | None = None,
    state: SweepState | None = None,
) -> SweepReport:
    """Run the three steps of the sweep once (see the module docstring)."""
    report = SweepReport()
    state = state or SweepState(settings.resend_queued_after_s)
    factory = session_factory(settings)
    to_send = _handle_stale_jobs(factory, settings, report)
    for job_id, kind in to_send:
        if _send(job_id, kind, app, report):
            state.sent(job_id)
    _resend_queued(factory, app, state, report)
    if broker.is_embedded(settings.broker_url) and state.prune_due():
        try:
            report.pruned = broker.prune_delivered_messages(
                settings.broker_url, older_than_s=PRUNE_DELIVERED_AFTER_S
            )
        except (WorkerError, SQLAlchemyError, OSError) as exc:
            logger.warning("could not prune the embedded broker's delivered messages: %s", exc)
            report.errors.append(f"prune: {exc}")
    if report.requeued or report.failed or report.cancelled or report.resent:
        logger.info("sweep: %s", report.to_dict())
    return report


def _handle_stale_jobs(
    factory: Any, settings: WorkerSettings, report: SweepReport
) -> list[tuple[int, str]]:
    to_send: list[tuple[int, str]] = []
    limit = settings.max_job_attempts
    with session_scope(factory, immediate=True) as session:
        for job in find_stale_jobs(session, older_than_s=settings.stale_job_after_s):
            if job.kind not in TASK_FOR_KIND:
                continue
            attempt = job.attempts
            model_id = model_version_of(job.params_json)
            if attempt < limit or job.cancel_requested:  # requeue_job cancels those instead
                reason = (
                    f"the worker running this job stopped (attempt {attempt} of {limit}); "
                    "re-queued to run again"
                )
                if requeue_job(session, job.id, reason=reason, attempt=attempt):
                    report.requeued.append(job.id)
                    to_send.append((job.id, job.kind))
                    continue
                if job.status != JobStatus.CANCELLED.value:
                    continue  # finished or taken over since it was found stale
                report.cancelled.append(job.id)  # it had been asked to cancel
                error = "cancelled on request; its worker had stopped"
            else:
                error = (
                    f"the worker running this job stopped (attempt {attempt}); it was tried "
                    f"{attempt} time(s), the most ADN_MAX_JOB_ATTEMPTS={limit} allows. Check the "
                    "worker's log (out of memory, lost GPU, stopped container), then start the "
                    "job again"
                )
                try:
                    finish_failed(session, job.id, error=error, attempt=attempt)
                except JobStateError:
                    continue  # finished or taken over since it was found stale
                report.failed.append(job.id)
                logger.warning("job %s failed: %s", job.id, error)
            if job.kind == "train" and model_id is not None:
                fail_pending_model(session, settings, model_id, error)
    return to_send


def _resend_queued(
    factory: Any, app: Celery | None, state: SweepState, report: SweepReport
) -> None:
    now = utcnow()
    with session_scope(factory) as session:
        rows = session.execute(
            select(Job.id, Job.kind, Job.created_at)
            .where(Job.status == JobStatus.QUEUED.value, Job.kind.in_(list(TASK_FOR_KIND)))
            .order_by(Job.id)
        ).all()
    state.keep_only({row.id for row in rows})
    for job_id, kind, created_at in rows:
        if job_id in report.resent or not state.due(job_id, _age_s(now, created_at)):
            continue
        if not _send(job_id, kind, app, report):
            return  # the broker is down: the next sweep tries again
        state.sent(job_id)
        report.resent.append(job_id)


def _send(job_id: int, kind: str, app: Celery | None, report: SweepReport) -> bool:
    try:
        send_job(job_id, kind, app)
    except BrokerUnavailableError as exc:
        logger.warning("sweep could not send job %s: %s", job_id, exc)
        report.errors.append(f"job {job_id}: {exc}")
        return False
    return True


def _age_s(now: datetime, then: datetime | None) -> float:
    return (now - then).total_seconds() if then is not None else float("inf")


# --- the timer of light-queue workers ------------------------------------------------------------


class SweepTimer:
    """Runs :func:`sweep` every ``interval_s`` seconds in a daemon thread, starting at once."""

    def __init__(self, settings: WorkerSettings, app: Celery, interval_s: float) -> None:
        self.settings = settings
        self.app = app
        self.interval_s = interval_s
        self.state = SweepState(settings.resend_queued_after_s)
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adn-sweep", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait briefly for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_once(self) -> SweepReport | None:
        """One sweep; errors are logged (the next run tries again)."""
        try:
            return sweep(self.settings, self.app, self.state)
        except Exception:
            logger.exception("sweep failed; trying again in %.0f s", self.interval_s)
            return None
        finally:
            self.runs += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval_s)


_timer: SweepTimer | None = None


def consumes_light_queue(app: Celery) -> bool:
    """Whether this worker process consumes the ``light`` queue."""
    return LIGHT_QUEUE in app.amqp.queues.consume_from


def start_timer_for(app: Celery) -> SweepTimer | None:
    """Start the sweep timer in a light-queue worker (once per process); None when not started."""
    global _timer
    settings: WorkerSettings | None = getattr(app, "adn_settings", None)
    if settings is None or _timer is not None or not consumes_light_queue(app):
        return None
    if settings.sweep_interval_s <= 0:
        logger.info("periodic sweep off (ADN_SWEEP_INTERVAL_S=0)")
        return None
    _timer = SweepTimer(settings, app, settings.sweep_interval_s)
    _timer.start()
    logger.info("sweeping jobs every %.0f s", settings.sweep_interval_s)
    return _timer


def stop_timer() -> None:
    """Stop the sweep timer of this process, if any."""
    global _timer
    if _timer is not None:
        _timer.stop()
        _timer = None


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if app is not None:
        start_timer_for(app)


def _on_worker_shutting_down(**_: Any) -> None:
    stop_timer()


def install_worker_signals() -> None:
    """Start the timer when a worker is ready and stop it when it shuts down (idempotent)."""
    from celery.signals import worker_ready, worker_shutting_down

    worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="adn-sweep-timer-start")
    worker_shutting_down.connect(
        _on_worker_shutting_down, weak=False, dispatch_uid="adn-sweep-timer-stop"
    )
