"""Browser sign-ins: one-time tickets, cookie tokens, expiry, and server-side ends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import SignInSession, utcnow
from db.repositories import set_active, set_password
from db.repositories.sign_in import (
    digest,
    end_sign_in,
    redeem_ticket,
    session_by_token,
    session_user,
    start_sign_in,
)
from tests.db.factories import make_user

HOURS = timedelta(hours=12)


def _traded(session: Session, user_id: int) -> tuple[int, str]:
    started = start_sign_in(session, user_id, HOURS)
    redeemed = redeem_ticket(session, started.ticket)
    assert redeemed is not None
    return started.session_id, redeemed[0]


def test_ticket_trades_once_for_a_token_of_its_user(session: Session) -> None:
    user = make_user(session)
    started = start_sign_in(session, user.id, HOURS)
    redeemed = redeem_ticket(session, started.ticket)
    assert redeemed is not None
    token, row = redeemed
    assert row.id == started.session_id and token != started.ticket
    assert redeem_ticket(session, started.ticket) is None  # used up
    found = session_by_token(session, token)
    assert found is not None and found[1].id == user.id and found[0].id == started.session_id
    assert session_user(session, started.session_id) == user


def test_only_digests_are_stored(session: Session) -> None:
    user = make_user(session)
    started = start_sign_in(session, user.id, HOURS)
    row = session.get(SignInSession, started.session_id)
    assert row is not None and row.ticket_hash == digest(started.ticket)
    token, _ = redeem_ticket(session, started.ticket) or ("", None)
    assert row.token_hash == digest(token) and row.ticket_hash is None
    stored = session.execute(select(SignInSession.ticket_hash, SignInSession.token_hash)).all()
    assert all(started.ticket not in str(r) and token not in str(r) for r in stored)


def test_stale_ticket_and_unknown_secrets_are_refused(session: Session) -> None:
    user = make_user(session)
    started = start_sign_in(session, user.id, HOURS)
    row = session.get(SignInSession, started.session_id)
    assert row is not None
    row.ticket_expires_at = utcnow() - timedelta(seconds=1)
    assert redeem_ticket(session, started.ticket) is None
    assert row.ticket_hash is None  # a stale ticket is burnt, not kept
    assert redeem_ticket(session, "made-up") is None
    assert session_by_token(session, "made-up") is None


def test_expired_sign_in_no_longer_holds_its_user(session: Session) -> None:
    user = make_user(session)
    session_id, token = _traded(session, user.id)
    row = session.get(SignInSession, session_id)
    assert row is not None
    row.expires_at = utcnow() - timedelta(seconds=1)
    assert session_by_token(session, token) is None
    assert session_user(session, session_id) is None


def test_sign_out_ends_the_sign_in_by_id_or_by_token(session: Session) -> None:
    user = make_user(session)
    first, first_token = _traded(session, user.id)
    second, second_token = _traded(session, user.id)
    end_sign_in(session, session_id=first)
    assert session_by_token(session, first_token) is None
    assert session_user(session, second) == user  # the other browser stays signed in
    end_sign_in(session, token=second_token)
    assert session_user(session, second) is None


def test_deactivation_and_new_password_end_every_sign_in(session: Session) -> None:
    user = make_user(session)
    other = make_user(session)
    session_id, token = _traded(session, user.id)
    other_id, _ = _traded(session, other.id)
    set_password(session, user.id, "a brand new password")
    assert session_by_token(session, token) is None
    assert session_user(session, other_id) == other
    set_active(session, other.id, False)
    set_active(session, other.id, True)  # reactivated, but that sign-in stays ended
    assert session_user(session, other_id) is None
    assert session_user(session, session_id) is None
