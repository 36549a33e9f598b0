"""Send jobs to the workers; the one module of ``worker`` that the dashboard imports.

It imports Celery and :mod:`worker.celery_app` only (never torch, never the engine), so the
dashboard stays light. The flow: write the job row (and, for training, its model version) and
commit, then call :func:`send_job`. If the broker cannot be reached, :class:`BrokerUnavailableError`
says so; the row stays ``queued`` and the sweep sends it again later, so nothing is lost.

The params of each job kind (``jobs.params_json``) are defined, validated and round-tripped by
:mod:`jobspec` (``TrainSpec``, ``ScoreSpec``); the worker reads them back with the same classes,
so a malformed row fails its job with a message naming the key.

While a job runs, ``jobs.message`` reads like ``"epoch 3/12 · loss 0.812 · 2 min left"`` and
``jobs.result_json`` holds ``{"live": {"phase", "epoch", "epochs", "loss", "eta_s", ...}}``; when
it succeeds, ``result_json`` holds the job's result instead (see ``worker.jobs``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from jobspec import JobKind
from worker.celery_app import GPU_QUEUE, LIGHT_QUEUE
from worker.celery_app import app as default_app
from worker.errors import BrokerUnavailableError, JobParamsError, WorkerError
from worker.settings import redact_url

logger = logging.getLogger(__name__)

__all__ = [
    "SWEEP_TASK",
    "TASK_FOR_KIND",
    "BrokerUnavailableError",
    "JobParamsError",
    "send_job",
    "send_sweep",
]

# The task of each job kind (jobspec.JobKind); a new kind adds its task here.
TASK_FOR_KIND: dict[str, str] = {JobKind.TRAIN: "adn.gpu.train", JobKind.SCORE: "adn.gpu.score"}
SWEEP_TASK = "adn.light.sweep"
# A dashboard click must not hang: a few quick publish retries, then a clear error.
_PUBLISH_RETRY = {
    "max_retries": 2,
    "interval_start": 0.0,
    "interval_step": 0.5,
    "interval_max": 1.0,
}


def queue_for(task_name: str) -> str:
    """The queue a task name is routed to (``adn.gpu.*`` -> gpu, everything else -> light)."""
    return GPU_QUEUE if task_name.startswith("adn.gpu.") else LIGHT_QUEUE


def send_job(job_id: int, kind: str, app: Celery | None = None) -> str:
    """Send the task of job ``job_id`` (of ``kind``) by name; return the Celery task id.

    Raises :class:`BrokerUnavailableError` when the broker cannot be reached; the job row stays
    queued and the sweep sends it again later.
    """
    if kind not in TASK_FOR_KIND:
        raise JobParamsError(
            f"job kind {kind!r} has no worker task; use one of: {', '.join(TASK_FOR_KIND)}"
        )
    return _send(TASK_FOR_KIND[kind], [int(job_id)], app, f"job {job_id} ({kind})")


def send_sweep(app: Celery | None = None) -> str:
    """Ask a light worker to run the sweep now (it also runs on a timer)."""
    return _send(SWEEP_TASK, [], app, "the sweep")


def _send(task_name: str, args: list[Any], app: Celery | None, what: str) -> str:
    celery = app or default_app
    try:
        result = celery.send_task(
            task_name,
            args=args,
            queue=queue_for(task_name),
            retry=True,
            retry_policy=_PUBLISH_RETRY,
        )
    except (KombuOperationalError, OSError, WorkerError) as exc:
        url = _redacted_broker_url(celery)
        raise BrokerUnavailableError(
            f"could not hand {what} to the broker at {url}: {exc}. The job is saved and stays "
            "queued; it is sent again automatically once the broker is reachable. Check that "
            "Redis (ADN_BROKER_URL) is running, or that the data folder is writable in the "
            "embedded mode."
        ) from exc
    logger.info("sent %s as %s (task %s)", what, task_name, result.id)
    return str(result.id)


def _redacted_broker_url(app: Celery) -> str:
    return redact_url(str(app.conf.broker_url or ""))
