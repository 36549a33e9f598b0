"""Sign-in checks: credentials, the still-valid session user, and the first-sign-in hint."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dashboard.services.store import SessionFactory
from db.errors import NotFoundError
from db.repositories import authenticate, count_users, get_user
from db.session import session_scope

logger = logging.getLogger(__name__)

FIRST_ADMIN = "admin"
FIRST_PASSWORD_FILE = "first-admin-password.txt"
WRONG_CREDENTIALS = (
    "Wrong user name or password, or the account is deactivated. Check both and try again; "
    "an admin can reset your password or reactivate your account."
)


@dataclass(frozen=True)
class SignedIn:
    """Who signed in, as plain values."""

    id: int
    username: str
    role: str


def check_credentials(factory: SessionFactory, username: str, password: str) -> SignedIn | None:
    """The active user with these credentials, or None (one answer for every failure)."""
    if not username.strip() or not password:
        return None
    with session_scope(factory) as session:
        user = authenticate(session, username, password)
        if user is None:
            logger.info("sign-in refused for %r", username.strip().lower())
            return None
        logger.info("user %r signed in", user.username)
        return SignedIn(user.id, user.username, str(user.role))


def still_valid(factory: SessionFactory, user_id: int) -> SignedIn | None:
    """The session user re-read from the database (role may have changed); None when the
    account was deactivated or removed, so the browser session must sign in again."""
    with session_scope(factory) as session:
        try:
            user = get_user(session, user_id)
        except NotFoundError:
            return None
        if not user.is_active:
            return None
        return SignedIn(user.id, user.username, str(user.role))


def first_sign_in_hint(data_dir: Path) -> str:
    """How to sign in the very first time (the launcher creates the first admin, with the
    password of ADN_ADMIN_PASSWORD or a new one that it saves in a file)."""
    password_file = data_dir / FIRST_PASSWORD_FILE
    if password_file.is_file():
        return (
            f"First time here? Sign in as user **{FIRST_ADMIN}**; the password was printed when "
            f"the studio first started and is saved in `{password_file}`."
        )
    return (
        f"First time here? Sign in as user **{FIRST_ADMIN}** with the password given in "
        "ADN_ADMIN_PASSWORD when the studio first started, or ask an admin for an account."
    )


def has_users(factory: SessionFactory) -> bool:
    """Whether any account exists yet."""
    with session_scope(factory) as session:
        return count_users(session) > 0
