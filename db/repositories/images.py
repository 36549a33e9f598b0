"""Image batches and images: create batches, list and get images, locate files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict, Unpack

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from db.errors import InvalidValueError
from db.models import BatchPurpose, Image, ImageBatch, KnownLabel, Role, User
from db.repositories._common import check_choice, check_page, clean_name, get_or_raise
from db.repositories.audit import record_audit
from db.repositories.projects import get_project
from db.roles import require_role
from db.settings import StoreSettings
from db.storage import resolve_data_path

UNLABELLED = "unlabelled"  # filter value for images without a known label


def create_batch(
    session: Session,
    *,
    project_id: int,
    name: str,
    purpose: str,
    actor: User | None = None,
) -> ImageBatch:
    """Create an empty batch; `purpose` is "train" (normal images) or "inspect"."""
    if actor is not None:
        require_role(actor, Role.REVIEWER, action="upload images")
    get_project(session, project_id)
    batch = ImageBatch(
        project_id=project_id,
        name=clean_name("batch name", name, max_length=200),
        purpose=check_choice("batch purpose", purpose, (p.value for p in BatchPurpose)),
        created_by=actor.id if actor is not None else None,
        file_count=0,
        accepted_count=0,
        duplicate_count=0,
        rejected_count=0,
    )
    session.add(batch)
    session.flush()
    record_audit(
        session,
        action="batch.create",
        entity_type="batch",
        entity_id=batch.id,
        user=actor,
        details={"project_id": project_id, "name": batch.name, "purpose": batch.purpose},
    )
    return batch


def discard_empty_batch(session: Session, batch_id: int, *, actor: User | None = None) -> None:
    """Remove a batch that holds no image (an upload of only duplicates or rejects), with an
    audit row; a batch with images is refused."""
    batch = get_batch(session, batch_id)
    held = session.scalar(select(func.count(Image.id)).where(Image.batch_id == batch_id))
    if held:
        raise InvalidValueError(f"batch {batch_id} holds {held} image(s); only empty ones go")
    record_audit(
        session,
        action="batch.discard",
        entity_type="batch",
        entity_id=batch_id,
        user=actor,
        details={"name": batch.name, "files": batch.file_count, "reason": "no image stored"},
    )
    session.delete(batch)
    session.flush()


def get_batch(session: Session, batch_id: int) -> ImageBatch:
    """The batch with this id, or `NotFoundError`."""
    return get_or_raise(session, ImageBatch, batch_id, "image batch")


def list_batches(
    session: Session, project_id: int, *, purpose: str | None = None
) -> list[ImageBatch]:
    """Batches of a project, newest first."""
    query = select(ImageBatch).where(ImageBatch.project_id == project_id)
    if purpose is not None:
        query = query.where(ImageBatch.purpose == purpose)
    return list(session.scalars(query.order_by(ImageBatch.created_at.desc(), ImageBatch.id.desc())))


class ImageFilters(TypedDict, total=False):
    """Which of a project's images: those of one batch, batch purpose, category or known label
    ("normal", "anomalous", or "unlabelled" for none); a filter left out or None keeps all."""

    batch_id: int | None
    purpose: str | None
    category: str | None
    known_label: str | None


def _image_query(project_id: int, filters: ImageFilters) -> Select[Image]:
    unknown = filters.keys() - ImageFilters.__optional_keys__
    if unknown:
        raise TypeError(f"unknown image filters {sorted(unknown)}")
    batch_id, purpose = filters.get("batch_id"), filters.get("purpose")
    category, known_label = filters.get("category"), filters.get("known_label")
    query = select(Image).where(Image.project_id == project_id)
    if batch_id is not None:
        query = query.where(Image.batch_id == batch_id)
    if purpose is not None:
        check_choice("batch purpose", purpose, (p.value for p in BatchPurpose))
        query = query.join(ImageBatch, ImageBatch.id == Image.batch_id).where(
            ImageBatch.purpose == purpose
        )
    if category is not None:
        query = query.where(Image.category == category)
    if known_label == UNLABELLED:
        query = query.where(Image.known_label.is_(None))
    elif known_label is not None:
        check_choice("known label", known_label, [*(k.value for k in KnownLabel), UNLABELLED])
        query = query.where(Image.known_label == known_label)
    return query


def list_images(
    session: Session,
    *,
    project_id: int,
    limit: int = 100,
    offset: int = 0,
    **filters: Unpack[ImageFilters],
) -> list[Image]:
    """Images of a project in upload order, narrowed by `ImageFilters`."""
    check_page(limit, offset, max_limit=100_000)
    query = _image_query(project_id, filters)
    return list(session.scalars(query.order_by(Image.id).limit(limit).offset(offset)))


def count_images(session: Session, *, project_id: int, **filters: Unpack[ImageFilters]) -> int:
    """How many images `list_images` would return without pagination."""
    query = _image_query(project_id, filters)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def list_image_ids(
    session: Session, *, project_id: int, **filters: Unpack[ImageFilters]
) -> list[int]:
    """Ids of all matching images (cheap; for queuing train or score jobs)."""
    query = _image_query(project_id, filters)
    return list(session.scalars(query.with_only_columns(Image.id).order_by(Image.id)))


def list_categories(
    session: Session, project_id: int, *, batch_ids: Iterable[int] | None = None
) -> list[str]:
    """Distinct non-empty image categories of a project (only in `batch_ids` when given), sorted."""
    if batch_ids is None:
        return [c for c in session.scalars(_category_walk(project_id)) if c]
    query = (
        select(Image.category)
        .distinct()
        .where(
            Image.project_id == project_id,
            Image.category.is_not(None),
            Image.batch_id.in_(sorted(set(batch_ids))),
        )
        .order_by(Image.category)
    )
    return [c for c in session.scalars(query) if c]


def _category_walk(project_id: int) -> Select[str | None]:
    """A project's categories in order, one probe of its (project, category) index per category
    (a recursive query), where DISTINCT reads every image's entry of it: 1 instead of 40 ms at
    100,000 images on PostgreSQL."""

    def smallest() -> Select[str | None]:
        return select(func.min(Image.category).label("category")).where(
            Image.project_id == project_id, Image.category.is_not(None)
        )

    walk = smallest().cte("category_walk", recursive=True)
    previous = walk.alias("previous")
    following = smallest().where(Image.category > previous.c.category).scalar_subquery()
    walk = walk.union_all(select(following).where(previous.c.category.is_not(None)))
    return select(walk.c.category).where(walk.c.category.is_not(None)).order_by(walk.c.category)


def get_image(session: Session, image_id: int) -> Image:
    """The image with this id, or `NotFoundError`."""
    return get_or_raise(session, Image, image_id, "image")


def find_image_by_hash(session: Session, project_id: int, sha256: str) -> Image | None:
    """The image of a project with this content hash, or None."""
    return session.scalars(
        select(Image).where(Image.project_id == project_id, Image.sha256 == sha256.lower())
    ).one_or_none()


def image_file_path(settings: StoreSettings | Path, image: Image) -> Path:
    """Absolute path of an image's stored file (data dir + its relative storage path)."""
    data_dir = settings.data_dir if isinstance(settings, StoreSettings) else settings
    return resolve_data_path(data_dir, image.storage_path)


def set_known_label(
    session: Session,
    image_id: int,
    known_label: str | None,
    *,
    actor: User | None = None,
) -> Image:
    """Set or clear the ground-truth label that came with an image."""
    if actor is not None:
        require_role(actor, Role.REVIEWER, action="change known labels")
    if known_label is not None:
        check_choice("known label", known_label, (k.value for k in KnownLabel))
    image = get_image(session, image_id)
    if image.known_label == known_label:
        return image
    previous = image.known_label
    image.known_label = known_label
    session.flush()
    record_audit(
        session,
        action="image.set_known_label",
        entity_type="image",
        entity_id=image.id,
        user=actor,
        details={"from": previous, "to": known_label},
    )
    return image
