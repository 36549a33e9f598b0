"""Sign-in checks: credentials, the still-valid session user, and the first-sign-in hint."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dashboard.services.store import SessionFactory
from db.errors import NotFoundError
from db.models import utcnow
from db.repositories import authenticate, count_users, get_user
from db.repositories.sign_in import (
    end_sign_in,
    redeem_ticket,
    session_by_token,
    session_user,
    start_sign_in,
)
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
    """Who signed in, as plain values; ``session_id`` is the browser sign-in that holds it."""

    id: int
    username: str
    role: str
    session_id: int | None = None


@dataclass(frozen=True)
class CookieGrant:
    """A session token for the browser's cookie, valid for ``max_age_s`` seconds."""

    token: str
    max_age_s: int


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


def still_valid(factory: SessionFactory, user_id: int, session_id: int | None) -> SignedIn | None:
    """The session user re-read from the database (the role may have changed); None when the
    sign-in ended (signed out, expired, new password) or the account was deactivated or removed.
    Without a ``session_id`` (no browser sign-in behind it) only the account is checked."""
    with session_scope(factory) as session:
        if session_id is not None:
            user = session_user(session, session_id)
        else:
            try:
                user = get_user(session, user_id)
            except NotFoundError:
                return None
        if user is None or user.id != user_id or not user.is_active:
            return None
        return SignedIn(user.id, user.username, str(user.role), session_id)


def begin_browser_session(
    factory: SessionFactory, user: SignedIn, hours: int
) -> tuple[SignedIn, str]:
    """Start a sign-in of ``user`` lasting ``hours``: the user with its session id, and the
    one-time ticket the browser trades for its session cookie."""
    with session_scope(factory) as session:
        started = start_sign_in(session, user.id, timedelta(hours=hours))
    return SignedIn(user.id, user.username, user.role, started.session_id), started.ticket


def grant_cookie(factory: SessionFactory, ticket: str) -> CookieGrant | None:
    """The cookie token for a fresh one-time ticket, or None (unknown, used or expired)."""
    with session_scope(factory) as session:
        redeemed = redeem_ticket(session, ticket)
        if redeemed is None:
            return None
        token, row = redeemed
        max_age = max(1, int((row.expires_at - utcnow()).total_seconds()))
    return CookieGrant(token, max_age)


def resume(factory: SessionFactory, token: str) -> SignedIn | None:
    """The user of the browser whose cookie holds ``token``, or None when that sign-in ended."""
    if not token:
        return None
    with session_scope(factory) as session:
        found = session_by_token(session, token)
        if found is None:
            return None
        row, user = found
        return SignedIn(user.id, user.username, str(user.role), row.id)


def end_browser_session(
    factory: SessionFactory, *, session_id: int | None = None, token: str | None = None
) -> None:
    """End a sign-in server-side: its cookie stops working in every tab at once."""
    if session_id is None and not token:
        return
    with session_scope(factory) as session:
        end_sign_in(session, session_id=session_id, token=token or None)
    logger.info("sign-in %s ended", session_id if session_id is not None else "of a cookie")


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
