"""Broker specifics: Redis (team mode) and kombu's SQLAlchemy transport on SQLite (embedded mode).

Facts about kombu 5.7's SQLAlchemy transport that shape this module:

* every entry of ``broker_transport_options`` that kombu does not know is passed on to
  ``sqlalchemy.create_engine``, so a Redis option such as ``visibility_timeout`` makes the embedded
  broker fail with ``TypeError: Invalid argument(s) 'visibility_timeout'``: options are per broker;
* the SQLite file's folder must exist before the first connection;
* delivered messages are never deleted, only marked invisible, so the table grows until pruned
  (:func:`prune_delivered_messages`);
* a message whose worker process was killed outright stays invisible (there is no visibility
  timeout): the job row's heartbeat is what detects such a job;
* engines are cached per process, so a process forked after the first connection would share
  pooled SQLite connections with its parent unless the child drops them
  (:func:`install_fork_guard`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from worker.settings import WorkerError, WorkerSettings

logger = logging.getLogger(__name__)

EMBEDDED_PREFIXES = ("sqla+", "sqlalchemy+")
# Seconds a SQLite connection waits for another process's write lock before it gives up.
SQLITE_BUSY_TIMEOUT_S = 30.0
MESSAGE_TABLE = "kombu_message"

_fork_guard_installed = False


class BrokerError(WorkerError):
    """The broker URL is unusable or the broker's storage could not be prepared."""


def is_embedded(broker_url: str) -> bool:
    """Whether ``broker_url`` names kombu's SQLAlchemy transport."""
    return broker_url.startswith(EMBEDDED_PREFIXES)


def sqlalchemy_url(broker_url: str) -> str:
    """The SQLAlchemy URL inside an embedded broker URL (``sqla+sqlite:///x`` -> ``sqlite:///x``)."""
    if not is_embedded(broker_url):
        raise BrokerError(f"{broker_url!r} is not an embedded broker URL (sqla+<sqlalchemy url>)")
    return broker_url.split("+", 1)[1]


def sqlite_path(broker_url: str) -> Path | None:
    """The SQLite file behind an embedded broker URL, or ``None`` for any other broker."""
    if not is_embedded(broker_url):
        return None
    url = sa.engine.make_url(sqlalchemy_url(broker_url))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser().absolute()


def transport_options(settings: WorkerSettings) -> dict[str, Any]:
    """``broker_transport_options`` that suit the configured broker (see the module docstring)."""
    if is_embedded(settings.broker_url):
        if sqlite_path(settings.broker_url) is not None:
            return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        return {}
    if settings.broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
        return {"visibility_timeout": settings.visibility_timeout_s}
    return {}


def prepare_embedded_broker(broker_url: str) -> Path | None:
    """Create the SQLite broker file's folder and switch the file to WAL; ``None`` if not SQLite.

    WAL is stored in the file, so doing this once lets the dashboard publish while a worker polls.
    """
    path = sqlite_path(broker_url)
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
    except (OSError, sqlite3.Error) as exc:
        raise BrokerError(
            f"cannot prepare the embedded broker file {path}: {exc}. Check that ADN_DATA_DIR is "
            "writable, or set ADN_BROKER_URL to a Redis server"
        ) from exc
    return path


def _dispose_inherited_engines() -> None:
    """In a forked child, forget the parent's pooled broker connections (never close them)."""
    try:
        from kombu.transport.sqlalchemy import Channel
    except ImportError:  # the transport's extra is not installed: nothing was cached
        return
    engines: dict[str, tuple[sa.Engine, Any]] = getattr(Channel, "_engines", {})
    for engine, _session_factory in list(engines.values()):
        engine.dispose(close=False)


def install_fork_guard() -> None:
    """Make processes forked from this one open their own SQLite broker connections (idempotent)."""
    global _fork_guard_installed
    if not _fork_guard_installed:
        os.register_at_fork(after_in_child=_dispose_inherited_engines)
        _fork_guard_installed = True


def prune_delivered_messages(broker_url: str, older_than_s: float = 3600.0) -> int:
    """Delete delivered (invisible) messages older than ``older_than_s``; return how many.

    Safe at any time: kombu never redelivers an invisible row (an unacknowledged message is put back
    as a new row), so only history is removed. Does nothing for a non-embedded broker.
    """
    if not is_embedded(broker_url):
        return 0
    table = sa.Table(
        MESSAGE_TABLE,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("visible", sa.Boolean),
        sa.Column("timestamp", sa.DateTime),
    )
    # kombu stamps the row with naive local time when it marks it delivered.
    cutoff = dt.datetime.now() - dt.timedelta(seconds=older_than_s)
    engine = sa.create_engine(sqlalchemy_url(broker_url))
    try:
        with engine.begin() as conn:
            if not sa.inspect(conn).has_table(MESSAGE_TABLE):
                return 0
            result = conn.execute(
                sa.delete(table).where(table.c.visible.is_(False), table.c.timestamp < cutoff)
            )
    finally:
        engine.dispose()
    removed = int(result.rowcount or 0)
    logger.info("pruned %d delivered broker messages older than %.0f s", removed, older_than_s)
    return removed
