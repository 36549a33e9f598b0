"""The training images of model versions: the rule that picks them, and the rows that record them.

Each model version keeps one row per training image (``model_version_training_images``): its
source (a training batch, the parent's training set, or a reviewer's normal verdict) and, for a
confirmed normal, the verdict that let it in. Model versions trained before these rows existed
are read from their training job's parameters by the same rule the worker trains with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.orm import Session

from db.models import (
    BatchPurpose,
    Image,
    ImageBatch,
    Job,
    KnownLabel,
    ModelVersion,
    TrainingImage,
    TrainingSource,
)
from db.repositories._common import IN_CHUNK, check_choice, chunks
from jobspec import JobSpecError, TrainSpec


@dataclass(frozen=True)
class TrainingEntry:
    """One image going into a training: why, and the verdict that confirmed it normal."""

    image_id: int
    source: str
    verdict_id: int | None = None


def trainable_images(
    project_id: int, category: str | None, *, train_batches: bool
) -> Select[Image]:
    """The training-image rule: the project's images (of ``category`` when given), never one
    known to be anomalous; with ``train_batches``, only images of batches uploaded for training.
    Callers narrow it to batch ids or image ids."""
    query = select(Image).where(Image.project_id == project_id)
    if category is not None:
        query = query.where(Image.category == category)
    query = query.where(
        (Image.known_label.is_(None)) | (Image.known_label != KnownLabel.ANOMALOUS.value)
    )
    if train_batches:
        query = query.join(ImageBatch, ImageBatch.id == Image.batch_id).where(
            ImageBatch.purpose == BatchPurpose.TRAIN.value
        )
    return query


def record_training_images(
    session: Session, model_version_id: int, entries: Iterable[TrainingEntry]
) -> int:
    """Record the training images of a model version (one row per image); returns how many."""
    rows = [
        {
            "model_version_id": model_version_id,
            "image_id": e.image_id,
            "verdict_id": e.verdict_id,
            "source": check_choice(
                "training image source", e.source, (s.value for s in TrainingSource)
            ),
        }
        for e in entries
    ]
    for start in range(0, len(rows), IN_CHUNK):
        session.execute(insert(TrainingImage), rows[start : start + IN_CHUNK])
    session.flush()
    return len(rows)


def training_entries(session: Session, model_version_id: int) -> list[TrainingEntry]:
    """The recorded training images of a model version, by image id (empty when none are)."""
    query = (
        select(TrainingImage.image_id, TrainingImage.source, TrainingImage.verdict_id)
        .where(TrainingImage.model_version_id == model_version_id)
        .order_by(TrainingImage.image_id)
    )
    return [TrainingEntry(int(i), str(s), v) for i, s, v in session.execute(query)]


def settle_training_images(
    session: Session, model_version_id: int, used_image_ids: Iterable[int]
) -> None:
    """After a training: keep exactly the images it used. Rows recorded when it was queued lose
    the images it could not use (unreadable files); a training without rows gets one ``batch``
    row per image."""
    used = set(used_image_ids)
    recorded = {e.image_id for e in training_entries(session, model_version_id)}
    if not recorded:
        entries = (TrainingEntry(i, TrainingSource.BATCH.value) for i in sorted(used))
        record_training_images(session, model_version_id, entries)
        return
    for chunk in chunks(recorded - used):
        session.execute(
            delete(TrainingImage).where(
                TrainingImage.model_version_id == model_version_id,
                TrainingImage.image_id.in_(chunk),
            )
        )
    session.flush()


def copy_training_images(session: Session, from_id: int, to_id: int) -> int:
    """Give model version ``to_id`` the recorded training images of ``from_id`` (a retried
    training keeps its lineage); returns how many."""
    return record_training_images(session, to_id, training_entries(session, from_id))


def _planned_ids(session: Session, model: ModelVersion) -> set[int]:
    """What the model's training job trains on, by the worker's rule (models without rows)."""
    job = session.get(Job, model.job_id) if model.job_id is not None else None
    if job is None:
        return set()
    try:
        spec = TrainSpec.from_params(job.params_json)
    except JobSpecError:
        return set()
    category = spec.category if spec.category is not None else model.category
    by_images = spec.image_ids is not None
    query = trainable_images(model.project_id, category, train_batches=not by_images)
    column = Image.id if by_images else Image.batch_id
    wanted: Sequence[int] = spec.image_ids if spec.image_ids is not None else spec.batch_ids
    found: set[int] = set()
    for chunk in chunks(wanted):
        found.update(session.scalars(query.with_only_columns(Image.id).where(column.in_(chunk))))
    return found


def training_image_ids(session: Session, model_version_id: int) -> set[int]:
    """The ids of the images a model version was (or is being) trained on."""
    recorded = {e.image_id for e in training_entries(session, model_version_id)}
    if recorded:
        return recorded
    model = session.get(ModelVersion, model_version_id)
    return set() if model is None else _planned_ids(session, model)


def source_counts(session: Session, model_version_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per model version, how many recorded training images came from each source."""
    counts: dict[int, dict[str, int]] = {}
    for chunk in chunks(model_version_ids):
        query = (
            select(TrainingImage.model_version_id, TrainingImage.source, func.count())
            .where(TrainingImage.model_version_id.in_(chunk))
            .group_by(TrainingImage.model_version_id, TrainingImage.source)
        )
        for model_id, source, count in session.execute(query):
            counts.setdefault(int(model_id), {})[str(source)] = int(count)
    return counts
