"""Fixtures of the worker tests: settings for fast CPU jobs and a migrated SQLite store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from db import passwords
from db.migrate import upgrade_to_head
from db.session import make_engine, make_session_factory
from worker.jobs.store import dispose_engines
from worker.settings import WorkerSettings


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
def settings(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[WorkerSettings]:
    """Embedded-mode settings on a fresh migrated database, tuned for quick CPU jobs."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(migrated_sqlite_template, data_dir / "studio.db")
    yield WorkerSettings(
        data_dir=data_dir,
        worker_device="cpu",
        backbone_weights="random",
        progress_interval_s=0.1,
        stale_job_after_s=1,
        resend_queued_after_s=0.5,
    )
    dispose_engines()


@pytest.fixture
def factory(settings: WorkerSettings) -> Iterator[sessionmaker[Session]]:
    """A session factory of the test's own (the worker code keeps its own engine)."""
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()
