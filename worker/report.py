"""What each GPU-queue worker tells the dashboard: ``<data_dir>/workers/<node>.json``.

``{"name", "device", "queues", "weights": {backbone: "available: <path>" | "missing: <hint>"},
"updated_at"}``. The weights status needs the engine, hence torch, which a worker's main process
never imports: a short-lived child process reads it. With ``ADN_BACKBONE_WEIGHTS=random`` no
pretrained file is used, so nothing is probed and ``weights`` stays empty. The file is written
when the worker is ready, rewritten every minute (``updated_at`` says the worker is alive), and
removed when it shuts down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.celery_app import GPU_QUEUE
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

REPORTS_FOLDER = "workers"
REFRESH_S = 60.0
PROBE_TIMEOUT_S = 300.0
_PROBE = (
    "import json; from engine.models.components.backbones import weights_status; "
    "print(json.dumps(weights_status()))"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def report_path(data_dir: Path, node: str) -> Path:
    """Where the report of worker ``node`` lives."""
    return data_dir / REPORTS_FOLDER / f"{_UNSAFE.sub('_', node)}.json"


def probe_weights(
    settings: WorkerSettings, started: Callable[[subprocess.Popen[str]], None] | None = None
) -> dict[str, str]:
    """Each backbone's pretrained-weights status, read by a child process ({} when unknown).

    ``started`` receives the child process, so a stopping worker can end it.
    """
    if settings.backbone_weights != "imagenet":
        return {}
    try:
        with subprocess.Popen(
            [sys.executable, "-c", _PROBE],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as proc:
            if started is not None:
                started(proc)
            try:
                out, _ = proc.communicate(timeout=PROBE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        if proc.returncode != 0:
            raise ValueError(f"the probe exited with status {proc.returncode}")
        status = json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        logger.warning("could not read the backbone weights status: %s", exc)
        return {}
    return {str(k): str(v) for k, v in status.items()} if isinstance(status, dict) else {}


def write_report(
    settings: WorkerSettings, node: str, queues: Sequence[str], weights: dict[str, str]
) -> Path:
    """Write (atomically) the report of worker ``node``."""
    path = report_path(settings.data_dir, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "name": node,
        "device": settings.worker_device,
        "queues": sorted(queues),
        "backbone_weights": settings.backbone_weights,
        "weights": weights,
        "updated_at": datetime.now(UTC).isoformat(),
    }
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        json.dump(payload, stream, indent=2)
    os.replace(tmp, path)
    return path


def remove_report(settings: WorkerSettings, node: str) -> None:
    """Delete the report of a worker that stops."""
    report_path(settings.data_dir, node).unlink(missing_ok=True)


class WorkerReporter:
    """Writes this worker's report when it is ready, refreshes it, removes it on shutdown."""

    def __init__(
        self,
        settings: WorkerSettings,
        node: str,
        queues: Sequence[str],
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.settings = settings
        self.node = node
        self.queues = list(queues)
        self.refresh_s = refresh_s
        self.weights: dict[str, str] = {}
        self._probe: subprocess.Popen[str] | None = None
        self._stop = threading.Event()
        # Held while the file is written or removed, so a refresh cannot bring it back after stop.
        self._file_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="adn-worker-report", daemon=True)

    def start(self) -> None:
        """Write the report now (weights unknown), then probe the weights in a thread."""
        self._write()
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing and delete the report."""
        self._stop.set()
        probe = self._probe
        if probe is not None and probe.poll() is None:
            probe.terminate()
        with self._file_lock, contextlib.suppress(OSError):
            remove_report(self.settings, self.node)

    def _write(self) -> None:
        with self._file_lock:
            if self._stop.is_set():
                return
            try:
                write_report(self.settings, self.node, self.queues, self.weights)
            except OSError as exc:
                logger.warning("could not write the worker report: %s", exc)

    def _remember(self, proc: subprocess.Popen[str]) -> None:
        self._probe = proc
        if self._stop.is_set():  # the worker began to stop while the probe was starting
            proc.terminate()

    def _run(self) -> None:
        self.weights = probe_weights(self.settings, started=self._remember)
        while not self._stop.is_set():
            self._write()
            self._stop.wait(self.refresh_s)


_reporter: WorkerReporter | None = None


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    global _reporter
    app = getattr(sender, "app", None)
    settings: WorkerSettings | None = getattr(app, "adn_settings", None)
    if app is None or settings is None or _reporter is not None:
        return
    queues = list(app.amqp.queues.consume_from)
    if GPU_QUEUE not in queues:
        return
    _reporter = WorkerReporter(settings, str(getattr(sender, "hostname", "worker")), queues)
    _reporter.start()


def _on_worker_shutting_down(**_: Any) -> None:
    global _reporter
    if _reporter is not None:
        _reporter.stop()
        _reporter = None


def install_report_signals() -> None:
    """Report GPU-queue workers to the dashboard while they run (idempotent)."""
    from celery.signals import worker_ready, worker_shutting_down

    worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="adn-worker-report-start")
    worker_shutting_down.connect(
        _on_worker_shutting_down, weak=False, dispatch_uid="adn-worker-report-stop"
    )
