"""Thresholds: save a new active version atomically, list versions, restore, get active.

Scope: a threshold belongs to a model version and either one image category or, with
category None, all categories. A category's own active threshold wins over the all-categories
one. The database allows one active threshold per scope (partial unique index).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import ConflictError, InvalidValueError
from db.models import ModelVersion, Role, Threshold, ThresholdMethod, User
from db.repositories._common import check_choice, clean_optional, get_or_raise
from db.repositories.audit import record_audit
from db.repositories.model_versions import get_model_version
from db.roles import require_role


def _scope(model_version_id: int, category: str | None) -> ColumnElement[bool]:
    return (Threshold.model_version_id == model_version_id) & (
        func.coalesce(Threshold.category, "") == (category or "")
    )


def _lock_model_version(session: Session, model_version_id: int) -> None:
    """Serialise threshold changes of one model version (row lock on PostgreSQL).

    FOR NO KEY UPDATE: it does not wait for transactions that merely reference the model
    version (score or verdict inserts), only for other threshold changes.
    """
    get_model_version(session, model_version_id)
    session.execute(
        select(ModelVersion.id)
        .where(ModelVersion.id == model_version_id)
        .with_for_update(key_share=True)
    )


def _deactivate_scope(session: Session, model_version_id: int, category: str | None) -> None:
    session.execute(
        update(Threshold)
        .where(_scope(model_version_id, category), Threshold.is_active.is_(True))
        .values(is_active=False)
        .execution_options(synchronize_session="fetch")
    )


def _check_value(name: str, value: float) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidValueError(f"threshold {name} must be a finite number, got {value!r}")
    return float(value)


def _conflict() -> ConflictError:
    return ConflictError(
        "another threshold for this model and category was saved at the same moment; reload "
        "the threshold page and save again."
    )


def _audit_threshold(
    session: Session, action: str, threshold: Threshold, actor: User | None, **details: Any
) -> None:
    """Record a change of a threshold, with its scope and version, in the audit log."""
    record_audit(
        session,
        action=action,
        entity_type="threshold",
        entity_id=threshold.id,
        user=actor,
        details={
            "model_version_id": threshold.model_version_id,
            "category": threshold.category,
            "version": threshold.version,
            **details,
        },
    )


def save_threshold(
    session: Session,
    *,
    model_version_id: int,
    value: float,
    method: str,
    category: str | None = None,
    upper_value: float | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    actor: User | None = None,
) -> Threshold:
    """Save a new threshold version and make it the active one of its scope, atomically.

    `value` is T1 (scores >= T1 are anomalous); `upper_value` (T2 >= T1) turns the pair into a
    review band. Reviewers and admins only when `actor` is given.
    """
    if actor is not None:
        require_role(actor, Role.REVIEWER, action="save thresholds")
    lower = _check_value("value", value)
    upper = None if upper_value is None else _check_value("upper value", upper_value)
    if upper is not None and upper < lower:
        raise InvalidValueError(
            f"the upper threshold {upper} is below the lower one {lower}; swap them or raise T2."
        )
    method = check_choice("threshold method", method, (m.value for m in ThresholdMethod))
    scope_category = clean_optional(category, max_length=128, what="category")
    _lock_model_version(session, model_version_id)
    latest = session.scalar(
        select(func.max(Threshold.version)).where(_scope(model_version_id, scope_category))
    )
    try:
        with session.begin_nested():
            _deactivate_scope(session, model_version_id, scope_category)
            threshold = Threshold(
                model_version_id=model_version_id,
                category=scope_category,
                version=(latest or 0) + 1,
                value=lower,
                upper_value=upper,
                method=method,
                params_json=dict(params or {}),
                metrics_json=dict(metrics or {}),
                created_by=actor.id if actor is not None else None,
                is_active=True,
            )
            session.add(threshold)
    except IntegrityError:
        raise _conflict() from None
    _audit_threshold(
        session, "threshold.save", threshold, actor, value=lower, upper_value=upper, method=method
    )
    return threshold


def restore_threshold(
    session: Session, threshold_id: int, *, actor: User | None = None
) -> Threshold:
    """Make an older threshold version the active one of its scope again."""
    if actor is not None:
        require_role(actor, Role.REVIEWER, action="restore thresholds")
    threshold = get_threshold(session, threshold_id)
    if threshold.is_active:
        return threshold
    _lock_model_version(session, threshold.model_version_id)
    try:
        with session.begin_nested():
            _deactivate_scope(session, threshold.model_version_id, threshold.category)
            threshold.is_active = True
    except IntegrityError:
        raise _conflict() from None
    _audit_threshold(session, "threshold.restore", threshold, actor)
    return threshold


def get_threshold(session: Session, threshold_id: int) -> Threshold:
    """The threshold version with this id, or `NotFoundError`."""
    return get_or_raise(session, Threshold, threshold_id, "threshold")


def get_active_threshold(
    session: Session, model_version_id: int, category: str | None = None
) -> Threshold | None:
    """The active threshold of exactly this scope (None category = all categories)."""
    return session.scalars(
        select(Threshold).where(
            _scope(model_version_id, category or None), Threshold.is_active.is_(True)
        )
    ).one_or_none()


def effective_threshold(
    session: Session, model_version_id: int, category: str | None
) -> Threshold | None:
    """The threshold that decides images of `category`: its own, else the all-categories one."""
    if category:
        own = get_active_threshold(session, model_version_id, category)
        if own is not None:
            return own
    return get_active_threshold(session, model_version_id, None)


def list_threshold_versions(
    session: Session,
    model_version_id: int,
    category: str | None = None,
    *,
    all_scopes: bool = False,
) -> list[Threshold]:
    """Versions of one scope (or of every scope with `all_scopes`), newest first."""
    query = select(Threshold)
    if all_scopes:
        query = query.where(Threshold.model_version_id == model_version_id)
    else:
        query = query.where(_scope(model_version_id, category or None))
    order = (Threshold.category, Threshold.version.desc(), Threshold.id.desc())
    return list(session.scalars(query.order_by(*order)))
