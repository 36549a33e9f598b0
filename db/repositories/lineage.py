"""Retraining from reviewed normals: the images reviewers confirmed normal, and child versions.

An image counts as confirmed normal when its *current* verdict (the latest by created_at, then
id) is "normal": an image later marked anomalous or unsure is not, whatever came before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import InvalidValueError
from db.models import (
    Image,
    KnownLabel,
    ModelStatus,
    ModelVersion,
    Role,
    TrainingSource,
    User,
    Verdict,
    VerdictLabel,
)
from db.repositories.audit import record_audit
from db.repositories.model_versions import create_model_version, get_model_version
from db.repositories.training_images import TrainingEntry, record_training_images
from db.repositories.verdicts import latest_verdict_id
from db.roles import require_role


@dataclass(frozen=True)
class ConfirmedNormal:
    """An image whose current verdict is normal, and that verdict."""

    image_id: int
    verdict_id: int
    batch_id: int


def confirmed_normals(
    session: Session,
    *,
    project_id: int,
    category: str | None = None,
    batch_ids: Iterable[int] | None = None,
) -> list[ConfirmedNormal]:
    """The project's images whose current verdict is normal (of ``category`` and in
    ``batch_ids`` when given), newest image first (upload time, then id). Images known to be
    anomalous are left out, as training always leaves them out."""
    query = (
        select(Image.id, Verdict.id, Image.batch_id)
        .join(Verdict, Verdict.image_id == Image.id)
        .where(
            Image.project_id == project_id,
            Verdict.id == latest_verdict_id(Verdict.image_id),
            Verdict.label == VerdictLabel.NORMAL.value,
            (Image.known_label.is_(None)) | (Image.known_label != KnownLabel.ANOMALOUS.value),
        )
        .order_by(Image.created_at.desc(), Image.id.desc())
    )
    if category is not None:
        query = query.where(Image.category == category)
    if batch_ids is not None:
        query = query.where(Image.batch_id.in_(sorted(set(batch_ids))))
    return [ConfirmedNormal(int(i), int(v), int(b)) for i, v, b in session.execute(query)]


def create_child_version(
    session: Session,
    *,
    parent_id: int,
    name: str,
    entries: Sequence[TrainingEntry],
    actor: User,
) -> ModelVersion:
    """A pending model version retrained from a ready ``parent_id`` (its variant, backbone and
    category), with its training images recorded; reviewers and admins only."""
    require_role(actor, Role.REVIEWER, action="retrain models")
    parent = get_model_version(session, parent_id)
    if parent.status != ModelStatus.READY.value:
        raise InvalidValueError(
            f"model {parent.name!r} is {parent.status}, not ready; retrain from a ready model"
        )
    added = sum(1 for e in entries if e.source == TrainingSource.CONFIRMED_NORMAL.value)
    if added == 0:
        raise InvalidValueError(
            "no confirmed normal image to add; mark images normal on the Review page first"
        )
    child = create_model_version(
        session,
        project_id=parent.project_id,
        name=name,
        variant=parent.variant,
        backbone=parent.backbone,
        category=parent.category,
        training_image_count=len(entries),
        parent_id=parent.id,
        actor=actor,
    )
    record_training_images(session, child.id, entries)
    record_audit(
        session,
        action="model_version.retrain",
        entity_type="model_version",
        entity_id=child.id,
        user=actor,
        details={
            "parent_id": parent.id,
            "parent_images": len(entries) - added,
            "confirmed_normals": added,
        },
    )
    return child
