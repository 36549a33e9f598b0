"""Database access of a worker process: one cached engine per URL, safe across ``fork``."""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_session_factory
from db.settings import StoreSettings
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
_fork_guard_installed = False


def _forget_inherited_engines() -> None:
    """In a forked child, drop the parent's pooled connections without closing them."""
    for engine in _engines.values():
        engine.dispose(close=False)


def session_factory(settings: WorkerSettings) -> sessionmaker[Session]:
    """A session factory on the settings' database; the engine is created once per process."""
    global _fork_guard_installed
    url = settings.database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = make_engine(url)
            _engines[url] = engine
            if not _fork_guard_installed:
                os.register_at_fork(after_in_child=_forget_inherited_engines)
                _fork_guard_installed = True
    return make_session_factory(engine)


def dispose_engines() -> None:
    """Close every cached engine (tests, shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def store_settings(settings: WorkerSettings) -> StoreSettings:
    """The store's view of the same data dir and database."""
    return StoreSettings.from_values(data_dir=settings.data_dir, database_url=settings.database_url)
