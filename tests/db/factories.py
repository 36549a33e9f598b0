"""Small builders of rows for the store tests (no files: images are inserted directly)."""

from __future__ import annotations

import hashlib
import io
import itertools

from PIL import Image as PILImage
from sqlalchemy.orm import Session

from db.models import Image, ImageBatch, ModelVersion, Project, Role, User
from db.repositories import create_batch, create_model_version, create_project, create_user

_counter = itertools.count(1)


def make_user(session: Session, role: str = Role.REVIEWER, name: str | None = None) -> User:
    username = name or f"{role}{next(_counter)}"
    return create_user(session, username=username, password="correct horse", role=role)


def make_project(session: Session, name: str | None = None) -> Project:
    return create_project(session, name=name or f"project {next(_counter)}")


def make_batch(session: Session, project: Project, purpose: str = "inspect") -> ImageBatch:
    return create_batch(
        session, project_id=project.id, name=f"batch {next(_counter)}", purpose=purpose
    )


def make_image(
    session: Session,
    batch: ImageBatch,
    *,
    category: str | None = None,
    known_label: str | None = None,
) -> Image:
    n = next(_counter)
    digest = hashlib.sha256(f"image {n}".encode()).hexdigest()
    image = Image(
        project_id=batch.project_id,
        batch_id=batch.id,
        sha256=digest,
        storage_path=f"images/{digest[:2]}/{digest}.png",
        original_name=f"img_{n}.png",
        format="PNG",
        width=8,
        height=8,
        mode="RGB",
        size_bytes=100,
        category=category,
        known_label=known_label,
    )
    session.add(image)
    session.flush()
    return image


def make_model(session: Session, project: Project, variant: str = "cbam") -> ModelVersion:
    return create_model_version(
        session,
        project_id=project.id,
        name=f"model {next(_counter)}",
        variant=variant,
        backbone="efficientnet_b5",
    )


def png_bytes(
    width: int = 48, height: int = 36, color: tuple[int, int, int] = (255, 0, 0)
) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()
