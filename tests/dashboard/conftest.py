"""Shared fixtures of the dashboard tests: a real migrated SQLite store with users, a project,
ingested synthetic images and a ready, scored model version; plus a helper to open one page.

Quick map (each fixture builds on the ones above it):

- ``studio_store``    fresh data dir + migrated SQLite file; ``ADN_DATA_DIR``/``ADN_DATABASE_URL``
                      set in the environment, Streamlit caches cleared. Returns ``StoreSettings``.
- ``studio_factory``  a session factory on that database (use with ``session_scope``).
- ``studio_users``    ``{"admin"|"reviewer"|"viewer": StudioUser}`` with known passwords.
- ``studio_project``  a project "Widget line" (``ProjectInfo``).
- ``train_batch``     a *train* batch of 6 normal synthetic images, category "widget".
- ``inspect_batch``   an *inspect* batch: 4 known-normal + 4 known-anomalous images (MVTec names).
- ``ready_model``     a READY model version (cbam, mobilenet_v2) with a checkpoint file, a score
                      and a heatmap PNG for every inspect image, and an active threshold v1 = 0.5.
- ``studio``          everything above in one ``StudioData``.
- ``open_page``       ``open_page("dashboard/pages/x.py", role="reviewer") -> AppTest`` signed in,
                      with the project selected, not yet run.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from dashboard.context import PROJECT_KEY, USER_KEY, CurrentUser
from db.ingest import ingest_files
from db.labels import FolderLabels
from db.repositories import (
    claim_job,
    create_batch,
    create_job,
    create_model_version,
    create_project,
    create_user,
    finish_succeeded,
    get_user,
    mark_model_ready,
    save_threshold,
    set_model_job,
    upsert_score,
)
from db.session import make_engine, make_session_factory, session_scope
from db.settings import StoreSettings
from jobspec import DEFAULT_HEATMAP_METHOD, HeatmapMethod
from tests.fixtures.synthetic import defect_image, textured_image

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_SIZE = 48
CATEGORY = "widget"
PASSWORDS = {
    "admin": "admin-secret-1",
    "reviewer": "reviewer-secret-1",
    "viewer": "viewer-secret-1",
}
THRESHOLD_VALUE = 0.5
NORMAL_SCORES = (0.10, 0.20, 0.30, 0.45)
ANOMALOUS_SCORES = (0.55, 0.70, 0.80, 0.95)


@dataclass(frozen=True)
class StudioUser:
    """A test user: id, name, role and the plain password it signs in with."""

    id: int
    username: str
    role: str
    password: str

    def current(self) -> CurrentUser:
        """The session-state value a signed-in page expects."""
        return CurrentUser(id=self.id, username=self.username, role=self.role)


@dataclass(frozen=True)
class ProjectInfo:
    """The test project's id and name."""

    id: int
    name: str


@dataclass(frozen=True)
class BatchInfo:
    """An ingested batch: its id, name, purpose, image ids and upload names (same order)."""

    id: int
    name: str
    purpose: str
    image_ids: list[int]
    names: list[str]
    normal_ids: list[int] = field(default_factory=list)
    anomalous_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ModelInfo:
    """The ready model version, its training job, active threshold and scores by image id."""

    id: int
    name: str
    variant: str
    backbone: str
    job_id: int
    threshold_id: int
    threshold_value: float
    artifact_path: str  # relative to the data dir
    scores: dict[int, float]


@dataclass(frozen=True)
class StudioData:
    """Everything the ``studio`` fixture built, as plain values."""

    settings: StoreSettings
    factory: sessionmaker[Session]
    users: dict[str, StudioUser]
    project: ProjectInfo
    train_batch: BatchInfo
    inspect_batch: BatchInfo
    model: ModelInfo
    category: str = CATEGORY


def png_bytes(image: PILImage.Image) -> bytes:
    """Encode a PIL image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def heatmap_png(width: int, height: int, seed: int = 0) -> bytes:
    """An 8-bit grayscale heatmap PNG (a soft blob) at the given resolution."""
    rng = np.random.default_rng(seed)
    cy, cx = rng.uniform(0.3, 0.7, 2)
    y, x = np.mgrid[0:height, 0:width]
    blob = np.exp(-(((y / height - cy) ** 2) + ((x / width - cx) ** 2)) / 0.02)
    return png_bytes(PILImage.fromarray((blob * 255).astype(np.uint8), mode="L"))


def heatmap_pngs(width: int, height: int, seed: int = 0) -> dict[str, bytes]:
    """Heatmaps of one score by two methods: the default and the input gradient (other blobs)."""
    return {
        DEFAULT_HEATMAP_METHOD.value: heatmap_png(width, height, seed),
        HeatmapMethod.INPUT_GRADIENT.value: heatmap_png(width, height, seed + 1000),
    }


@pytest.fixture
def studio_store(
    tmp_path: Path, migrated_sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StoreSettings]:
    """A fresh data dir with a migrated database; the ``ADN_*`` variables point at it."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(migrated_sqlite_template, data_dir / "studio.db")
    monkeypatch.setenv("ADN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ADN_DATABASE_URL", f"sqlite:///{data_dir / 'studio.db'}")
    monkeypatch.setenv("ADN_MAX_FILE_MB", "5")
    monkeypatch.setenv("ADN_MAX_PIXELS", "4000000")
    st.cache_data.clear()
    st.cache_resource.clear()
    yield StoreSettings.from_env()
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def studio_factory(studio_store: StoreSettings) -> Iterator[sessionmaker[Session]]:
    """A session factory on the test database (its engine is disposed afterwards)."""
    engine = make_engine(studio_store.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def studio_users(studio_factory: sessionmaker[Session]) -> dict[str, StudioUser]:
    """Users ``admin``, ``reviewer`` and ``viewer`` (role = name), passwords in ``PASSWORDS``."""
    users: dict[str, StudioUser] = {}
    with session_scope(studio_factory) as session:
        for role, password in PASSWORDS.items():
            row = create_user(session, username=role, password=password, role=role)
            users[role] = StudioUser(row.id, row.username, role, password)
    return users


@pytest.fixture
def studio_project(
    studio_factory: sessionmaker[Session], studio_users: dict[str, StudioUser]
) -> ProjectInfo:
    """A project "Widget line" created by the admin."""
    with session_scope(studio_factory) as session:
        admin = get_user(session, studio_users["admin"].id)
        row = create_project(
            session, name="Widget line", description="synthetic widgets", actor=admin
        )
        return ProjectInfo(row.id, row.name)


def _ingest(
    factory: sessionmaker[Session],
    settings: StoreSettings,
    *,
    project_id: int,
    user_id: int,
    name: str,
    purpose: str,
    files: list[tuple[str, bytes]],
) -> BatchInfo:
    with session_scope(factory) as session:
        actor = get_user(session, user_id)
        batch = create_batch(
            session, project_id=project_id, name=name, purpose=purpose, actor=actor
        )
        outcomes = ingest_files(
            session,
            project_id=project_id,
            batch_id=batch.id,
            files=files,
            settings=settings,
            label_source=FolderLabels(),
            actor=actor,
        )
        assert all(o.status == "accepted" for o in outcomes), outcomes
        ids = [int(o.image_id) for o in outcomes if o.image_id is not None]
        normal = [i for (n, _), i in zip(files, ids, strict=True) if "/good/" in n]
        anomalous = [i for (n, _), i in zip(files, ids, strict=True) if "/good/" not in n]
        return BatchInfo(
            batch.id, batch.name, purpose, ids, [n for n, _ in files], normal, anomalous
        )


@pytest.fixture
def train_batch(
    studio_factory: sessionmaker[Session],
    studio_store: StoreSettings,
    studio_users: dict[str, StudioUser],
    studio_project: ProjectInfo,
) -> BatchInfo:
    """A *train* batch of 6 normal images ``widget/train/good/00N.png`` (known label normal)."""
    files = [
        (f"{CATEGORY}/train/good/{i:03d}.png", png_bytes(textured_image(IMAGE_SIZE, seed=i)))
        for i in range(6)
    ]
    return _ingest(
        studio_factory,
        studio_store,
        project_id=studio_project.id,
        user_id=studio_users["reviewer"].id,
        name="normals week 1",
        purpose="train",
        files=files,
    )


@pytest.fixture
def inspect_batch(
    studio_factory: sessionmaker[Session],
    studio_store: StoreSettings,
    studio_users: dict[str, StudioUser],
    studio_project: ProjectInfo,
) -> BatchInfo:
    """An *inspect* batch: ``widget/test/good/00N.png`` x4 (normal) then
    ``widget/test/defect/00N.png`` x4 (anomalous, defect type "defect")."""
    good = [
        (f"{CATEGORY}/test/good/{i:03d}.png", png_bytes(textured_image(IMAGE_SIZE, seed=100 + i)))
        for i in range(len(NORMAL_SCORES))
    ]
    bad = [
        (
            f"{CATEGORY}/test/defect/{i:03d}.png",
            png_bytes(defect_image(IMAGE_SIZE, seed=200 + i)[0]),
        )
        for i in range(len(ANOMALOUS_SCORES))
    ]
    return _ingest(
        studio_factory,
        studio_store,
        project_id=studio_project.id,
        user_id=studio_users["reviewer"].id,
        name="line 3 monday",
        purpose="inspect",
        files=good + bad,
    )


@pytest.fixture
def ready_model(
    studio_factory: sessionmaker[Session],
    studio_store: StoreSettings,
    studio_users: dict[str, StudioUser],
    studio_project: ProjectInfo,
    train_batch: BatchInfo,
    inspect_batch: BatchInfo,
) -> ModelInfo:
    """A READY model version trained (on paper) on ``train_batch``; every inspect image scored
    (normals 0.10..0.45, anomalous 0.55..0.95, percentiles set) with a heatmap PNG at the
    image's resolution; an active all-categories threshold v1 = 0.5 (method manual)."""
    scores = dict(
        zip(
            inspect_batch.normal_ids + inspect_batch.anomalous_ids,
            NORMAL_SCORES + ANOMALOUS_SCORES,
            strict=True,
        )
    )
    with session_scope(studio_factory) as session:
        reviewer = get_user(session, studio_users["reviewer"].id)
        model = create_model_version(
            session,
            project_id=studio_project.id,
            name="widget cbam",
            variant="cbam",
            backbone="mobilenet_v2",
            category=CATEGORY,
            actor=reviewer,
        )
        job = create_job(
            session,
            kind="train",
            project_id=studio_project.id,
            params={
                "model_version_id": model.id,
                "batch_ids": [train_batch.id],
                "image_ids": None,
                "category": CATEGORY,
                "preset": "tiny",
                "overrides": {},
            },
            actor=reviewer,
        )
        set_model_job(session, model.id, job.id)
        claim_job(session, job.id, worker_name="test-worker")
        finish_succeeded(session, job.id, message="trained 2 epochs")
        artifact = f"models/{model.id}/model.adn"
        target = studio_store.data_dir / artifact
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"ADN test checkpoint " * 64)
        mark_model_ready(
            session,
            model.id,
            artifact_path=artifact,
            metrics={"auroc": 1.0},
            calibration={
                "scores": list(NORMAL_SCORES),
                "quantile": 0.99,
                "threshold": max(NORMAL_SCORES),
            },
            training_image_count=len(train_batch.image_ids),
        )
        for index, (image_id, value) in enumerate(scores.items()):
            upsert_score(
                session,
                image_id=image_id,
                model_version_id=model.id,
                score=value,
                percentile=min(100.0, value * 100),
                heatmap_pngs=heatmap_pngs(IMAGE_SIZE, IMAGE_SIZE, seed=index),
            )
        threshold = save_threshold(
            session,
            model_version_id=model.id,
            value=THRESHOLD_VALUE,
            method="manual",
            actor=reviewer,
        )
        return ModelInfo(
            id=model.id,
            name=model.name,
            variant=model.variant,
            backbone=model.backbone,
            job_id=job.id,
            threshold_id=threshold.id,
            threshold_value=THRESHOLD_VALUE,
            artifact_path=artifact,
            scores=scores,
        )


@pytest.fixture
def studio(
    studio_store: StoreSettings,
    studio_factory: sessionmaker[Session],
    studio_users: dict[str, StudioUser],
    studio_project: ProjectInfo,
    train_batch: BatchInfo,
    inspect_batch: BatchInfo,
    ready_model: ModelInfo,
) -> StudioData:
    """The whole scene: store, users, project, both batches and the ready scored model."""
    return StudioData(
        settings=studio_store,
        factory=studio_factory,
        users=studio_users,
        project=studio_project,
        train_batch=train_batch,
        inspect_batch=inspect_batch,
        model=ready_model,
    )


OpenPage = Callable[..., AppTest]


@pytest.fixture
def open_page(
    studio_store: StoreSettings,
    studio_users: dict[str, StudioUser],
    request: pytest.FixtureRequest,
) -> OpenPage:
    """``open_page(path, role="reviewer", project_id=<studio_project or None>, timeout=30)``:
    an ``AppTest`` for one page file (relative to the repo root), signed in as ``role`` (None
    for nobody) and with the project selected. Call ``.run()`` on it."""

    def _open(
        path: str,
        role: str | None = "reviewer",
        project_id: int | str | None = "default",
        timeout: float = 30,
    ) -> AppTest:
        app = AppTest.from_file(str(REPO_ROOT / path), default_timeout=timeout)
        if role is not None:
            app.session_state[USER_KEY] = studio_users[role].current()
        if project_id == "default":
            project_id = None
            if "studio_project" in request.fixturenames:
                project_id = request.getfixturevalue("studio_project").id
        if project_id is not None:
            app.session_state[PROJECT_KEY] = int(project_id)
        return app

    return _open


def _record_send_job(
    monkeypatch: pytest.MonkeyPatch, refusal: str | None = None
) -> list[tuple[int, str]]:
    """Replace ``worker.dispatch.send_job`` by a fake that records ``(job_id, kind)`` per call and,
    given a ``refusal``, raises ``BrokerUnavailableError`` with it instead of sending."""
    import worker.dispatch

    calls: list[tuple[int, str]] = []

    def fake_send(job_id: int, kind: str, app: object = None) -> str:
        calls.append((int(job_id), kind))
        if refusal is not None:
            raise worker.dispatch.BrokerUnavailableError(refusal)
        return f"task-{job_id}"

    monkeypatch.setattr(worker.dispatch, "send_job", fake_send)
    return calls


@pytest.fixture
def dispatch_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Record ``worker.dispatch.send_job(job_id, kind)`` calls instead of sending anything."""
    return _record_send_job(monkeypatch)


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Make ``worker.dispatch.send_job`` fail as if the broker were unreachable; records calls."""
    return _record_send_job(
        monkeypatch,
        refusal="could not hand the job to the broker at redis://broker:6379/0: connection refused",
    )
