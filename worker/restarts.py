"""When the embedded launcher restarts a worker that stopped on its own.

A crash is restarted after a short pause that doubles with each crash close to the last one
(1 s, 2 s, 4 s, ... up to ``max_delay_s``); a worker that ran ``reset_after_s`` without crashing
starts again from the shortest pause. After ``max_restarts`` crashes within ``window_s`` the
launcher gives up and stops, because a worker that cannot stay up needs a person.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    """Pauses before restarts, and when to give up."""

    max_restarts: int = 5
    window_s: float = 600.0
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    reset_after_s: float = 120.0
    restarts: int = 0
    _crashes: deque[float] = field(default_factory=deque, repr=False)
    _delay_s: float = 0.0

    def after_crash(self, now: float, started_at: float) -> float | None:
        """The pause before restarting a worker that started at ``started_at`` and stopped at
        ``now``; None when it crashed too often and the launcher should give up."""
        while self._crashes and now - self._crashes[0] > self.window_s:
            self._crashes.popleft()
        self._crashes.append(now)
        if len(self._crashes) > self.max_restarts:
            return None
        ran_s = now - started_at
        if ran_s >= self.reset_after_s or self._delay_s == 0.0:
            self._delay_s = self.first_delay_s
        else:
            self._delay_s = min(self.max_delay_s, self._delay_s * 2)
        self.restarts += 1
        return self._delay_s
