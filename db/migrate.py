"""Run the Alembic migrations from code (embedded start-up, the migrate service, tests)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from db.errors import MigrationError
from db.session import make_engine, mask_url, normalize_url, unavailable_error

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | URL) -> Config:
    """An Alembic config pointing at the package's migration tree and the given database."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    rendered = normalize_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def head_revision() -> str:
    """The newest revision of the migration tree."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise MigrationError(f"no migration found in {MIGRATIONS_DIR}; the package is incomplete")
    return head


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise unavailable_error(url, exc) from exc
    finally:
        engine.dispose()


def upgrade_to_head(url: str | URL) -> None:
    """Bring the database at `url` up to the newest schema (a no-op when it is current)."""
    logger.info("migrating %s to %s", mask_url(url), head_revision())
    try:
        command.upgrade(alembic_config(url), "head")
    except OperationalError as exc:
        if exc.statement is None:
            raise unavailable_error(url, exc) from exc
        raise MigrationError(
            f"migrating {mask_url(url)} failed: {exc.orig}; the database may have been changed "
            "by hand or by a newer version of the studio; restore a backup or fix the schema."
        ) from exc
