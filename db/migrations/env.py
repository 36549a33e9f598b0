"""Alembic environment: one migration tree for SQLite and PostgreSQL (batch mode)."""

from __future__ import annotations

import logging.config
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from db.errors import MigrationError
from db.models import Base, UTCDateTime
from db.session import make_engine
from db.settings import StoreSettings

config = context.config
target_metadata = Base.metadata

# Only the command line configures logging; programmatic runs keep the caller's logging.
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or StoreSettings.from_env().database_url


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the UTC column type as its plain base type so migrations import no models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
    )


def run_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Connect (or reuse the caller's connection) and apply the migrations."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    # SQLite: foreign keys stay off while batch mode rebuilds tables (dropping a referenced
    # table would otherwise cascade), and are checked once the migrations are done.
    engine = make_engine(_database_url(), sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
                _check_sqlite_foreign_keys(connection)
    finally:
        engine.dispose()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise MigrationError(
            f"the migration left {len(broken)} rows pointing at missing rows (first: "
            f"{tuple(broken[0])}); restore the backup and report this migration as faulty."
        )


if context.is_offline_mode():
    run_offline()
else:
    run_online()
