from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseUnavailableError
from db.models import Project
from db.session import (
    check_connection,
    make_engine,
    make_session_factory,
    mask_url,
    normalize_url,
    session_scope,
)


def test_sqlite_engine_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "studio.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert path.parent.is_dir()
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(session: Session) -> None:
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        session.execute(
            text(
                "INSERT INTO image_batches (project_id, name, purpose, created_at, file_count, "
                "accepted_count, duplicate_count, rejected_count) "
                "VALUES (999, 'x', 'train', '2024-01-01 00:00:00', 0, 0, 0, 0)"
            )
        )


def test_session_scope_commits_and_rolls_back(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        session.add(Project(name="kept"))
    with pytest.raises(RuntimeError), session_scope(session_factory) as session:
        session.add(Project(name="dropped"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(session_factory) as session:
        names = session.scalars(text("SELECT name FROM projects")).all()
    assert names == ["kept"]


def test_immediate_scopes_serialise_read_then_write(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        session.add(Project(name="counter", description="0"))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            barrier.wait()
            with session_scope(session_factory, immediate=True) as session:
                project = session.scalars(
                    text("SELECT description FROM projects WHERE name = 'counter'")
                ).one()
                session.execute(
                    text("UPDATE projects SET description = :d WHERE name = 'counter'"),
                    {"d": str(int(project) + 1)},
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with session_scope(session_factory) as session:
        value = session.scalar(text("SELECT description FROM projects WHERE name = 'counter'"))
    assert value == "2"


def test_unreachable_postgres_raises_clear_error() -> None:
    engine = make_engine(
        "postgresql://alice:s3cret@127.0.0.1:1/studio", connect_args={"connect_timeout": 2}
    )
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            check_connection(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "s3cret" not in message
    assert "alice:***@127.0.0.1:1/studio" in message
    assert "running and reachable" in message


def test_session_scope_translates_connect_failures() -> None:
    engine = make_engine("postgresql://bob:pw@127.0.0.1:1/x", connect_args={"connect_timeout": 2})
    factory = make_session_factory(engine)
    try:
        with (
            pytest.raises(DatabaseUnavailableError, match="bob:\\*\\*\\*@"),
            session_scope(factory) as session,
        ):
            session.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def test_sqlite_path_that_cannot_exist_raises_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DatabaseUnavailableError, match="ADN_DATA_DIR"):
        make_engine(f"sqlite:///{blocker}/sub/studio.db")


def test_url_helpers() -> None:
    assert normalize_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    assert mask_url("postgresql+psycopg://u:pw@h/d") == "postgresql+psycopg://u:***@h/d"
