"""GPU-queue tasks: thin wrappers that run a job body on a job id."""

from __future__ import annotations

import logging

from celery import Task

from worker.celery_app import app
from worker.jobs.runner import run_job, worker_name
from worker.jobs.score import ScoreJob
from worker.jobs.train import TrainJob
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)


def task_settings(task: Task) -> WorkerSettings:
    """The settings of the app the task runs in."""
    settings: WorkerSettings | None = getattr(task.app, "adn_settings", None)
    return settings if settings is not None else WorkerSettings.from_env()


@app.task(bind=True, name="adn.gpu.train")
def train(self: Task, job_id: int) -> str:
    """Train the model version of job ``job_id``; returns what happened to the job."""
    return run_job(
        int(job_id),
        TrainJob(),
        task_settings(self),
        worker=worker_name(self.request.hostname),
        task_id=self.request.id,
    )


@app.task(bind=True, name="adn.gpu.score")
def score(self: Task, job_id: int) -> str:
    """Score the images of job ``job_id``; returns what happened to the job."""
    return run_job(
        int(job_id),
        ScoreJob(),
        task_settings(self),
        worker=worker_name(self.request.hostname),
        task_id=self.request.id,
    )
