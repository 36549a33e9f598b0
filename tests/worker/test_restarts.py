"""The embedded launcher restarts a crashed worker, keeps the dashboard up, and gives up on a
worker that cannot stay up."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from worker import embedded
from worker.restarts import RestartPolicy


def test_pauses_double_while_crashes_come_close_together() -> None:
    policy = RestartPolicy(max_restarts=10, first_delay_s=1, max_delay_s=5, reset_after_s=60)
    delays = [policy.after_crash(now=10.0 * k, started_at=10.0 * k - 2) for k in range(1, 6)]
    assert delays == [1, 2, 4, 5, 5]
    assert policy.after_crash(now=200.0, started_at=100.0) == 1  # it ran long enough: reset
    assert policy.restarts == 6


def test_too_many_crashes_within_the_window_give_up() -> None:
    policy = RestartPolicy(max_restarts=2, window_s=100)
    assert policy.after_crash(now=1, started_at=0) is not None
    assert policy.after_crash(now=2, started_at=1) is not None
    assert policy.after_crash(now=3, started_at=2) is None
    spaced = RestartPolicy(max_restarts=2, window_s=100)
    assert all(spaced.after_crash(now=k * 200.0, started_at=k * 200.0 - 1) for k in range(1, 8))


class FakeChild:
    """A child process that has exited (``code``) or is running (None)."""

    def __init__(self, code: int | None) -> None:
        self.returncode = code

    def poll(self) -> int | None:
        return self.returncode


def _supervise(children: dict[str, Any], policy: RestartPolicy) -> tuple[int, list[FakeChild]]:
    started: list[FakeChild] = []
    stop = threading.Event()

    def start_worker() -> FakeChild:
        child = FakeChild(None if len(started) >= 1 else -9)  # the first restart crashes again
        started.append(child)
        if len(started) == 2:
            stop.set()  # the second restart stays up; then the person presses Ctrl-C
        return child

    status = embedded._supervise(children, stop, start_worker, policy)  # type: ignore[arg-type]
    return status, started


def test_a_crashed_worker_is_restarted_and_the_dashboard_stays() -> None:
    dashboard = FakeChild(None)
    children: dict[str, Any] = {"worker": FakeChild(-9), "dashboard": dashboard}
    status, started = _supervise(children, RestartPolicy(first_delay_s=0.01, max_delay_s=0.01))
    assert status == 0 and len(started) == 2
    assert children["worker"] is started[-1] and children["dashboard"] is dashboard


def test_a_stopped_dashboard_stops_the_launcher(capsys: pytest.CaptureFixture[str]) -> None:
    children: dict[str, Any] = {"worker": FakeChild(None), "dashboard": FakeChild(3)}
    status, started = _supervise(children, RestartPolicy())
    assert status == 1 and started == []
    assert "the dashboard stopped (exit status 3); stopping" in capsys.readouterr().err


def test_a_worker_that_keeps_crashing_stops_the_launcher(
    capsys: pytest.CaptureFixture[str],
) -> None:
    children: dict[str, Any] = {"worker": FakeChild(1)}
    status, started = _supervise(children, RestartPolicy(max_restarts=1, first_delay_s=0.01))
    assert status == 1 and len(started) == 1
    err = capsys.readouterr().err
    assert "restarting it in 0 s (restart 1)" in err
    assert "stopped (exit status -9) 2 times within 600 s; stopping" in err
