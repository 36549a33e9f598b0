"""Progress at a bounded rate, a heartbeat thread, and cooperative cancellation of a running job.

:class:`ProgressReporter` writes progress and a readable message to the job row at most once per
``ADN_PROGRESS_INTERVAL_S`` (each write also refreshes the heartbeat). :class:`JobMonitor` runs
beside the job in a thread: at the same rate it renews the attempt's lease (so a long step with
no progress report never looks like a dead worker) and reads the cancel flag, so the job's hot
loop only reads two flags. Both write through the attempt's :class:`~worker.jobs.lease.JobLease`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from worker.jobs.lease import JobLease

Clock = Callable[[], float]


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"2 min"``, ``"1 h 5 min"``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{math.ceil(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def eta_text(eta_s: float | None) -> str:
    """``"2 min left"``, or ``""`` when the time left is unknown."""
    if eta_s is None or not math.isfinite(eta_s):
        return ""
    return f"{format_duration(eta_s)} left"


def join_parts(*parts: str) -> str:
    """The non-empty parts joined with `` · ``."""
    return " · ".join(p for p in parts if p)


class ProgressReporter:
    """Writes progress (0..1), message and live details through a lease at a bounded rate."""

    def __init__(self, lease: JobLease, interval_s: float, clock: Clock = time.monotonic) -> None:
        self.lease = lease
        self.interval_s = interval_s
        self.clock = clock
        self.writes = 0
        self._last = -math.inf

    def report(
        self,
        fraction: float,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> bool:
        """Write unless the last write was less than the interval ago; True when accepted."""
        now = self.clock()
        if not force and now - self._last < self.interval_s:
            return False
        self._last = now
        fraction = min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0
        if not self.lease.report(fraction, message, details):
            return False
        self.writes += 1
        return True


class JobMonitor:
    """Renews an attempt's lease (heartbeat and cancel flag) from a daemon thread."""

    def __init__(self, lease: JobLease, interval_s: float) -> None:
        self.lease = lease
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Renew the lease once (heartbeat, cancel flag)."""
        self.lease.renew()

    def start(self) -> None:
        """Start the polling thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"job-{self.lease.job_id}-monitor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the polling thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.lease.lost:
                return
            self.poll()

    def __enter__(self) -> JobMonitor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
