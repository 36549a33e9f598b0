"""A model's scores by image batch: the few columns per score, the batches they fall in, the
newest scored batch and the current verdicts of one batch (for the drift view)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from db.models import Image, ImageBatch, Score, Verdict
from db.repositories.verdicts import latest_verdict_id


@dataclass(frozen=True)
class BatchScores:
    """A model's scores as columns, one entry per score: its image's batch, the image, the score
    and the label the image was uploaded with."""

    batch_ids: tuple[int, ...] = ()
    image_ids: tuple[int, ...] = ()
    scores: tuple[float, ...] = ()
    known_labels: tuple[str | None, ...] = ()

    def __len__(self) -> int:
        return len(self.scores)


class ScoredBatch(NamedTuple):
    """A batch a model scored: when it was uploaded, when the model last scored in it, how many."""

    id: int
    name: str
    purpose: str
    created_at: datetime
    scored_at: datetime
    scores: int


def _images_of(batch_id: int) -> Select[int]:
    """The images of one batch, as a subquery that steers SQLite to the batch index (without
    table statistics it would walk every score of the model and join each to its image)."""
    return select(Image.id).where(Image.batch_id == batch_id)


def batch_scores(
    session: Session,
    *,
    model_version_id: int,
    category: str | None = None,
    batch_id: int | None = None,
) -> BatchScores:
    """Every score of a model version with its image's batch (only images of ``category``, or of
    one batch, when given): four columns, one query."""
    query = (
        select(Image.batch_id, Score.image_id, Score.score, Image.known_label)
        .join(Image, Image.id == Score.image_id)
        .where(Score.model_version_id == model_version_id)
    )
    if category is not None:
        query = query.where(Image.category == category)
    if batch_id is not None:
        query = query.where(Score.image_id.in_(_images_of(batch_id)))
    rows = session.execute(query).all()
    return BatchScores(*zip(*rows, strict=True)) if rows else BatchScores()


def scored_batches(
    session: Session,
    *,
    model_version_id: int,
    category: str | None = None,
    batch_id: int | None = None,
) -> list[ScoredBatch]:
    """The batches holding a model version's scores (of ``category`` / one batch when given),
    counted and timed in SQL, oldest upload first."""
    query = (
        select(
            ImageBatch.id,
            ImageBatch.name,
            ImageBatch.purpose,
            ImageBatch.created_at,
            func.max(Score.scored_at),
            func.count(Score.id),
        )
        .join(Image, Image.batch_id == ImageBatch.id)
        .join(Score, Score.image_id == Image.id)
        .where(Score.model_version_id == model_version_id)
        .group_by(ImageBatch.id, ImageBatch.name, ImageBatch.purpose, ImageBatch.created_at)
        .order_by(ImageBatch.created_at, ImageBatch.id)
    )
    if category is not None:
        query = query.where(Image.category == category)
    if batch_id is not None:
        query = query.where(Score.image_id.in_(_images_of(batch_id)))
    return [ScoredBatch(int(i), n, p, c, s, int(k)) for i, n, p, c, s, k in session.execute(query)]


def newest_scored_batch(session: Session, model_version_id: int) -> int | None:
    """The batch of the image a model version scored last (the scores' (model, scored_at)
    index answers it), or None before its first score."""
    query = (
        select(Image.batch_id)
        .join(Score, Score.image_id == Image.id)
        .where(Score.model_version_id == model_version_id)
        .order_by(Score.scored_at.desc(), Score.id.desc())
        .limit(1)
    )
    batch_id = session.scalar(query)
    return None if batch_id is None else int(batch_id)


def batch_verdict_labels(session: Session, batch_id: int) -> dict[int, str]:
    """The current verdict label of every reviewed image of one batch."""
    query = (
        select(Verdict.image_id, Verdict.label)
        .join(Image, Image.id == Verdict.image_id)
        .where(Image.batch_id == batch_id, Verdict.id == latest_verdict_id(Verdict.image_id))
    )
    return {int(image_id): str(label) for image_id, label in session.execute(query)}
