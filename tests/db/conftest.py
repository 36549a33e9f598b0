"""Fixtures of the store tests: a fresh migrated SQLite file per test, and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from psycopg import sql
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from db import passwords
from db.migrate import upgrade_to_head
from db.session import make_engine, make_session_factory
from db.settings import StoreSettings

PG_ADMIN_URL = os.environ.get(
    "ADN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 with tiny parameters: same code path, milliseconds instead of tenths."""
    previous = passwords.set_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    passwords.set_hasher(previous)


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head; each test gets a copy of it."""
    path = tmp_path_factory.mktemp("template") / "studio.db"
    upgrade_to_head(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def store_settings(tmp_path: Path, migrated_sqlite_template: Path) -> StoreSettings:
    """Settings with a fresh data dir holding a fresh migrated database, and small limits."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(migrated_sqlite_template, data_dir / "studio.db")
    return StoreSettings.from_values(
        data_dir=data_dir,
        max_file_mb=2,
        max_pixels=4_000_000,
        max_files_per_batch=50,
        max_zip_uncompressed_mb=20,
        max_zip_ratio=100,
    )


@pytest.fixture
def engine(store_settings: StoreSettings) -> Iterator[Engine]:
    engine = make_engine(store_settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.rollback()
    session.close()


def _admin_connect() -> psycopg.Connection:
    url = make_url(PG_ADMIN_URL)
    try:
        return psycopg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            dbname=url.database or "postgres",
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required for the integration tests but {PG_ADMIN_URL} cannot be "
            f"reached ({exc}); start it or set ADN_TEST_POSTGRES_URL.",
            pytrace=False,
        )


def _new_database_url() -> tuple[str, str]:
    name = f"adn_test_{uuid.uuid4().hex[:12]}"
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    return name, url.render_as_string(hide_password=False)


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A uniquely named, empty PostgreSQL database, dropped afterwards."""
    name, url = _new_database_url()
    with _admin_connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url
    finally:
        with _admin_connect() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_factory(fresh_pg_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on a fresh PostgreSQL database migrated to head."""
    upgrade_to_head(fresh_pg_url)
    engine = make_engine(fresh_pg_url, pool_size=5)
    yield make_session_factory(engine)
    engine.dispose()
