"""Celery tasks, registered by name on :data:`worker.celery_app.app`.

``adn.gpu.train(job_id)``, ``adn.gpu.score(job_id)`` and ``adn.light.sweep()``. Importing this
package never imports torch (the engine is imported inside the job bodies). It hooks the periodic
sweep into light-queue workers (:mod:`worker.sweep`) and the dashboard's worker reports into
GPU-queue workers (:mod:`worker.report`).
"""

from worker.report import install_report_signals
from worker.sweep import install_worker_signals
from worker.tasks.gpu import score, train
from worker.tasks.light import sweep

install_worker_signals()
install_report_signals()

__all__ = ["score", "sweep", "train"]
