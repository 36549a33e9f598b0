"""Progress reports (phase, epoch, step, loss, time left) and cooperative cancellation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import TrainingCancelled

ProgressCallback = Callable[["TrainProgress"], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class TrainProgress:
    """One progress report; ``fraction`` covers the whole run, all phases together."""

    phase: str  # "loading", "features", "training", "calibrating", "done"
    fraction: float
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float | None
    elapsed_s: float
    eta_s: float | None
    message: str = ""


# Phases whose work units cost about the same: both run the backbone once per view.
SAME_COST = {"features": "calibrating", "calibrating": "features"}


class ProgressTracker:
    """Turns work-unit counts into :class:`TrainProgress` reports and checks for cancellation.

    The time left is estimated per phase: a view through the backbone costs far more than a
    view's share of a flow step on cached features, so each phase's remaining units are priced
    at that phase's own measured rate. Until every phase with work left has a rate (the flow's
    is known after its first steps), the time left is None rather than a guess.
    """

    def __init__(
        self,
        total_units: int,
        epochs: int,
        callback: ProgressCallback | None,
        should_cancel: CancelCheck | None,
    ) -> None:
        self.total_units = max(1, total_units)
        self.epochs = epochs
        self.callback = callback
        self.should_cancel = should_cancel
        self.started = time.monotonic()
        self.done_units = 0
        self._planned: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._spent: dict[str, float] = {}
        self._last = self.started

    def plan(self, units_per_phase: dict[str, int]) -> None:
        """Set the work of each phase (the total is their sum)."""
        self._planned = {phase: max(0, units) for phase, units in units_per_phase.items()}
        self.total_units = max(1, sum(self._planned.values()))

    def check_cancel(self) -> None:
        """Raise :class:`TrainingCancelled` if the caller asked to stop."""
        if self.should_cancel is not None and self.should_cancel():
            raise TrainingCancelled("training was cancelled on request; nothing was saved")

    def _seconds_per_unit(self, phase: str) -> float | None:
        for name in (phase, SAME_COST.get(phase)):
            if name is not None and self._done.get(name, 0) > 0:
                return self._spent[name] / self._done[name]
        return None

    def time_left(self) -> float | None:
        """Seconds left: each phase's remaining units at its measured rate (None: not known)."""
        if not self._planned:
            fraction = self.done_units / self.total_units
            elapsed = self._last - self.started
            return elapsed * (1 - fraction) / fraction if fraction > 0 else None
        left = 0.0
        for phase, planned in self._planned.items():
            remaining = planned - self._done.get(phase, 0)
            if remaining <= 0:
                continue
            rate = self._seconds_per_unit(phase)
            if rate is None:
                return None
            left += remaining * rate
        return left

    def advance(
        self,
        units: int,
        *,
        phase: str,
        epoch: int = 0,
        step: int = 0,
        steps: int = 0,
        loss: float | None = None,
        message: str = "",
    ) -> None:
        """Count ``units`` of finished ``phase`` work (the time since the last report went into
        it), report, then check for cancellation."""
        now = time.monotonic()
        if units > 0:
            self._done[phase] = self._done.get(phase, 0) + units
            self._spent[phase] = self._spent.get(phase, 0.0) + (now - self._last)
        self._last = now
        self.done_units = min(self.total_units, self.done_units + units)
        fraction = self.done_units / self.total_units
        if self.callback is not None:
            self.callback(
                TrainProgress(
                    phase=phase,
                    fraction=fraction,
                    epoch=epoch,
                    epochs=self.epochs,
                    step=step,
                    steps=steps,
                    loss=loss,
                    elapsed_s=now - self.started,
                    eta_s=0.0 if phase == "done" else self.time_left(),
                    message=message,
                )
            )
        self.check_cancel()
