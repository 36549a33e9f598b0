"""Lineage in the store: confirmed normals by the current-verdict rule, child model versions,
and the training-image rows (recorded, settled after training, read back for older models).

Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from db.errors import InvalidValueError, PermissionDeniedError
from db.migrate import alembic_config
from db.models import AuditEntry, Image, ModelVersion, Project, Role, TrainingImage
from db.repositories import (
    TrainingEntry,
    add_verdict,
    confirmed_normals,
    copy_training_images,
    create_child_version,
    create_job,
    mark_model_ready,
    record_training_images,
    set_model_job,
    settle_training_images,
    source_counts,
    training_entries,
    training_image_ids,
)
from db.session import make_engine, make_session_factory, session_scope
from tests.db.factories import make_batch, make_image, make_model, make_project, make_user


def _aged(session: Session, image: Image, minutes: int) -> Image:
    """Make ``image`` look uploaded ``minutes`` ago."""
    image.created_at = datetime.now(UTC) - timedelta(minutes=minutes)
    session.flush()
    return image


def _ready(session: Session, project: Project) -> ModelVersion:
    model = make_model(session, project)
    mark_model_ready(session, model.id, artifact_path=f"models/{model.id}/model.adn")
    return model


def test_confirmed_normals_follow_the_newest_verdict(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        reviewer = make_user(session, Role.REVIEWER)
        project = make_project(session)
        batch, other = make_batch(session, project), make_batch(session, project)
        old, new, newest = (
            _aged(session, make_image(session, batch, category="cap"), m) for m in (30, 20, 10)
        )
        flipped_to_anomalous = make_image(session, batch, category="cap")
        unsure = make_image(session, batch, category="cap")
        back_to_normal = _aged(session, make_image(session, batch, category="cap"), 40)
        known_bad = make_image(session, batch, category="cap", known_label="anomalous")
        anomalous = make_image(session, batch, category="cap")
        wrong_category = make_image(session, batch, category="bottle")
        elsewhere = make_image(session, other, category="cap")
        for image in (old, new, newest, known_bad, wrong_category, elsewhere):
            add_verdict(session, image_id=image.id, label="normal", user=reviewer)
        add_verdict(session, image_id=flipped_to_anomalous.id, label="normal", user=reviewer)
        add_verdict(session, image_id=flipped_to_anomalous.id, label="anomalous", user=reviewer)
        add_verdict(session, image_id=unsure.id, label="normal", user=reviewer)
        add_verdict(session, image_id=unsure.id, label="unsure", user=reviewer)
        add_verdict(session, image_id=back_to_normal.id, label="anomalous", user=reviewer)
        newest_verdict = add_verdict(
            session, image_id=back_to_normal.id, label="normal", user=reviewer
        )
        add_verdict(session, image_id=anomalous.id, label="anomalous", user=reviewer)

        found = confirmed_normals(
            session, project_id=project.id, category="cap", batch_ids=[batch.id]
        )
        # Newest upload first; flipped, unsure, known-anomalous and anomalous images never.
        assert [n.image_id for n in found] == [newest.id, new.id, old.id, back_to_normal.id]
        assert {n.image_id: n.verdict_id for n in found}[back_to_normal.id] == newest_verdict.id
        assert {n.batch_id for n in found} == {batch.id}
        everywhere = {n.image_id for n in confirmed_normals(session, project_id=project.id)}
        assert everywhere == {
            newest.id,
            new.id,
            old.id,
            back_to_normal.id,
            wrong_category.id,
            elsewhere.id,
        }
        assert confirmed_normals(session, project_id=project.id, batch_ids=[]) == []


def test_a_child_version_records_its_lineage(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        reviewer = make_user(session, Role.REVIEWER)
        viewer = make_user(session, Role.VIEWER)
        project = make_project(session)
        parent = _ready(session, project)
        batch = make_batch(session, project)
        kept, added = make_image(session, batch), make_image(session, batch)
        verdict = add_verdict(session, image_id=added.id, label="normal", user=reviewer)
        entries = [
            TrainingEntry(kept.id, "parent"),
            TrainingEntry(added.id, "confirmed_normal", verdict.id),
        ]
        with pytest.raises(PermissionDeniedError, match="retrain models"):
            create_child_version(
                session, parent_id=parent.id, name="again", entries=entries, actor=viewer
            )
        with pytest.raises(InvalidValueError, match="no confirmed normal"):
            create_child_version(
                session, parent_id=parent.id, name="again", entries=entries[:1], actor=reviewer
            )
        pending = make_model(session, project)
        with pytest.raises(InvalidValueError, match="not ready"):
            create_child_version(
                session, parent_id=pending.id, name="again", entries=entries, actor=reviewer
            )
        child = create_child_version(
            session, parent_id=parent.id, name="again", entries=entries, actor=reviewer
        )
        assert (child.parent_id, child.variant, child.status) == (
            parent.id,
            parent.variant,
            "pending",
        )
        assert child.training_image_count == 2
        assert training_entries(session, child.id) == entries
        assert source_counts(session, [child.id, parent.id]) == {
            child.id: {"parent": 1, "confirmed_normal": 1}
        }
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "model_version.retrain")
        ).one()
        assert audit.details_json == {
            "parent_id": parent.id,
            "parent_images": 1,
            "confirmed_normals": 1,
        }
        # A retried training copies the lineage to its new model version.
        retried = make_model(session, project)
        assert copy_training_images(session, child.id, retried.id) == 2
        assert training_entries(session, retried.id) == entries


def test_training_images_are_settled_after_training(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        project = make_project(session)
        batch = make_batch(session, project, purpose="train")
        a, b, c = (make_image(session, batch) for _ in range(3))
        ordinary = make_model(session, project)
        settle_training_images(session, ordinary.id, [a.id, c.id])  # b was unreadable
        assert training_entries(session, ordinary.id) == [
            TrainingEntry(a.id, "batch"),
            TrainingEntry(c.id, "batch"),
        ]
        queued = make_model(session, project)
        record_training_images(
            session, queued.id, [TrainingEntry(i.id, "parent") for i in (a, b, c)]
        )
        settle_training_images(session, queued.id, [a.id, b.id])
        assert training_image_ids(session, queued.id) == {a.id, b.id}
        with pytest.raises(InvalidValueError, match="training image source"):
            record_training_images(session, queued.id, [TrainingEntry(c.id, "guess")])


def test_older_models_read_their_training_images_from_their_job(
    factory: sessionmaker[Session],
) -> None:
    with session_scope(factory) as session:
        project = make_project(session)
        train = make_batch(session, project, purpose="train")
        inspect = make_batch(session, project, purpose="inspect")
        normal = make_image(session, train, category="cap")
        make_image(session, train, category="cap", known_label="anomalous")
        make_image(session, train, category="bottle")
        make_image(session, inspect, category="cap")
        model = make_model(session, project)
        job = create_job(
            session,
            kind="train",
            project_id=project.id,
            params={
                "model_version_id": model.id,
                "batch_ids": [train.id, inspect.id],
                "image_ids": None,
                "category": "cap",
                "preset": "tiny",
                "overrides": {},
            },
        )
        set_model_job(session, model.id, job.id)
        # No rows: the job's batches by the training rule (normal, of the category, train batch).
        assert session.scalars(select(TrainingImage)).all() == []
        assert training_image_ids(session, model.id) == {normal.id}
        assert training_image_ids(session, make_model(session, project).id) == set()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lineage.db'}"
    return str(request.getfixturevalue("fresh_pg_url"))


def test_migration_0005_keeps_older_models_and_goes_back(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0004")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO projects (name, created_at) VALUES ('p', :t)"),
                {"t": datetime.now(UTC)},
            )
            connection.execute(
                text(
                    "INSERT INTO model_versions (project_id, name, variant, backbone, "
                    "config_json, status, training_image_count, created_at) "
                    "SELECT id, 'old', 'none', 'alexnet', '{}', 'ready', 0, :t FROM projects"
                ),
                {"t": datetime.now(UTC)},
            )
        command.upgrade(config, "head")
        with session_scope(make_session_factory(engine)) as session:
            (model,) = session.scalars(select(ModelVersion)).all()
            assert model.parent_id is None
            assert training_image_ids(session, model.id) == set()
            project = session.get(Project, model.project_id)
            assert project is not None
            child = make_model(session, project)
            child.parent_id = model.id
            batch = make_batch(session, project)
            record_training_images(
                session, child.id, [TrainingEntry(make_image(session, batch).id, "parent")]
            )
        command.downgrade(config, "0004")
        with engine.connect() as connection:
            names = {c["name"] for c in inspect(connection).get_columns("model_versions")}
            assert "parent_id" not in names
            assert not inspect(connection).has_table("model_version_training_images")
            assert connection.execute(text("SELECT count(*) FROM model_versions")).scalar() == 2
    finally:
        engine.dispose()
