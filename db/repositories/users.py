"""Users: create, authenticate, list, change role or state, first admin."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import ConflictError, InvalidValueError, PermissionDeniedError
from db.models import Role, User
from db.passwords import hash_password, needs_rehash, verify_password
from db.repositories._common import get_or_raise
from db.repositories.audit import record_audit
from db.repositories.sign_in import end_sign_ins_of
from db.roles import check_role_name, require_role

logger = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


def normalize_username(username: str) -> str:
    """Lower-case and strip a user name, and check its characters."""
    cleaned = username.strip().lower()
    if not _USERNAME.match(cleaned):
        raise InvalidValueError(
            f"user name {username!r} is not valid; use 1-64 letters, digits, '.', '_', '-' "
            "or '@', starting with a letter or digit."
        )
    return cleaned


@cache
def _dummy_hash() -> str:
    return hash_password("not a real password")


def get_user(session: Session, user_id: int) -> User:
    """The user with this id, or `NotFoundError`."""
    return get_or_raise(session, User, user_id, "user")


def get_user_by_name(session: Session, username: str) -> User | None:
    """The user with this name (case-insensitive), or None."""
    return session.scalars(
        select(User).where(User.username == username.strip().lower())
    ).one_or_none()


def usernames(session: Session, user_ids: Iterable[int]) -> dict[int, str]:
    """The user name of each existing user among `user_ids`."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {int(i): str(name) for i, name in rows}


def count_users(session: Session) -> int:
    """How many users exist (active or not)."""
    return int(session.scalar(select(func.count(User.id))) or 0)


def list_users(session: Session, *, include_inactive: bool = True) -> list[User]:
    """All users ordered by name."""
    query = select(User).order_by(User.username)
    if not include_inactive:
        query = query.where(User.is_active.is_(True))
    return list(session.scalars(query))


def _audit_user(
    session: Session,
    action: str,
    user: User,
    actor: User | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record one change to a user account in the audit log."""
    record_audit(
        session, action=action, entity_type="user", entity_id=user.id, user=actor, details=details
    )


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str = Role.VIEWER,
    actor: User | None = None,
) -> User:
    """Create an active user with an argon2 password hash; admins only when `actor` is given."""
    if actor is not None:
        require_role(actor, Role.ADMIN, action="create users")
    name = normalize_username(username)
    check_role_name(role)
    if get_user_by_name(session, name) is not None:
        raise ConflictError(f"user name {name!r} is taken; choose another one.")
    user = User(
        username=name, password_hash=hash_password(password), role=str(role), is_active=True
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise ConflictError(f"user name {name!r} is taken; choose another one.") from None
    _audit_user(session, "user.create", user, actor, {"username": name, "role": str(role)})
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user whose password matches, else None (same answer for every failure).

    Upgrades the stored hash when the hashing parameters have become stronger.
    """
    try:
        name = normalize_username(username)
    except InvalidValueError:
        return None
    user = get_user_by_name(session, name)
    if user is None or not user.is_active:
        # Spend the same time as a real check so response times do not reveal user names.
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(user.password_hash, password):
        logger.info("failed login for %r", name)
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    return user


def _active_admin_count(session: Session) -> int:
    query = select(func.count(User.id)).where(User.role == Role.ADMIN, User.is_active.is_(True))
    return int(session.scalar(query) or 0)


def _guard_last_admin(session: Session, user: User) -> None:
    if user.role == Role.ADMIN and user.is_active and _active_admin_count(session) <= 1:
        raise ConflictError(
            f"{user.username!r} is the last active admin; make another user admin first."
        )


def set_role(session: Session, user_id: int, role: str, *, actor: User | None = None) -> User:
    """Change a user's role (admins only when `actor` is given); keeps one active admin."""
    if actor is not None:
        require_role(actor, Role.ADMIN, action="change roles")
    check_role_name(role)
    user = get_user(session, user_id)
    if user.role == role:
        return user
    if role != Role.ADMIN:
        _guard_last_admin(session, user)
    previous = user.role
    user.role = str(role)
    session.flush()
    _audit_user(session, "user.set_role", user, actor, {"from": previous, "to": str(role)})
    return user


def set_active(session: Session, user_id: int, active: bool, *, actor: User | None = None) -> User:
    """Activate or deactivate a user (admins only when `actor` is given)."""
    if actor is not None:
        require_role(actor, Role.ADMIN, action="activate or deactivate users")
    user = get_user(session, user_id)
    if user.is_active == active:
        return user
    if not active:
        _guard_last_admin(session, user)
    user.is_active = active
    if not active:
        end_sign_ins_of(session, user.id)
    session.flush()
    _audit_user(session, "user.activate" if active else "user.deactivate", user, actor)
    return user


def set_password(
    session: Session, user_id: int, new_password: str, *, actor: User | None = None
) -> User:
    """Set a new password; an acting user may change their own, admins anyone's."""
    user = get_user(session, user_id)
    if actor is not None and actor.id != user.id:
        require_role(actor, Role.ADMIN, action="change another user's password")
    elif actor is not None and not actor.is_active:
        raise PermissionDeniedError(
            f"user {actor.username!r} is deactivated; ask an admin to reactivate the account."
        )
    user.password_hash = hash_password(new_password)
    end_sign_ins_of(session, user.id)
    session.flush()
    _audit_user(session, "user.set_password", user, actor)
    return user


def ensure_first_admin(session: Session, username: str, password: str) -> User | None:
    """Create an admin when no user exists yet; return it, or None when users already exist."""
    if count_users(session) > 0:
        return None
    try:
        with session.begin_nested():
            user = create_user(session, username=username, password=password, role=Role.ADMIN)
    except ConflictError:
        # Another process created the first user at the same moment.
        logger.info("first admin already created by another process")
        return None
    logger.info("created first admin %r", user.username)
    return user
