"""The Celery application: queues, routes, reliability settings; ``celery -A worker.celery_app``.

Nothing here imports torch: CUDA must first be initialised inside a pool process, never in the
parent that forks it. Task modules are imported by the worker only (``include``), so a process
that only sends tasks by name (the dashboard) stays light. Importing this module touches no file:
the embedded broker's SQLite file is prepared on the first connection.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu import Connection, Exchange, Queue

from jobspec import GPU_QUEUE, LIGHT_QUEUE
from worker import broker
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

GPU_TASK_PREFIX = "adn.gpu."
LIGHT_TASK_PREFIX = "adn.light."
QUEUES = (GPU_QUEUE, LIGHT_QUEUE)
TASKS_PACKAGE = "worker.tasks"


class StudioCelery(Celery):
    """A Celery app that prepares the embedded SQLite broker before its first connection.

    ``adn_settings`` holds the :class:`WorkerSettings` it was built from, for tasks to read.
    """

    adn_settings: WorkerSettings
    _broker_ready = False
    _broker_lock = threading.Lock()

    def _prepare_broker(self) -> None:
        if self._broker_ready:
            return
        with self._broker_lock:
            if not self._broker_ready:
                url = str(self.conf.broker_url or "")
                if broker.is_embedded(url):
                    broker.prepare_embedded_broker(url)
                    broker.install_fork_guard()
                self._broker_ready = True

    def connection_for_read(self, url: str | None = None, **kwargs: Any) -> Connection:
        """Connection for consuming (see :meth:`celery.Celery.connection_for_read`)."""
        self._prepare_broker()
        return super().connection_for_read(url, **kwargs)

    def connection_for_write(self, url: str | None = None, **kwargs: Any) -> Connection:
        """Connection for producing (see :meth:`celery.Celery.connection_for_write`)."""
        self._prepare_broker()
        return super().connection_for_write(url, **kwargs)


def default_includes() -> list[str]:
    """``["worker.tasks"]`` when that package exists, else nothing (the app works without it)."""
    return [TASKS_PACKAGE] if importlib.util.find_spec(TASKS_PACKAGE) is not None else []


def make_celery(settings: WorkerSettings, include: Sequence[str] | None = None) -> StudioCelery:
    """Build the Celery app for ``settings``; ``include`` defaults to :func:`default_includes`."""
    modules = default_includes() if include is None else list(include)
    app = StudioCelery("adn", broker=settings.broker_url, include=modules)
    app.adn_settings = settings
    app.conf.update(
        # The job row is the source of truth: no result backend.
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        # At-least-once delivery; tasks are idempotent on their job id.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Keep a long training running through a broker blip; a redelivery finds the job done.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        broker_transport_options=broker.transport_options(settings),
        broker_connection_retry_on_startup=True,
        # Each queue has its own exchange and key: a bare Queue(name) would be bound to the default
        # queue's exchange and key, so a message sent there would land in both queues.
        task_queues=tuple(Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES),
        task_default_queue=LIGHT_QUEUE,
        task_default_exchange=LIGHT_QUEUE,
        task_default_routing_key=LIGHT_QUEUE,
        task_routes={
            f"{GPU_TASK_PREFIX}*": {"queue": GPU_QUEUE},
            f"{LIGHT_TASK_PREFIX}*": {"queue": LIGHT_QUEUE},
        },
        timezone="UTC",
        enable_utc=True,
    )
    logger.debug("celery app for broker %s", settings.redacted()["broker_url"])
    return app


app = make_celery(WorkerSettings.from_env())
