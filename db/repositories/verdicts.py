"""Reviewer verdicts: append-only; an image's current verdict is its latest by (created_at, id)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased
from sqlalchemy.orm.util import AliasedClass

from db.models import Role, Score, User, Verdict, VerdictLabel
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


def _newest_first(verdict: type[Verdict] | AliasedClass[Verdict]) -> tuple[Any, Any]:
    return verdict.created_at.desc(), verdict.id.desc()


def latest_verdict_id(
    image_id: int | ColumnElement[int] | InstrumentedAttribute[int],
) -> ScalarSelect[int]:
    """The current-verdict rule, as a scalar subquery: the id of the latest verdict (by
    created_at, then id) of the image ``image_id`` names, correlated to the enclosing query."""
    newer = aliased(Verdict)
    return (
        select(newer.id)
        .where(newer.image_id == image_id)
        .order_by(*_newest_first(newer))
        .limit(1)
        .correlate_except(newer)
        .scalar_subquery()
    )


def current_verdict(session: Session, image_id: int) -> Verdict | None:
    """The latest verdict of an image, or None when nobody has reviewed it."""
    return session.scalars(select(Verdict).where(Verdict.id == latest_verdict_id(image_id))).first()


def current_verdicts(session: Session, image_ids: Iterable[int]) -> dict[int, Verdict]:
    """The latest verdict of each reviewed image among `image_ids`."""
    ids = sorted(set(image_ids))
    if not ids:
        return {}
    query = select(Verdict).where(
        Verdict.image_id.in_(ids), Verdict.id == latest_verdict_id(Verdict.image_id)
    )
    return {v.image_id: v for v in session.scalars(query)}


def current_labels(session: Session, *, model_version_id: int) -> dict[int, str]:
    """The current verdict label of every reviewed image that ``model_version_id`` scored."""
    query = (
        select(Verdict.image_id, Verdict.label)
        .join(Score, Score.image_id == Verdict.image_id)
        .where(
            Score.model_version_id == model_version_id,
            Verdict.id == latest_verdict_id(Verdict.image_id),
        )
    )
    return {int(image_id): str(label) for image_id, label in session.execute(query)}


def current_labels_between(
    session: Session, first_image_id: int, last_image_id: int
) -> dict[int, str]:
    """The current verdict label of every reviewed image whose id lies in first..last.

    Reads the verdicts alone (their image index), never the images or scores: callers that hold
    the ids they need (a batch's, the images every compared model scored) look them up in it.
    """
    query = select(Verdict.image_id, Verdict.label).where(
        Verdict.image_id.between(first_image_id, last_image_id),
        Verdict.id == latest_verdict_id(Verdict.image_id),
    )
    return {int(image_id): str(label) for image_id, label in session.execute(query)}


def verdict_history(session: Session, image_id: int) -> list[Verdict]:
    """Every verdict of an image, newest (= current) first."""
    return list(
        session.scalars(
            select(Verdict).where(Verdict.image_id == image_id).order_by(*_newest_first(Verdict))
        )
    )
