"""The store on a real PostgreSQL server: migrations, dialect paths and true concurrency.

Each test gets a uniquely named database that is dropped afterwards. These tests fail (they do
not skip) when PostgreSQL cannot be reached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.ingest import ingest_files
from db.migrate import current_revision, head_revision, upgrade_to_head
from db.models import Base, Job, Role, Score, Threshold, User
from db.repositories import (
    add_verdict,
    claim_job,
    create_job,
    current_verdict,
    ensure_first_admin,
    get_user,
    list_scores,
    save_threshold,
    upsert_score,
    verdict_history,
)
from db.session import make_engine, session_scope
from db.settings import StoreSettings
from tests.db.factories import (
    make_batch,
    make_image,
    make_model,
    make_project,
    make_user,
    png_bytes,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")


def run_together(count: int, work: Callable[[int, threading.Barrier], T]) -> list[T]:
    """Run `work(i, barrier)` in `count` threads that meet at a shared barrier; re-raise errors."""
    barrier = threading.Barrier(count, timeout=30)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            results[i] = work(i, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


def test_postgres_migrations_match_models(fresh_pg_url: str) -> None:
    assert current_revision(fresh_pg_url) is None
    upgrade_to_head(fresh_pg_url)
    upgrade_to_head(fresh_pg_url)
    assert current_revision(fresh_pg_url) == head_revision()
    engine = make_engine(fresh_pg_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            indexes: dict[str, str] = dict(
                connection.execute(
                    text(
                        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'thresholds'"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    assert "COALESCE(category, ''::character varying)" in indexes["uq_thresholds_one_active"]
    assert "WHERE is_active" in indexes["uq_thresholds_one_active"]


def test_concurrent_verdicts_on_the_same_image(pg_factory: sessionmaker[Session]) -> None:
    with session_scope(pg_factory) as session:
        alice, bob = make_user(session, name="alice"), make_user(session, name="bob")
        image = make_image(session, make_batch(session, make_project(session)))
        image_id, user_ids = image.id, [alice.id, bob.id]

    def review(i: int, barrier: threading.Barrier) -> tuple[int | None, int]:
        with pg_factory() as session:
            seen = current_verdict(session, image_id)  # both read "unreviewed"
            barrier.wait()
            user = get_user(session, user_ids[i])
            verdict = add_verdict(
                session, image_id=image_id, label=("anomalous", "normal")[i], user=user
            )
            barrier.wait()  # both inserts are pending in open transactions at once
            session.commit()
            return (seen.id if seen else None), verdict.id

    results = run_together(2, review)
    assert [seen for seen, _ in results] == [None, None]
    with pg_factory() as one, pg_factory() as two:
        history = verdict_history(one, image_id)
        assert sorted(v.id for v in history) == sorted(v for _, v in results)
        assert {v.label for v in history} == {"anomalous", "normal"}
        latest = max(history, key=lambda v: (v.created_at, v.id))
        for session in (one, two):
            current = current_verdict(session, image_id)
            assert current is not None and current.id == latest.id
        assert history[0].id == latest.id
        assert all(v.created_at.tzinfo is not None for v in history)


def test_job_claim_is_exclusive_under_concurrency(pg_factory: sessionmaker[Session]) -> None:
    with session_scope(pg_factory) as session:
        job_id = create_job(session, kind="train").id

    def claim(i: int, barrier: threading.Barrier) -> bool:
        with pg_factory() as session:
            session.execute(select(Job.id).where(Job.id == job_id))  # open the transaction
            barrier.wait()
            claimed = claim_job(session, job_id, worker_name=f"worker-{i}")
            session.commit()
            return claimed is not None

    wins = run_together(4, claim)
    assert sum(wins) == 1
    with pg_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.attempts, job.worker_name) == (
            "running",
            1,
            f"worker-{wins.index(True)}",
        )


def test_concurrent_threshold_saves_leave_one_active(pg_factory: sessionmaker[Session]) -> None:
    with session_scope(pg_factory) as session:
        model_id = make_model(session, make_project(session)).id

    def save(i: int, barrier: threading.Barrier) -> int:
        with pg_factory() as session:
            session.execute(text("SELECT 1"))
            barrier.wait()
            threshold = save_threshold(
                session, model_version_id=model_id, value=0.1 * (i + 1), method="manual"
            )
            session.commit()
            return threshold.version

    versions = run_together(3, save)
    assert sorted(versions) == [1, 2, 3]
    with pg_factory() as session:
        active = session.scalars(
            select(Threshold).where(Threshold.model_version_id == model_id, Threshold.is_active)
        ).all()
        assert len(active) == 1
        assert active[0].version == 3


def test_postgres_refuses_a_second_active_threshold(pg_factory: sessionmaker[Session]) -> None:
    with session_scope(pg_factory) as session:
        model_id = make_model(session, make_project(session)).id
        save_threshold(session, model_version_id=model_id, value=0.5, method="manual")
    with pg_factory() as session, pytest.raises(IntegrityError, match="uq_thresholds_one_active"):
        session.execute(
            text(
                "INSERT INTO thresholds (model_version_id, category, version, value, method, "
                "params_json, metrics_json, created_at, is_active) VALUES "
                "(:m, NULL, 7, 0.1, 'manual', '{}', '{}', now(), true)"
            ),
            {"m": model_id},
        )


def test_first_admin_is_created_once_under_concurrency(pg_factory: sessionmaker[Session]) -> None:
    def start(_: int, barrier: threading.Barrier) -> bool:
        with pg_factory() as session:
            session.execute(text("SELECT 1"))
            barrier.wait()
            created = ensure_first_admin(session, "admin", "first password")
            session.commit()
            return created is not None

    assert sorted(run_together(2, start)) == [False, True]
    with pg_factory() as session:
        users = session.scalars(select(User)).all()
        assert [(u.username, u.role) for u in users] == [("admin", Role.ADMIN)]


def test_scores_and_review_queue_on_postgres(pg_factory: sessionmaker[Session]) -> None:
    with session_scope(pg_factory) as session:
        project = make_project(session)
        batch = make_batch(session, project)
        model = make_model(session, project)
        reviewer = make_user(session)
        images = [make_image(session, batch, category="screw") for _ in range(4)]
        for image, value in zip(images, [0.2, 0.4, 0.6, 0.8], strict=True):
            upsert_score(session, image_id=image.id, model_version_id=model.id, score=value)
            upsert_score(
                session,
                image_id=image.id,
                model_version_id=model.id,
                score=value,
                heatmap_pngs={"layercam_stages": png_bytes()},
            )
        save_threshold(session, model_version_id=model.id, value=0.5, method="manual")
        add_verdict(session, image_id=images[3].id, label="normal", user=reviewer)
        ids = (model.id, images[3].id)

    with session_scope(pg_factory) as session:
        assert session.scalar(select(func.count(Score.id))) == 4
        page = list_scores(session, model_version_id=ids[0])
        assert [(r.score, r.model_verdict) for r in page.items] == [
            (0.8, "anomalous"),
            (0.6, "anomalous"),
            (0.4, "normal"),
            (0.2, "normal"),
        ]
        assert page.items[0].verdict_label == "normal" and page.items[0].has_heatmap
        save_threshold(session, model_version_id=ids[0], value=0.7, method="manual")
        relabelled = list_scores(session, model_version_id=ids[0], order="uncertain")
        assert [(r.score, r.model_verdict) for r in relabelled.items] == [
            (0.6, "normal"),
            (0.8, "anomalous"),
            (0.4, "normal"),
            (0.2, "normal"),
        ]
        audit = list_scores(session, model_version_id=ids[0], order="audit", seed=3)
        assert {r.score for r in audit.items} == {0.2, 0.4, 0.6}


def test_ingest_on_postgres(pg_factory: sessionmaker[Session], tmp_path: Path) -> None:
    settings = StoreSettings.from_values(data_dir=tmp_path / "pgdata")
    with session_scope(pg_factory) as session:
        batch = make_batch(session, make_project(session))
        outcomes = ingest_files(
            session,
            project_id=batch.project_id,
            batch_id=batch.id,
            files=[("a.png", png_bytes()), ("b.png", png_bytes()), ("c.txt", b"hello")],
            settings=settings,
        )
    assert [o.status for o in outcomes] == ["accepted", "duplicate", "rejected"]
