"""Reviewer verdicts: append-only; an image's current verdict is its latest by (created_at, id)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from db.models import Role, User, Verdict, VerdictLabel
from db.repositories._common import check_choice, clean_optional
from db.repositories.audit import record_audit
from db.repositories.images import get_image
from db.roles import require_role


def add_verdict(
    session: Session,
    *,
    image_id: int,
    label: str,
    user: User,
    note: str | None = None,
    model_version_id: int | None = None,
) -> Verdict:
    """Append a verdict ("anomalous", "normal" or "unsure"); reviewers and admins only."""
    require_role(user, Role.REVIEWER, action="save verdicts")
    check_choice("verdict", label, (v.value for v in VerdictLabel))
    get_image(session, image_id)
    verdict = Verdict(
        image_id=image_id,
        label=str(label),
        user_id=user.id,
        note=clean_optional(note, max_length=10_000, what="note"),
        model_version_id=model_version_id,
    )
    session.add(verdict)
    session.flush()
    record_audit(
        session,
        action="verdict.add",
        entity_type="image",
        entity_id=image_id,
        user=user,
        details={"verdict_id": verdict.id, "label": verdict.label},
    )
    return verdict


def latest_verdict_id(image_id: ColumnElement[int] | InstrumentedAttribute[int]) -> Select[int]:
    """Subquery: id of the latest verdict of the image `image_id` refers to."""
    newer = aliased(Verdict)
    return (
        select(newer.id)
        .where(newer.image_id == image_id)
        .order_by(newer.created_at.desc(), newer.id.desc())
        .limit(1)
    )


def current_verdict(session: Session, image_id: int) -> Verdict | None:
    """The latest verdict of an image, or None when nobody has reviewed it."""
    return session.scalars(
        select(Verdict)
        .where(Verdict.image_id == image_id)
        .order_by(Verdict.created_at.desc(), Verdict.id.desc())
        .limit(1)
    ).first()


def current_verdicts(session: Session, image_ids: Iterable[int]) -> dict[int, Verdict]:
    """The latest verdict of each reviewed image among `image_ids`."""
    ids = sorted(set(image_ids))
    if not ids:
        return {}
    outer = aliased(Verdict)
    query = select(outer).where(
        outer.image_id.in_(ids),
        outer.id == latest_verdict_id(outer.image_id).scalar_subquery(),
    )
    return {v.image_id: v for v in session.scalars(query)}


def verdict_history(session: Session, image_id: int) -> list[Verdict]:
    """Every verdict of an image, newest (= current) first."""
    return list(
        session.scalars(
            select(Verdict)
            .where(Verdict.image_id == image_id)
            .order_by(Verdict.created_at.desc(), Verdict.id.desc())
        )
    )
