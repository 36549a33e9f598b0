"""Rows and files for the job tests: a project with a training batch and an inspection batch.

Images go through the real ingest (stored by content hash under the data dir). One training file
and one inspection file are then damaged on disk, so the jobs meet unreadable images.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.ingest import ingest_files
from db.models import Image, Job, ModelVersion
from db.repositories import (
    create_batch,
    create_job,
    create_model_version,
    create_project,
    image_file_path,
    set_known_label,
)
from db.session import session_scope
from db.settings import StoreSettings
from jobspec import DEFAULT_HEATMAP_METHOD, Overrides, Preset, ScoreSpec, TrainSpec
from tests.fixtures.synthetic import defect_image, textured_image

CATEGORY = "widget"
TINY = {"epochs": 2, "image_size": 64, "test_views": 2, "cache_views_per_image": 2}
RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Seeded:
    """Ids of what :func:`seed_project` created."""

    project_id: int
    train_batch_id: int
    inspect_batch_id: int
    train_image_ids: list[int]
    anomalous_train_image_id: int
    inspect_image_ids: list[int]
    broken_train_image_id: int
    broken_inspect_image_id: int


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def seed_project(
    factory: sessionmaker[Session],
    data_dir: Path,
    *,
    n_train: int = 8,
    n_inspect: int = 4,
    size: int = 48,
    name: str = "line 1",
) -> Seeded:
    """Create the project, ingest images, label one training image anomalous, break two files."""
    settings = StoreSettings.from_values(data_dir=data_dir, database_url=_url(factory))
    with session_scope(factory) as session:
        project = create_project(session, name=name)
        train = create_batch(session, project_id=project.id, name="normals", purpose="train")
        inspect = create_batch(session, project_id=project.id, name="to check", purpose="inspect")
        normals = [(f"good_{i:03d}.png", _png(textured_image(size, i))) for i in range(n_train)]
        odd = [("odd.png", _png(defect_image(size, 900)[0]))]
        ingest_files(
            session,
            project_id=project.id,
            batch_id=train.id,
            files=normals + odd,
            settings=settings,
            category=CATEGORY,
        )
        half = n_inspect // 2
        checks = [(f"check_{i:03d}.png", _png(textured_image(size, 100 + i))) for i in range(half)]
        checks += [
            (f"defect_{i:03d}.png", _png(defect_image(size, 200 + i)[0]))
            for i in range(n_inspect - half)
        ]
        ingest_files(
            session,
            project_id=project.id,
            batch_id=inspect.id,
            files=checks,
            settings=settings,
            category=CATEGORY,
        )
        session.flush()
        train_images = _images(session, train.id)
        anomalous = next(i for i in train_images if i.original_name == "odd.png")
        set_known_label(session, anomalous.id, "anomalous")
        inspect_images = _images(session, inspect.id)
        broken_train = next(i for i in train_images if i.original_name == "good_000.png")
        broken_inspect = inspect_images[0]
        for image in (broken_train, broken_inspect):
            image_file_path(data_dir, image).write_bytes(b"\x89PNG\r\n\x1a\n broken")
        return Seeded(
            project_id=project.id,
            train_batch_id=train.id,
            inspect_batch_id=inspect.id,
            train_image_ids=[i.id for i in train_images if i.id != anomalous.id],
            anomalous_train_image_id=anomalous.id,
            inspect_image_ids=[i.id for i in inspect_images],
            broken_train_image_id=broken_train.id,
            broken_inspect_image_id=broken_inspect.id,
        )


def _images(session: Session, batch_id: int) -> list[Image]:
    return list(session.scalars(select(Image).where(Image.batch_id == batch_id).order_by(Image.id)))


def _url(factory: sessionmaker[Session]) -> str:
    bind = factory.kw["bind"]
    return str(bind.url.render_as_string(hide_password=False))


def queue_train(
    factory: sessionmaker[Session],
    seeded: Seeded,
    *,
    variant: str = "none",
    overrides: dict[str, int] | None = None,
) -> tuple[int, int]:
    """A pending model version and its queued train job, as the dashboard writes them."""
    with session_scope(factory) as session:
        model = create_model_version(
            session,
            project_id=seeded.project_id,
            name=f"widget {variant}",
            variant=variant,
            backbone="alexnet",
            category=CATEGORY,
        )
        params = TrainSpec(
            model_version_id=model.id,
            batch_ids=(seeded.train_batch_id,),
            category=CATEGORY,
            preset=Preset.TINY,
            overrides=Overrides(**(TINY if overrides is None else overrides)),
        ).to_params()
        job = create_job(session, kind="train", project_id=seeded.project_id, params=params)
        model.job_id = job.id
        return model.id, job.id


def queue_score(
    factory: sessionmaker[Session],
    seeded: Seeded,
    model_id: int,
    *,
    heatmaps: tuple[str, ...] = (DEFAULT_HEATMAP_METHOD.value,),
) -> int:
    """A queued score job of the inspection batch."""
    with session_scope(factory) as session:
        params = ScoreSpec(
            model_version_id=model_id, batch_ids=(seeded.inspect_batch_id,), heatmaps=heatmaps
        ).to_params()
        return create_job(session, kind="score", project_id=seeded.project_id, params=params).id


def stored_row(factory: sessionmaker[Session], model: type[RowT], key: int) -> RowT:
    """A fresh copy of one row, detached from its session."""
    with session_scope(factory) as session:
        row = session.get(model, key)
        assert row is not None
        session.expunge(row)
        return row


def job_row(factory: sessionmaker[Session], job_id: int) -> Job:
    """A fresh copy of a job row."""
    return stored_row(factory, Job, job_id)


def model_row(factory: sessionmaker[Session], model_id: int) -> ModelVersion:
    """A fresh copy of a model version row."""
    return stored_row(factory, ModelVersion, model_id)
