"""Engine and session factory built from one database URL (SQLite file or PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from db.errors import DatabaseUnavailableError, SettingsError

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "adn_sqlite_begin"


def normalize_url(url: str | URL) -> URL:
    """Parse a URL, defaulting PostgreSQL URLs to the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SettingsError(
            f"ADN_DATABASE_URL {str(url)!r} is not a database URL ({exc}); use e.g. "
            "sqlite:////abs/path/studio.db or postgresql+psycopg://user:password@host/db."
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL as text with its password replaced by `***`."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(
    url: str | URL, *, echo: bool = False, sqlite_foreign_keys: bool = True, **kwargs: Any
) -> Engine:
    """Create an engine: SQLite gets WAL, foreign keys and a busy timeout; PostgreSQL pre-ping.

    `sqlite_foreign_keys=False` is only for migrations, which rebuild tables in batch mode.
    """
    parsed = normalize_url(url)
    if _is_sqlite(parsed):
        path = _sqlite_file(parsed)
        if path is not None:
            try:
                path.expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise unavailable_error(parsed, exc) from exc
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(parsed, echo=echo, connect_args=connect_args, **kwargs)
        _install_sqlite_hooks(engine, wal=path is not None, foreign_keys=sqlite_foreign_keys)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, echo=echo, **kwargs)


def _install_sqlite_hooks(engine: Engine, *, wal: bool, foreign_keys: bool) -> None:
    """Pragmas on every new connection; explicit BEGIN so savepoints and locking behave."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def check_connection(engine: Engine) -> None:
    """Open one connection and run `SELECT 1`, or raise `DatabaseUnavailableError`."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise unavailable_error(engine.url, exc) from exc


def unavailable_error(url: str | URL, exc: BaseException) -> DatabaseUnavailableError:
    """Translate a connection failure into a message that says what to check."""
    parsed = normalize_url(url)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if _is_sqlite(parsed):
        hint = (
            "Check that ADN_DATA_DIR (or the path in ADN_DATABASE_URL) points to a folder this "
            "process may write to, and that the disk is not full."
        )
    else:
        hint = (
            "Check that the PostgreSQL server is running and reachable from this machine "
            "(host, port, firewall), that the user, password and database in ADN_DATABASE_URL "
            "are right, and that the database exists."
        )
    return DatabaseUnavailableError(mask_url(parsed), reason, hint)


def _is_connect_failure(exc: OperationalError) -> bool:
    # SQLAlchemy wraps errors raised while opening a connection with no statement attached.
    return exc.statement is None


@contextmanager
def session_scope(factory: sessionmaker[Session], *, immediate: bool = False) -> Iterator[Session]:
    """Yield a session; commit when the block ends, roll back (and re-raise) on error.

    `immediate=True` takes SQLite's write lock at the start of the transaction, so a block that
    reads and then writes never fails with "database is locked" halfway through; it has no effect
    on PostgreSQL.
    """
    session = factory()
    try:
        if immediate and session.get_bind().dialect.name == "sqlite":
            session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        if _is_connect_failure(exc):
            raise unavailable_error(session.get_bind().engine.url, exc) from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
