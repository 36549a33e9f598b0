"""Browser sign-ins: start with a one-time ticket, trade it for a cookie token, end server-side."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import SignInSession, User, utcnow

# The page hands the ticket to the browser at once; a ticket not traded by then is worthless.
TICKET_LIFETIME = timedelta(minutes=2)


@dataclass(frozen=True)
class StartedSignIn:
    """A new sign-in: its row and the one-time ticket the browser trades for its cookie."""

    session_id: int
    ticket: str


def digest(secret: str) -> str:
    """SHA-256 hex digest of a ticket or token (what the table stores)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def start_sign_in(session: Session, user_id: int, lifetime: timedelta) -> StartedSignIn:
    """A sign-in of ``user_id`` that lasts ``lifetime`` from now."""
    now = utcnow()
    ticket = secrets.token_urlsafe(32)
    row = SignInSession(
        user_id=user_id,
        ticket_hash=digest(ticket),
        ticket_expires_at=now + TICKET_LIFETIME,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return StartedSignIn(row.id, ticket)


def _live(row: SignInSession | None, now: datetime) -> bool:
    return row is not None and row.ended_at is None and row.expires_at > now


def redeem_ticket(session: Session, ticket: str) -> tuple[str, SignInSession] | None:
    """The cookie token for a fresh, unused ticket (the ticket then stops working), or None."""
    now = utcnow()
    row = session.scalar(select(SignInSession).where(SignInSession.ticket_hash == digest(ticket)))
    if row is None or not _live(row, now):
        return None
    expired = row.ticket_expires_at is None or row.ticket_expires_at <= now
    row.ticket_hash = None
    row.ticket_expires_at = None
    if expired:
        session.flush()
        return None
    token = secrets.token_urlsafe(32)
    row.token_hash = digest(token)
    session.flush()
    return token, row


def _active_user(session: Session, row: SignInSession | None) -> User | None:
    if row is None or not _live(row, utcnow()):
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.is_active else None


def session_by_token(session: Session, token: str) -> tuple[SignInSession, User] | None:
    """The live sign-in that holds this cookie token and its active user, or None."""
    row = session.scalar(select(SignInSession).where(SignInSession.token_hash == digest(token)))
    user = _active_user(session, row)
    return None if user is None or row is None else (row, user)


def session_user(session: Session, session_id: int) -> User | None:
    """The active user of the live sign-in ``session_id``, or None once it ended or expired."""
    return _active_user(session, session.get(SignInSession, session_id))


def end_sign_in(
    session: Session, *, session_id: int | None = None, token: str | None = None
) -> None:
    """End the sign-in with this id or cookie token (a no-op when it already ended)."""
    clauses = []
    if session_id is not None:
        clauses.append(SignInSession.id == session_id)
    if token is not None:
        clauses.append(SignInSession.token_hash == digest(token))
    for clause in clauses:
        session.execute(
            update(SignInSession)
            .where(clause, SignInSession.ended_at.is_(None))
            .values(ended_at=utcnow(), ticket_hash=None, ticket_expires_at=None)
        )
    session.flush()


def end_sign_ins_of(session: Session, user_id: int) -> None:
    """End every live sign-in of ``user_id`` (deactivation, new password)."""
    session.execute(
        update(SignInSession)
        .where(SignInSession.user_id == user_id, SignInSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ticket_hash=None, ticket_expires_at=None)
    )
    session.flush()
