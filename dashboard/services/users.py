"""User administration for admins: list, create, change role, (de)activate, reset password."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from db.models import Role, User
from db.repositories import create_user, list_users, set_active, set_password, set_role

logger = logging.getLogger(__name__)

ROLES: tuple[str, ...] = (Role.ADMIN.value, Role.REVIEWER.value, Role.VIEWER.value)
ROLE_HELP = {
    Role.ADMIN.value: "everything, plus users and settings",
    Role.REVIEWER.value: "upload, train, score, review, thresholds",
    Role.VIEWER.value: "read only",
}


@dataclass(frozen=True)
class UserRow:
    """One user as plain values."""

    id: int
    username: str
    role: str
    active: bool
    created_at: datetime | None


def users_table(session: Session) -> list[UserRow]:
    """Every user, ordered by name."""
    return [
        UserRow(u.id, u.username, str(u.role), bool(u.is_active), u.created_at)
        for u in list_users(session)
    ]


def add_user(session: Session, *, username: str, password: str, role: str, actor: User) -> UserRow:
    """Create a user (admins only)."""
    user = create_user(session, username=username, password=password, role=role, actor=actor)
    logger.info("admin %r created user %r (%s)", actor.username, user.username, role)
    return UserRow(user.id, user.username, str(user.role), True, user.created_at)


def change_role(session: Session, user_id: int, role: str, *, actor: User) -> None:
    """Give a user another role (admins only; the last active admin stays admin)."""
    set_role(session, user_id, role, actor=actor)


def change_active(session: Session, user_id: int, active: bool, *, actor: User) -> None:
    """Deactivate or reactivate a user (admins only; the last active admin stays active)."""
    set_active(session, user_id, active, actor=actor)


def reset_password(session: Session, user_id: int, new_password: str, *, actor: User) -> None:
    """Set a new password for a user (admins for others; anyone for themselves)."""
    set_password(session, user_id, new_password, actor=actor)
