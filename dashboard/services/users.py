"""User administration for admins: list, create, change role, (de)activate, reset password."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from dashboard.services.store import SessionFactory
from db.models import Role
from db.repositories import create_user, get_user, list_users, set_active, set_password, set_role
from db.session import session_scope

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


def users_table(factory: SessionFactory) -> list[UserRow]:
    """Every user, ordered by name."""
    with session_scope(factory) as session:
        return [
            UserRow(u.id, u.username, str(u.role), bool(u.is_active), u.created_at)
            for u in list_users(session)
        ]


def add_user(
    factory: SessionFactory, *, username: str, password: str, role: str, actor_id: int
) -> UserRow:
    """Create a user (admins only)."""
    with session_scope(factory) as session:
        actor = get_user(session, actor_id)
        user = create_user(session, username=username, password=password, role=role, actor=actor)
        logger.info("admin %r created user %r (%s)", actor.username, user.username, role)
        return UserRow(user.id, user.username, str(user.role), True, user.created_at)


def change_role(factory: SessionFactory, user_id: int, role: str, *, actor_id: int) -> None:
    """Give a user another role (admins only; the last active admin stays admin)."""
    with session_scope(factory) as session:
        set_role(session, user_id, role, actor=get_user(session, actor_id))


def change_active(factory: SessionFactory, user_id: int, active: bool, *, actor_id: int) -> None:
    """Deactivate or reactivate a user (admins only; the last active admin stays active)."""
    with session_scope(factory) as session:
        set_active(session, user_id, active, actor=get_user(session, actor_id))


def reset_password(
    factory: SessionFactory, user_id: int, new_password: str, *, actor_id: int
) -> None:
    """Set a new password for a user (admins for others; anyone for themselves)."""
    with session_scope(factory) as session:
        set_password(session, user_id, new_password, actor=get_user(session, actor_id))
