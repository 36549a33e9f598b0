"""The sign-in page: credentials, one message for every failure, the first-admin hint."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import context
from dashboard.context import COOKIE_TICKET_KEY, USER_KEY
from dashboard.services import auth
from db.repositories import set_active
from db.session import session_scope
from tests.dashboard.conftest import PASSWORDS, REPO_ROOT, OpenPage, StudioUser

PAGE = "dashboard/pages/sign_in.py"


def sign_in(open_page: OpenPage, username: str, password: str):
    app = open_page(PAGE, role=None, project_id=None).run()
    app.text_input[0].input(username)
    app.text_input[1].input(password)
    app.button[0].click()
    return app.run()


def test_right_password_signs_in(open_page: OpenPage, studio_users: dict[str, StudioUser]) -> None:
    app = sign_in(open_page, "Reviewer", PASSWORDS["reviewer"])
    assert not app.exception
    assert not app.error
    user = app.session_state[USER_KEY]
    assert (user.username, user.role) == ("reviewer", "reviewer")
    # The browser gets a one-time ticket for its cookie; the cookie token resumes this user.
    ticket = app.session_state[COOKIE_TICKET_KEY]
    grant = auth.grant_cookie(context.session_factory(), ticket)
    assert grant is not None and grant.max_age_s > 3600
    resumed = auth.resume(context.session_factory(), grant.token)
    assert resumed is not None and resumed.session_id == user.session_id is not None


@pytest.mark.parametrize(
    ("username", "password"),
    [("reviewer", "wrong-password-1"), ("nobody", "whatever-pass-1"), ("", "")],
)
def test_wrong_credentials_get_one_message(
    open_page: OpenPage, studio_users: dict[str, StudioUser], username: str, password: str
) -> None:
    app = sign_in(open_page, username, password)
    assert [e.value for e in app.error] == [auth.WRONG_CREDENTIALS]
    assert USER_KEY not in app.session_state


def test_deactivated_user_is_refused(
    open_page: OpenPage, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    with session_scope(studio_factory) as session:
        set_active(session, studio_users["viewer"].id, False)
    app = sign_in(open_page, "viewer", PASSWORDS["viewer"])
    assert [e.value for e in app.error] == [auth.WRONG_CREDENTIALS]
    assert USER_KEY not in app.session_state


@pytest.mark.parametrize("password_file", [True, False])
def test_page_says_how_to_sign_in_the_first_time(
    open_page: OpenPage, studio_store, studio_users: dict[str, StudioUser], password_file: bool
) -> None:
    saved = studio_store.data_dir / "first-admin-password.txt"
    if password_file:
        saved.write_text("secret\n")
    else:
        saved.unlink(missing_ok=True)  # the admin's password came from ADN_ADMIN_PASSWORD
    app = open_page(PAGE, role=None, project_id=None).run()
    hint = app.info[0].value
    assert "**admin**" in hint
    assert (str(saved) in hint) is password_file
    assert ("ADN_ADMIN_PASSWORD" in hint) is not password_file
    assert not app.warning  # users exist, so no "no account yet" warning


def test_empty_store_says_to_start_the_launcher(studio_store) -> None:
    app = AppTest.from_file(str(REPO_ROOT / PAGE), default_timeout=30).run()
    assert "adn-studio" in app.warning[0].value


def test_still_valid_rereads_role(studio_factory, studio_users: dict[str, StudioUser]) -> None:
    from db.repositories import set_role

    with session_scope(studio_factory) as session:
        set_role(session, studio_users["viewer"].id, "reviewer")
    fresh = auth.still_valid(studio_factory, studio_users["viewer"].id, None)
    assert fresh is not None and fresh.role == "reviewer"
    assert (fresh.id, fresh.username) == (studio_users["viewer"].id, "viewer")
    assert auth.still_valid(studio_factory, 9999, None) is None
