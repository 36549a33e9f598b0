"""How long each server-side run of a page takes, appended to ``ADN_RERUN_LOG`` when it is set.

One JSON line per run (page, milliseconds, wall time); the browser benchmark reads them to
split page time into server and browser. Unset (the default), nothing is written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

RERUN_LOG_ENV = "ADN_RERUN_LOG"


@contextmanager
def timed_run(page: str) -> Iterator[None]:
    """Time the block and append it to the rerun log (when one is configured)."""
    path = os.environ.get(RERUN_LOG_ENV, "").strip()
    started = time.perf_counter()
    try:
        yield
    finally:
        if path:
            line = {"page": page, "ms": (time.perf_counter() - started) * 1000, "at": time.time()}
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps(line) + "\n")
