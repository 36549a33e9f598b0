"""Models and migrations agree on SQLite (PostgreSQL: test_postgres.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db.migrate import current_revision, head_revision, upgrade_to_head
from db.models import Base
from db.session import make_engine

ROOT = Path(__file__).resolve().parents[2]
EXPRESSION_INDEXES = {"uq_thresholds_one_active", "uq_thresholds_version"}


def _differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            # SQLite cannot reflect expression indexes; they are checked separately below.
            warnings.simplefilter("ignore")
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert current_revision(url) is None
    upgrade_to_head(url)
    assert current_revision(url) == head_revision()
    assert _differences(url) == []
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
            ).all()
    finally:
        engine.dispose()
    indexes = {name: sql for name, sql in rows}
    assert set(indexes) >= EXPRESSION_INDEXES
    assert "coalesce(category, '')" in indexes["uq_thresholds_one_active"]
    assert "WHERE is_active" in indexes["uq_thresholds_one_active"]


def test_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    upgrade_to_head(url)
    upgrade_to_head(url)
    assert current_revision(url) == head_revision()


def test_every_model_table_exists_after_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tables.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            names = set(
                connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= names


def test_migrated_sqlite_enforces_one_active_threshold(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'idx.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    insert = text(
        "INSERT INTO thresholds (model_version_id, category, version, value, method, "
        "params_json, metrics_json, created_at, is_active) "
        "VALUES (1, NULL, :v, 0.5, 'manual', '{}', '{}', '2024-01-01 00:00:00', :a)"
    )
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(
                "INSERT INTO projects (id, name, created_at) VALUES (1, 'p', '2024-01-01')"
            )
            connection.exec_driver_sql(
                "INSERT INTO model_versions (id, project_id, name, variant, backbone, "
                "config_json, status, training_image_count, created_at) "
                "VALUES (1, 1, 'm', 'se', 'b', '{}', 'ready', 0, '2024-01-01')"
            )
            connection.execute(insert, {"v": 1, "a": True})
            connection.execute(insert, {"v": 2, "a": False})
            with pytest.raises(IntegrityError, match="UNIQUE"):
                connection.execute(insert, {"v": 3, "a": True})
    finally:
        engine.dispose()


def test_alembic_command_line_uses_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-data"
    env = {**os.environ, "ADN_DATA_DIR": str(data_dir)}
    env.pop("ADN_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "db/migrations/alembic.ini", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert current_revision(f"sqlite:///{data_dir / 'studio.db'}") == head_revision()


def test_heatmaps_stored_before_methods_keep_theirs_as_gradcam(tmp_path: Path) -> None:
    from alembic import command

    from db.migrate import alembic_config
    from db.repositories import upsert_score
    from db.session import make_session_factory, session_scope
    from tests.db.factories import make_batch, make_image, make_model, make_project, png_bytes

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            project = make_project(session)
            image = make_image(session, make_batch(session, project))
            model = make_model(session, project)
            pngs = {"input_gradient": png_bytes(2, 2), "layercam_stages": png_bytes(3, 3)}
            upsert_score(
                session, image_id=image.id, model_version_id=model.id, score=1, heatmap_pngs=pngs
            )
    finally:
        engine.dispose()
    # Back to one heatmap per score (the newest stays), then up again: it is named ``gradcam``.
    command.downgrade(alembic_config(url), "0003")
    upgrade_to_head(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT width, method FROM heatmaps")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(3, "gradcam")]
