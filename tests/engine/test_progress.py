"""Time left per phase: cheap flow steps are not priced like backbone passes."""

from __future__ import annotations

import pytest

from engine.training import progress
from engine.training.progress import ProgressTracker, TrainProgress


class Clock:
    """A settable stand-in for ``time.monotonic``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_left_prices_each_phase_at_its_own_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    reports: list[TrainProgress] = []
    tracker = ProgressTracker(0, 10, reports.append, None)
    tracker.plan({"features": 100, "training": 1000, "calibrating": 50})
    for _ in range(10):  # backbone: 0.1 s per view
        clock.now += 1.0
        tracker.advance(10, phase="features")
    assert reports[-1].eta_s is None  # the flow's speed is not known yet: no guess
    clock.now += 0.1  # the first flow step: 100 views' worth in 0.1 s
    tracker.advance(100, phase="training")
    # 900 flow units at 1 ms + 50 calibration views at the backbone's 0.1 s = 5.9 s; a single
    # overall rate would have said (10.1 s / 200 units) × 950 units ≈ 48 s.
    assert reports[-1].eta_s == pytest.approx(5.9)
    for _ in range(9):
        clock.now += 0.1
        tracker.advance(100, phase="training")
    assert reports[-1].eta_s == pytest.approx(5.0)
    clock.now += 5.0
    tracker.advance(50, phase="calibrating")
    assert reports[-1].eta_s == pytest.approx(0.0)
    assert reports[-1].fraction == pytest.approx(1.0)


def test_without_a_plan_the_overall_rate_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    reports: list[TrainProgress] = []
    tracker = ProgressTracker(100, 1, reports.append, None)
    clock.now = 2.0
    tracker.advance(25, phase="training")
    assert reports[-1].eta_s == pytest.approx(6.0)
