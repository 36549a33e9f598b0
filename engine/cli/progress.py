"""tqdm progress bars fed by the engine's progress callbacks."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Self

from tqdm import tqdm

from engine.training.progress import TrainProgress


class _Bar:
    """A tqdm bar on stderr that closes when its ``with`` block ends."""

    def __init__(self, label: str, total: int, unit: str) -> None:
        self.bar = tqdm(total=total, desc=label, file=sys.stderr, unit=unit, leave=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bar.close()


class TrainBar(_Bar):
    """A bar over the whole training run (features, epochs, calibration) with loss and ETA."""

    def __init__(self, label: str) -> None:
        super().__init__(label, 1000, "‰")

    def __call__(self, progress: TrainProgress) -> None:
        self.bar.n = round(1000 * progress.fraction)
        postfix = {"phase": progress.phase}
        if progress.epochs and progress.phase == "training":
            postfix["epoch"] = f"{progress.epoch}/{progress.epochs}"
        if progress.loss is not None:
            postfix["loss"] = f"{progress.loss:.4f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()


class CountBar(_Bar):
    """A bar over images scored."""

    def __init__(self, label: str, total: int) -> None:
        super().__init__(label, total, "img")

    def __call__(self, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()
