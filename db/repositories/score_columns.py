"""A model version's scores as columns, for pages that pair models image by image (Compare):
the scores table alone, or with the two facts of each image that the numbers need; the names
and files only of the few images a page lists."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Image, Score
from db.repositories._common import chunks, plain_columns


@dataclass(frozen=True)
class ScoreColumns:
    """A model version's scores as columns, one entry per scored image, in no set order. The
    image columns are empty when only the scores were read."""

    image_ids: tuple[int, ...] = ()
    scores: tuple[float, ...] = ()
    categories: tuple[str | None, ...] = ()
    known_labels: tuple[str | None, ...] = ()

    def __len__(self) -> int:
        return len(self.scores)


class ImageFile(NamedTuple):
    """What a page shows of an image it lists: its name and its file in the store."""

    original_name: str
    storage_path: str


def score_columns(
    session: Session, *, model_version_id: int, with_images: bool = False
) -> ScoreColumns:
    """Every score of a model version as (image id, score) columns from the scores table alone;
    ``with_images`` adds each image's category and known label (one join)."""
    if not with_images:
        query = select(Score.image_id, Score.score).where(
            Score.model_version_id == model_version_id
        )
        return ScoreColumns(*plain_columns(session, query))
    joined = (
        select(Score.image_id, Score.score, Image.category, Image.known_label)
        .join(Image, Image.id == Score.image_id)
        .where(Score.model_version_id == model_version_id)
    )
    return ScoreColumns(*plain_columns(session, joined))


def image_files(session: Session, image_ids: Iterable[int]) -> dict[int, ImageFile]:
    """Name and stored file of each of ``image_ids`` that exists, by id (numpy integers too)."""
    found: dict[int, ImageFile] = {}
    for chunk in chunks(int(i) for i in image_ids):
        query = select(Image.id, Image.original_name, Image.storage_path).where(Image.id.in_(chunk))
        found.update({int(i): ImageFile(n, p) for i, n, p in session.execute(query)})
    return found
