"""Light-queue tasks: housekeeping that needs no GPU."""

from __future__ import annotations

from typing import Any

from celery import Task

from worker.celery_app import app
from worker.sweep import SweepState
from worker.sweep import sweep as run_sweep
from worker.tasks.gpu import task_settings

_state: SweepState | None = None


@app.task(bind=True, name="adn.light.sweep")
def sweep(self: Task) -> dict[str, Any]:
    """Re-queue or fail jobs whose worker died, re-send lost messages, prune the broker."""
    global _state
    settings = task_settings(self)
    if _state is None:
        _state = SweepState(settings.resend_queued_after_s)
    return run_sweep(settings, self.app, _state).to_dict()
