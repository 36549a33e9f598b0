"""Audit log: record and read who changed what."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditEntry, User
from db.repositories._common import check_page

logger = logging.getLogger(__name__)


def record_audit(
    session: Session,
    *,
    action: str,
    entity_type: str,
    entity_id: int | None = None,
    user: User | int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit row (`user` None means the system did it); flushed, not committed."""
    user_id = user.id if isinstance(user, User) else user
    entry = AuditEntry(
        user_id=user_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        details_json=dict(details or {}),
    )
    session.add(entry)
    session.flush()
    logger.info("audit %s %s:%s by user %s", action, entity_type, entity_id, user_id)
    return entry


def list_audit(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: int | None = None,
    user_id: int | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    """Audit rows, newest first, optionally filtered."""
    check_page(limit, offset)
    query = select(AuditEntry)
    if entity_type is not None:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if user_id is not None:
        query = query.where(AuditEntry.user_id == user_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    query = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))
