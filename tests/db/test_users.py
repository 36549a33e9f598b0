from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.errors import ConflictError, InvalidValueError, PermissionDeniedError
from db.models import Role, User
from db.repositories import (
    authenticate,
    count_users,
    create_user,
    ensure_first_admin,
    list_audit,
    list_users,
    set_active,
    set_password,
    set_role,
)
from tests.db.factories import make_user


def test_create_and_authenticate(session: Session, session_factory: sessionmaker[Session]) -> None:
    user = create_user(session, username="  Alice ", password="long enough pw", role="reviewer")
    assert user.username == "alice"
    assert user.password_hash.startswith("$argon2id$")
    assert "long enough pw" not in user.password_hash
    stored = user.created_at
    session.commit()
    # Read the row back through the column type in a new session, not the in-memory value.
    with session_factory() as fresh:
        loaded = fresh.get(User, user.id)
        assert loaded is not None
        assert loaded is not user
        assert loaded.created_at.tzinfo is not None
        assert loaded.created_at.utcoffset() == timedelta(0)
        assert loaded.created_at == stored
    assert authenticate(session, "ALICE", "long enough pw") == user
    assert authenticate(session, "alice", "wrong password") is None
    assert authenticate(session, "nobody", "long enough pw") is None
    assert authenticate(session, "bad name!", "long enough pw") is None


def test_validation_and_duplicates(session: Session) -> None:
    create_user(session, username="bob", password="12345678")
    with pytest.raises(ConflictError, match="taken"):
        create_user(session, username="BOB", password="12345678")
    with pytest.raises(InvalidValueError, match="at least 8"):
        create_user(session, username="carol", password="short")
    with pytest.raises(InvalidValueError, match="not valid"):
        create_user(session, username="has space", password="12345678")
    with pytest.raises(InvalidValueError, match="unknown role"):
        create_user(session, username="dave", password="12345678", role="owner")


def test_inactive_users_cannot_log_in(session: Session) -> None:
    admin = make_user(session, Role.ADMIN)
    user = create_user(session, username="erin", password="12345678")
    set_active(session, user.id, False, actor=admin)
    assert authenticate(session, "erin", "12345678") is None
    set_active(session, user.id, True, actor=admin)
    assert authenticate(session, "erin", "12345678") == user


def test_only_admins_manage_users(session: Session) -> None:
    admin = make_user(session, Role.ADMIN)
    reviewer = make_user(session, Role.REVIEWER)
    viewer = make_user(session, Role.VIEWER)
    with pytest.raises(PermissionDeniedError, match="admin"):
        create_user(session, username="frank", password="12345678", actor=reviewer)
    with pytest.raises(PermissionDeniedError):
        set_role(session, viewer.id, Role.ADMIN, actor=viewer)
    set_role(session, viewer.id, Role.REVIEWER, actor=admin)
    assert viewer.role == "reviewer"
    entry = list_audit(session, action="user.set_role")[0]
    assert entry.user_id == admin.id
    assert entry.details_json == {"from": "viewer", "to": "reviewer"}


def test_last_active_admin_is_kept(session: Session) -> None:
    admin = make_user(session, Role.ADMIN)
    with pytest.raises(ConflictError, match="last active admin"):
        set_role(session, admin.id, Role.VIEWER)
    with pytest.raises(ConflictError, match="last active admin"):
        set_active(session, admin.id, False)
    second = make_user(session, Role.ADMIN)
    set_role(session, admin.id, Role.VIEWER, actor=second)
    assert [u.username for u in list_users(session) if u.role == "admin"] == [second.username]


def test_password_change_rules(session: Session) -> None:
    admin = make_user(session, Role.ADMIN)
    alice = create_user(session, username="alice", password="first password")
    bob = create_user(session, username="bob", password="bobs password")
    set_password(session, alice.id, "second password", actor=alice)
    assert authenticate(session, "alice", "second password") == alice
    with pytest.raises(PermissionDeniedError):
        set_password(session, alice.id, "hijacked!!", actor=bob)
    set_password(session, alice.id, "reset by admin", actor=admin)
    assert authenticate(session, "alice", "reset by admin") == alice


def test_ensure_first_admin_creates_only_one(session: Session) -> None:
    first = ensure_first_admin(session, "admin", "initial password")
    assert first is not None
    assert first.role == "admin"
    assert ensure_first_admin(session, "admin2", "initial password") is None
    assert count_users(session) == 1
    assert authenticate(session, "admin", "initial password") == first
