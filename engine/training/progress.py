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


class ProgressTracker:
    """Turns work-unit counts into :class:`TrainProgress` reports and checks for cancellation."""

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

    def check_cancel(self) -> None:
        """Raise :class:`TrainingCancelled` if the caller asked to stop."""
        if self.should_cancel is not None and self.should_cancel():
            raise TrainingCancelled("training was cancelled on request; nothing was saved")

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
        """Count ``units`` of finished work, report, then check for cancellation."""
        self.done_units = min(self.total_units, self.done_units + units)
        elapsed = time.monotonic() - self.started
        fraction = self.done_units / self.total_units
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
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
                    elapsed_s=elapsed,
                    eta_s=eta,
                    message=message,
                )
            )
        self.check_cancel()
