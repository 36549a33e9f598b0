"""The Users page (admins) and the user service."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from dashboard.services import auth
from dashboard.services import users as user_service
from db.errors import ConflictError, PermissionDeniedError
from db.repositories import authenticate, get_user, get_user_by_name
from db.session import session_scope
from tests.dashboard.conftest import PASSWORDS, OpenPage, StudioUser

PAGE = "dashboard/pages/users.py"


def _submit_new_user(app: AppTest, username: str, password: str, role: str | None = None) -> None:
    """Fill in the page's new-user form (role left at its default when None) and submit it."""
    app.text_input[0].input(username)
    app.text_input[1].input(password)
    if role is not None:
        app.selectbox[0].select(role)
    app.button[0].click()  # "Create user" is the first form button
    app.run()


def _pick_user(app: AppTest, user_id: int) -> None:
    """Choose the user the page's controls act on."""
    app.selectbox(key="adn_users_pick").set_value(user_id).run()


def _change_role(app: AppTest, user_id: int, role: str) -> None:
    """Pick a user and ask the page to give it another role."""
    _pick_user(app, user_id)
    app.selectbox(key="adn_role").set_value(role)
    app.button(key="adn_change_role").click().run()


def _add_user(
    factory: sessionmaker[Session], username: str, password: str, *, role: str, actor_id: int
) -> None:
    """Ask the user service for a new account."""
    user_service.add_user(
        factory, username=username, password=password, role=role, actor_id=actor_id
    )


@pytest.fixture
def admin_page(open_page: OpenPage) -> AppTest:
    """The Users page, run once, as the admin sees it."""
    return open_page(PAGE, role="admin").run()


def test_admin_sees_every_user(admin_page: AppTest) -> None:
    assert not admin_page.exception
    table = admin_page.dataframe[0].value
    assert sorted(table["user"]) == ["admin", "reviewer", "viewer"]
    assert table.set_index("user").loc["viewer", "role"] == "viewer"


def test_admin_creates_a_user(admin_page: AppTest, studio_factory) -> None:
    _submit_new_user(admin_page, "Inspector.Jo", "a-long-password", role="reviewer")
    assert not admin_page.exception and not admin_page.error
    assert "created" in admin_page.success[0].value
    with session_scope(studio_factory) as session:
        assert authenticate(session, "inspector.jo", "a-long-password").role == "reviewer"


def test_short_password_is_refused_clearly(admin_page: AppTest, studio_factory) -> None:
    _submit_new_user(admin_page, "shorty", "short")
    assert "Could not create the user" in admin_page.error[0].value
    assert "at least 8" in admin_page.error[0].value
    with session_scope(studio_factory) as session:
        assert get_user_by_name(session, "shorty") is None


def test_admin_changes_role_deactivates_and_resets_password(
    admin_page: AppTest, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    viewer = studio_users["viewer"]
    _change_role(admin_page, viewer.id, "reviewer")
    assert not admin_page.error, [e.value for e in admin_page.error]
    _pick_user(admin_page, viewer.id)
    admin_page.button(key="adn_toggle_active").click().run()
    assert "deactivated" in admin_page.success[0].value
    _pick_user(admin_page, viewer.id)
    form_inputs = [t for t in admin_page.text_input if t.label == "New password"]
    form_inputs[0].input("brand-new-secret")
    next(b for b in admin_page.button if b.label == "Reset password").click().run()
    assert not admin_page.error, [e.value for e in admin_page.error]
    with session_scope(studio_factory) as session:
        row = get_user(session, viewer.id)
        assert (row.role, row.is_active) == ("reviewer", False)
    # Reactivate, then the new password works.
    _pick_user(admin_page, viewer.id)
    assert admin_page.button(key="adn_toggle_active").label == "Reactivate"
    admin_page.button(key="adn_toggle_active").click().run()
    with session_scope(studio_factory) as session:
        assert authenticate(session, "viewer", "brand-new-secret") is not None


def test_last_admin_cannot_be_demoted(
    admin_page: AppTest, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    admin = studio_users["admin"]
    _change_role(admin_page, admin.id, "viewer")
    assert "last active admin" in admin_page.error[0].value
    with session_scope(studio_factory) as session:
        assert get_user(session, admin.id).role == "admin"


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_non_admins_get_no_controls(
    open_page: OpenPage, studio_users: dict[str, StudioUser], role: str
) -> None:
    app = open_page(PAGE, role=role).run()
    assert "Only admins" in app.error[0].value
    assert not app.text_input and not app.button and not app.dataframe


def test_service_refuses_non_admin_actors(
    studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    reviewer = studio_users["reviewer"].id
    with pytest.raises(PermissionDeniedError):
        _add_user(studio_factory, "mallory", "mallory-pass", role="admin", actor_id=reviewer)
    with pytest.raises(PermissionDeniedError):
        user_service.change_role(studio_factory, reviewer, "admin", actor_id=reviewer)
    with pytest.raises(PermissionDeniedError):
        user_service.reset_password(
            studio_factory, studio_users["admin"].id, "taken-over-1", actor_id=reviewer
        )
    admin = studio_users["admin"].id
    with pytest.raises(ConflictError):
        _add_user(studio_factory, "viewer", "another-pass", role="viewer", actor_id=admin)
    # Nothing the refused calls asked for was stored.
    table = {u.username: u.role for u in user_service.users_table(studio_factory)}
    assert table == {"admin": "admin", "reviewer": "reviewer", "viewer": "viewer"}
    assert auth.check_credentials(studio_factory, "admin", PASSWORDS["admin"]) is not None
    assert auth.check_credentials(studio_factory, "admin", "taken-over-1") is None
