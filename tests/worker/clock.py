"""A clock for the worker tests that moves only when the test moves it."""

from __future__ import annotations


class FakeClock:
    """Seconds since some start; a test adds to ``now`` to let time pass."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
