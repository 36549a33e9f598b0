"""Which images a job works on, read from the store (see the params contract in ``dispatch``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from db.models import Image
from db.repositories import image_file_path, trainable_images

_IN_CHUNK = 500  # ids per IN (...) list, well below every database's parameter limit


@dataclass(frozen=True)
class JobImage:
    """One stored image: its id, absolute file path and the name it was uploaded with."""

    id: int
    path: Path
    name: str


def training_images(
    session: Session,
    data_dir: Path,
    *,
    project_id: int,
    batch_ids: Sequence[int],
    image_ids: Sequence[int] | None,
    category: str | None,
) -> list[JobImage]:
    """Normal training images: the train batches' images (or exactly ``image_ids``), of
    ``category`` when given, never those whose known label is anomalous (the store's
    ``trainable_images`` rule)."""
    query = trainable_images(project_id, category, train_batches=image_ids is None)
    if image_ids is None:
        return _load(session, data_dir, query, Image.batch_id, batch_ids)
    return _load(session, data_dir, query, Image.id, image_ids)


def scoring_images(
    session: Session,
    data_dir: Path,
    *,
    project_id: int,
    batch_ids: Sequence[int],
    image_ids: Sequence[int] | None,
) -> list[JobImage]:
    """The images of ``batch_ids`` (any purpose), or exactly ``image_ids``, in upload order."""
    query = select(Image).where(Image.project_id == project_id)
    if image_ids is None:
        return _load(session, data_dir, query, Image.batch_id, batch_ids)
    return _load(session, data_dir, query, Image.id, image_ids)


def _load(
    session: Session,
    data_dir: Path,
    query: Select[Image],
    column: InstrumentedAttribute[int],
    ids: Iterable[int],
) -> list[JobImage]:
    wanted = sorted(set(ids))
    found: dict[int, JobImage] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        for image in session.scalars(query.where(column.in_(chunk))):
            found[image.id] = JobImage(
                id=image.id,
                path=image_file_path(data_dir, image),
                name=image.original_name,
            )
    return [found[key] for key in sorted(found)]
