"""Fixtures of the worker tests: settings for fast CPU jobs and a migrated SQLite store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_session_factory
from worker.jobs.store import dispose_engines
from worker.settings import WorkerSettings


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
