"""Tiny tasks for the worker-process tests: they record where and how they ran into a JSON file."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from celery import Task

from worker.celery_app import app


def _record(task: Task, path: str, **extra: Any) -> None:
    info = task.request.delivery_info or {}
    data = {
        "task": task.name,
        "pid": os.getpid(),
        "routing_key": info.get("routing_key"),
        "redelivered": bool(info.get("redelivered")),
        "torch_imported": "torch" in sys.modules,
        **extra,
    }
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


@app.task(bind=True, name="adn.gpu.sample_record")
def gpu_record(self: Task, path: str) -> None:
    """Write a record of this run to ``path``."""
    _record(self, path)


@app.task(bind=True, name="adn.light.sample_record")
def light_record(self: Task, path: str) -> None:
    """Write a record of this run to ``path``."""
    _record(self, path)


@app.task(bind=True, name="adn.light.sample_die_once")
def die_once(self: Task, marker: str, path: str) -> None:
    """Kill the pool process on the first delivery; write a record on the redelivery."""
    if not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    _record(self, path, first_pid=int(Path(marker).read_text()))
