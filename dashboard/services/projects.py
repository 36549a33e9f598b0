"""Projects and their batches and images, as plain values for the pages."""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from dashboard.services.store import SessionFactory
from db.repositories import (
    count_images,
    create_project,
    get_user,
    image_file_path,
    list_batches,
    list_images,
    list_projects,
    usernames,
)
from db.session import session_scope

logger = logging.getLogger(__name__)

PURPOSE_LABELS = {"train": "normal training images", "inspect": "images to inspect"}
THUMBNAIL_SIDE = 160


@dataclass(frozen=True)
class ProjectRow:
    """One project."""

    id: int
    name: str
    description: str | None
    created_at: datetime


@dataclass(frozen=True)
class BatchRow:
    """One batch with its counters, creator and creation time."""

    id: int
    name: str
    purpose: str
    file_count: int
    accepted: int
    duplicates: int
    rejected: int
    images: int
    created_by: str | None
    created_at: datetime

    @property
    def label(self) -> str:
        """A short text that names the batch in pickers."""
        return (
            f"{self.name} · {PURPOSE_LABELS.get(self.purpose, self.purpose)} · {self.images} images"
        )


@dataclass(frozen=True)
class ImageTile:
    """What a thumbnail grid needs about one image."""

    id: int
    name: str
    path: Path
    sha256: str
    category: str | None
    known_label: str | None
    width: int
    height: int


def projects(factory: SessionFactory) -> list[ProjectRow]:
    """Every project, by name."""
    with session_scope(factory) as session:
        return [
            ProjectRow(p.id, p.name, p.description, p.created_at) for p in list_projects(session)
        ]


def new_project(
    factory: SessionFactory, *, name: str, description: str | None, actor_id: int
) -> ProjectRow:
    """Create a project (reviewers and admins)."""
    with session_scope(factory) as session:
        project = create_project(
            session, name=name, description=description, actor=get_user(session, actor_id)
        )
        return ProjectRow(project.id, project.name, project.description, project.created_at)


def batches(
    factory: SessionFactory, project_id: int, *, purpose: str | None = None
) -> list[BatchRow]:
    """Batches of a project, newest first, with image counts and who made them."""
    with session_scope(factory) as session:
        rows = list_batches(session, project_id, purpose=purpose)
        names = usernames(session, {b.created_by for b in rows if b.created_by is not None})
        return [
            BatchRow(
                id=b.id,
                name=b.name,
                purpose=b.purpose,
                file_count=b.file_count,
                accepted=b.accepted_count,
                duplicates=b.duplicate_count,
                rejected=b.rejected_count,
                images=count_images(session, project_id=project_id, batch_id=b.id),
                created_by=names.get(b.created_by) if b.created_by is not None else None,
                created_at=b.created_at,
            )
            for b in rows
        ]


def page_count(total: int, per_page: int) -> int:
    """How many pages ``total`` items fill (at least one)."""
    return max(1, math.ceil(total / per_page))


def image_tiles(
    factory: SessionFactory,
    data_dir: Path,
    *,
    project_id: int,
    batch_id: int,
    page: int,
    per_page: int,
) -> tuple[list[ImageTile], int]:
    """One page (1-based) of a batch's images, and the total number of images."""
    with session_scope(factory) as session:
        total = count_images(session, project_id=project_id, batch_id=batch_id)
        page = min(max(1, page), page_count(total, per_page))
        rows = list_images(
            session,
            project_id=project_id,
            batch_id=batch_id,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
        tiles = [
            ImageTile(
                id=i.id,
                name=i.original_name,
                path=image_file_path(data_dir, i),
                sha256=i.sha256,
                category=i.category,
                known_label=i.known_label,
                width=i.width,
                height=i.height,
            )
            for i in rows
        ]
    return tiles, total


def thumbnail_png(path: Path, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """An RGB PNG thumbnail of the stored image (None when the file cannot be read)."""
    try:
        with PILImage.open(path) as opened:
            picture: PILImage.Image = ImageOps.exif_transpose(opened)
            if picture.mode in ("I;16", "I", "F"):
                picture = picture.point(lambda v: v / 256).convert("L")
            rgb = picture.convert("RGB")
            rgb.thumbnail((side, side))
            buffer = io.BytesIO()
            rgb.save(buffer, format="PNG")
            return buffer.getvalue()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        logger.warning("cannot make a thumbnail of %s: %s", path, exc)
        return None
