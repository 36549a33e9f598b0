"""The Users page (admins) and the user service."""

from __future__ import annotations

import pytest

from dashboard.services import auth
from dashboard.services import users as user_service
from db.errors import ConflictError, PermissionDeniedError
from db.repositories import authenticate, get_user, get_user_by_name
from db.session import session_scope
from tests.dashboard.conftest import PASSWORDS, OpenPage, StudioUser

PAGE = "dashboard/pages/users.py"


def test_admin_sees_every_user(open_page: OpenPage, studio_users: dict[str, StudioUser]) -> None:
    app = open_page(PAGE, role="admin").run()
    assert not app.exception
    table = app.dataframe[0].value
    assert sorted(table["user"]) == ["admin", "reviewer", "viewer"]
    assert table.set_index("user").loc["viewer", "role"] == "viewer"


def test_admin_creates_a_user(
    open_page: OpenPage, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    app = open_page(PAGE, role="admin").run()
    app.text_input[0].input("Inspector.Jo")
    app.text_input[1].input("a-long-password")
    app.selectbox[0].select("reviewer")
    app.button[0].click()  # "Create user" is the first form button
    app.run()
    assert not app.exception and not app.error
    assert "created" in app.success[0].value
    with session_scope(studio_factory) as session:
        assert authenticate(session, "inspector.jo", "a-long-password").role == "reviewer"


def test_short_password_is_refused_clearly(
    open_page: OpenPage, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    app = open_page(PAGE, role="admin").run()
    app.text_input[0].input("shorty")
    app.text_input[1].input("short")
    app.button[0].click()
    app.run()
    assert "Could not create the user" in app.error[0].value
    assert "at least 8" in app.error[0].value
    with session_scope(studio_factory) as session:
        assert get_user_by_name(session, "shorty") is None


def test_admin_changes_role_deactivates_and_resets_password(
    open_page: OpenPage, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    viewer = studio_users["viewer"]
    app = open_page(PAGE, role="admin").run()
    app.selectbox(key="adn_users_pick").set_value(viewer.id).run()
    app.selectbox(key="adn_role").set_value("reviewer")
    app.button(key="adn_change_role").click().run()
    assert not app.error, [e.value for e in app.error]
    app.selectbox(key="adn_users_pick").set_value(viewer.id).run()
    app.button(key="adn_toggle_active").click().run()
    assert "deactivated" in app.success[0].value
    app.selectbox(key="adn_users_pick").set_value(viewer.id).run()
    form_inputs = [t for t in app.text_input if t.label == "New password"]
    form_inputs[0].input("brand-new-secret")
    next(b for b in app.button if b.label == "Reset password").click().run()
    assert not app.error, [e.value for e in app.error]
    with session_scope(studio_factory) as session:
        row = get_user(session, viewer.id)
        assert (row.role, row.is_active) == ("reviewer", False)
    # Reactivate, then the new password works.
    app.selectbox(key="adn_users_pick").set_value(viewer.id).run()
    assert app.button(key="adn_toggle_active").label == "Reactivate"
    app.button(key="adn_toggle_active").click().run()
    with session_scope(studio_factory) as session:
        assert authenticate(session, "viewer", "brand-new-secret") is not None


def test_last_admin_cannot_be_demoted(
    open_page: OpenPage, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    admin = studio_users["admin"]
    app = open_page(PAGE, role="admin").run()
    app.selectbox(key="adn_users_pick").set_value(admin.id).run()
    app.selectbox(key="adn_role").set_value("viewer")
    app.button(key="adn_change_role").click().run()
    assert "last active admin" in app.error[0].value
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
        user_service.add_user(
            studio_factory,
            username="mallory",
            password="mallory-pass",
            role="admin",
            actor_id=reviewer,
        )
    with pytest.raises(PermissionDeniedError):
        user_service.change_role(studio_factory, reviewer, "admin", actor_id=reviewer)
    with pytest.raises(PermissionDeniedError):
        user_service.reset_password(
            studio_factory, studio_users["admin"].id, "taken-over-1", actor_id=reviewer
        )
    admin = studio_users["admin"].id
    with pytest.raises(ConflictError):
        user_service.add_user(
            studio_factory,
            username="viewer",
            password="another-pass",
            role="viewer",
            actor_id=admin,
        )
    # Nothing the refused calls asked for was stored.
    table = {u.username: u.role for u in user_service.users_table(studio_factory)}
    assert table == {"admin": "admin", "reviewer": "reviewer", "viewer": "viewer"}
    assert auth.check_credentials(studio_factory, "admin", PASSWORDS["admin"]) is not None
    assert auth.check_credentials(studio_factory, "admin", "taken-over-1") is None
