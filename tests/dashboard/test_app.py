"""The app shell: sign-in gate, navigation by role, sidebar, database errors."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import context
from dashboard.context import PROJECT_KEY, USER_KEY
from dashboard.services import auth
from dashboard.settings import pages_for
from db.repositories import set_active
from db.session import session_scope
from tests.dashboard.conftest import REPO_ROOT, ProjectInfo, StudioUser

APP = str(REPO_ROOT / "dashboard" / "app.py")


def app_as(user: StudioUser | None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=30)
    if user is not None:
        app.session_state[USER_KEY] = user.current()
    return app


def test_nobody_signed_in_sees_only_the_sign_in_form(studio_users: dict[str, StudioUser]) -> None:
    app = app_as(None).run()
    assert not app.exception
    assert [t.value for t in app.title] == ["AttentDifferNet Studio"]
    assert [i.label for i in app.text_input] == ["User name", "Password"]
    assert not app.sidebar.selectbox  # no project picker before sign-in
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("pages/projects.py")


def test_reviewer_lands_on_projects_with_picker_and_user_box(
    studio_users: dict[str, StudioUser], studio_project: ProjectInfo
) -> None:
    app = app_as(studio_users["reviewer"]).run()
    assert not app.exception
    assert app.title[0].value == "Projects & upload"
    picker = app.sidebar.selectbox[0]
    assert picker.label == "Project"
    assert picker.value == studio_project.id
    assert app.session_state[PROJECT_KEY] == studio_project.id
    assert any("reviewer" in m.value for m in app.sidebar.markdown)
    assert [b.label for b in app.sidebar.button] == ["Sign out"]
    for page, title in [("pages/train.py", "Train & score"), ("pages/jobs.py", "Jobs")]:
        app.switch_page(page).run()
        assert app.title[0].value == title
    # Even opened directly, the Users page refuses a reviewer and offers no control.
    app.switch_page("pages/users.py").run()
    assert "Only admins" in app.error[0].value
    assert not app.text_input and not app.button_group


@pytest.mark.parametrize(
    ("role", "sections"),
    [
        ("viewer", ["Data", "Models", "Review", "Export"]),
        ("reviewer", ["Data", "Models", "Review", "Export"]),
        ("admin", ["Data", "Models", "Review", "Export", "Admin"]),
    ],
)
def test_navigation_sections_by_role(role: str, sections: list[str]) -> None:
    nav = pages_for(role)
    assert list(nav) == sections
    assert [p.title for p in nav["Models"]] == ["Train", "Jobs", "Compare"]
    assert [p.title for p in nav["Review"]] == ["Review", "Thresholds", "Drift"]
    assert ("Admin" in nav) == (role == "admin")
    assert pages_for("stranger") == {}


def test_admin_navigation_includes_users(studio_users: dict[str, StudioUser]) -> None:
    app = app_as(studio_users["admin"]).run()
    app.switch_page("pages/users.py").run()
    assert not app.exception
    assert app.title[0].value == "Users"
    assert not app.error


def test_sign_out_forgets_the_user(studio_users: dict[str, StudioUser], studio_project) -> None:
    app = app_as(studio_users["viewer"]).run()
    assert app.session_state[PROJECT_KEY] == studio_project.id
    app.sidebar.button[0].click().run()
    assert USER_KEY not in app.session_state
    assert PROJECT_KEY not in app.session_state


def test_deactivated_user_is_signed_out_on_next_run(studio_factory, studio_users) -> None:
    app = app_as(studio_users["reviewer"])
    with session_scope(studio_factory) as session:
        set_active(session, studio_users["reviewer"].id, False)
    app.run()
    assert app.title[0].value == "AttentDifferNet Studio"  # the sign-in page
    assert USER_KEY not in app.session_state
    assert any("deactivated" in w.value for w in app.warning)


def _browser_sign_in(factory, user: StudioUser) -> tuple[auth.SignedIn, str]:
    """A sign-in of ``user`` traded for its cookie token, as the browser would hold it."""
    signed = auth.SignedIn(user.id, user.username, user.role)
    signed, ticket = auth.begin_browser_session(factory, signed, hours=1)
    grant = auth.grant_cookie(factory, ticket)
    assert grant is not None
    return signed, grant.token


def test_new_session_resumes_from_the_cookie(
    monkeypatch: pytest.MonkeyPatch, studio_factory, studio_users, studio_project
) -> None:
    signed, token = _browser_sign_in(studio_factory, studio_users["admin"])
    monkeypatch.setattr(context, "browser_cookie", lambda: token)
    app = app_as(None).run()  # a reload: new session, only the cookie
    assert not app.exception
    assert app.title[0].value == "Projects & upload"
    assert app.session_state[USER_KEY].session_id == signed.session_id
    app.switch_page("pages/users.py").run()  # a bookmarked admin page opens
    assert app.title[0].value == "Users" and not app.error


def test_sign_out_elsewhere_ends_this_tab_too(studio_factory, studio_users, studio_project) -> None:
    signed, _ = _browser_sign_in(studio_factory, studio_users["reviewer"])
    auth.end_browser_session(studio_factory, session_id=signed.session_id)  # another tab's sign-out
    tab = AppTest.from_file(APP, default_timeout=30)
    tab.session_state[USER_KEY] = context.CurrentUser(
        signed.id, signed.username, signed.role, signed.session_id
    )
    tab.run()  # this tab's next rerun
    assert USER_KEY not in tab.session_state
    assert any("sign-in ended" in w.value for w in tab.warning)
    assert [i.label for i in tab.text_input] == ["User name", "Password"]


def test_sign_out_button_ends_the_sign_in_server_side(
    monkeypatch: pytest.MonkeyPatch, studio_factory, studio_users, studio_project
) -> None:
    _, token = _browser_sign_in(studio_factory, studio_users["viewer"])
    monkeypatch.setattr(context, "browser_cookie", lambda: token)
    app = app_as(None).run()
    app.sidebar.button[0].click().run()
    assert USER_KEY not in app.session_state
    assert auth.resume(studio_factory, token) is None


def test_expired_cookie_asks_to_sign_in(monkeypatch: pytest.MonkeyPatch, studio_users) -> None:
    monkeypatch.setattr(context, "browser_cookie", lambda: "not-a-live-token")
    app = app_as(None).run()
    assert [i.label for i in app.text_input] == ["User name", "Password"]


def test_unreachable_database_shows_what_to_check(
    monkeypatch: pytest.MonkeyPatch, studio_users: dict[str, StudioUser], tmp_path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("ADN_DATABASE_URL", f"sqlite:///{blocker}/sub/studio.db")
    app = app_as(studio_users["reviewer"]).run()
    assert not app.exception
    assert "The database cannot be reached" in app.error[0].value
    text = " ".join(m.value for m in app.markdown)
    assert "What to check" in text and "ADN_DATA_DIR" in text


def test_database_without_tables_says_how_to_migrate(
    monkeypatch: pytest.MonkeyPatch, studio_users: dict[str, StudioUser], tmp_path
) -> None:
    monkeypatch.setenv("ADN_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    app = app_as(studio_users["reviewer"]).run()
    assert not app.exception
    assert "not set up for the studio" in app.error[0].value
    assert "upgrade head" in " ".join(m.value for m in app.markdown)
