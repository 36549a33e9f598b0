"""Fixtures of the store tests: a fresh migrated SQLite file per test, and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import upgrade_to_head
from db.session import make_engine, make_session_factory
from db.settings import StoreSettings
from tests.fixtures.postgres import temporary_database


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


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A uniquely named, empty PostgreSQL database, dropped afterwards."""
    with temporary_database() as url:
        yield url


@pytest.fixture
def pg_factory(fresh_pg_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on a fresh PostgreSQL database migrated to head."""
    upgrade_to_head(fresh_pg_url)
    engine = make_engine(fresh_pg_url, pool_size=5)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def factory(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """A migrated store: the SQLite file of the test, or a fresh PostgreSQL database."""
    name = "session_factory" if request.param == "sqlite" else "pg_factory"
    yield request.getfixturevalue(name)
