"""Role checks that state-changing repository functions run for an acting user."""

from __future__ import annotations

import logging

from db.errors import InvalidValueError, PermissionDeniedError
from db.models import ROLE_RANK, Role, User

logger = logging.getLogger(__name__)


def check_role_name(role: str) -> str:
    """Return `role` if it is a known role, else raise `InvalidValueError`."""
    if role not in ROLE_RANK:
        raise InvalidValueError(
            f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}."
        )
    return str(role)


def has_role(user: User, role: str) -> bool:
    """True when `user` is active and holds `role` or a higher one."""
    check_role_name(role)
    return bool(user.is_active) and ROLE_RANK.get(user.role, -1) >= ROLE_RANK[role]


def require_role(user: User, role: str, *, action: str | None = None) -> None:
    """Raise `PermissionDeniedError` unless `user` is active and holds at least `role`."""
    check_role_name(role)
    doing = action or "do this"
    if not user.is_active:
        logger.warning("inactive user %r tried to %s", user.username, doing)
        raise PermissionDeniedError(
            f"user {user.username!r} is deactivated and cannot {doing}; ask an admin to "
            "reactivate the account."
        )
    if ROLE_RANK.get(user.role, -1) < ROLE_RANK[role]:
        allowed = [r.value for r in Role if ROLE_RANK[r] >= ROLE_RANK[role]]
        logger.warning("user %r (role %s) tried to %s", user.username, user.role, doing)
        raise PermissionDeniedError(
            f"user {user.username!r} has role {user.role!r}; to {doing} you need role "
            f"{' or '.join(allowed)}; ask an admin to change your role."
        )
