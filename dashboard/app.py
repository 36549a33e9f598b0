"""AttentDifferNet Studio, the browser pages (``dashboard/server.py`` serves them with the
cookie routes).

Only the sign-in page exists until somebody signs in; then the navigation offers the pages the
user's role allows, with a project picker and the signed-in user in the sidebar.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st

from dashboard import context
from dashboard.rerun_log import timed_run
from dashboard.services import auth
from dashboard.services import projects as project_service
from dashboard.services.errors import SCHEMA_ERRORS, DatabaseUnavailableError
from dashboard.settings import DEFAULT_PAGE, PAGES, SIGN_IN, PageSpec, pages_for

logger = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent
PICKER_KEY = "adn_project_picker"
WANTED_PAGE_KEY = "adn_wanted_page"


def show_database_error(exc: DatabaseUnavailableError) -> None:
    """A full-page explanation of why the database cannot be reached, then stop."""
    logger.error("database unavailable: %s", exc)
    st.title("AttentDifferNet Studio")
    st.error(f"**The database cannot be reached.**\n\n{exc.reason}", icon=":material/error:")
    st.markdown(
        f"""
**Database:** `{exc.url}`

**What to check**

- {exc.hint}
- `ADN_DATABASE_URL` and `ADN_DATA_DIR` are the same for the studio and its workers.
- In the team setup: `docker compose ps` shows the `postgres` service healthy.

Nothing you saved is lost; reload this page once the database is back.
"""
    )
    st.stop()


def show_schema_error(exc: Exception) -> None:
    """A full-page explanation when the database answers but lacks the studio's tables."""
    logger.error("database schema problem: %s", exc)
    st.title("AttentDifferNet Studio")
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    st.error(f"**The database is not set up for the studio.** ({reason})", icon=":material/error:")
    st.markdown(
        """
**What to do**

- Start the studio with `adn-studio`: it brings the database up to date before the dashboard.
- Or run the migrations yourself: `alembic -c db/migrations/alembic.ini upgrade head`
  (team setup: the one-shot `migrate` service of `docker compose`).
- Check that `ADN_DATABASE_URL` points at the studio's database, not another one.
"""
    )
    st.stop()


def page_for(spec: PageSpec, *, default: bool = False) -> st.Page | None:
    """The page ``pages/<stem>.py``, or None while that file does not exist yet."""
    if not (APP_DIR / "pages" / f"{spec.stem}.py").is_file():
        logger.warning("page %s is missing; not listed", spec.stem)
        return None
    return st.Page(
        f"pages/{spec.stem}.py",
        title=spec.title,
        icon=spec.icon,
        url_path=spec.stem,
        default=default,
    )


def signed_in_navigation(role: str) -> dict[str, list[st.Page]]:
    """The navigation sections the signed-in user may open (missing page files skipped)."""
    sections: dict[str, list[st.Page]] = {}
    for section, specs in pages_for(role).items():
        pages = [page_for(s, default=s.stem == DEFAULT_PAGE) for s in specs]
        if present := [p for p in pages if p is not None]:
            sections[section] = present
    return sections


def signed_out_navigation(sign_in: st.Page) -> list[st.Page]:
    """The sign-in page, also at every page's address: a bookmark opened while signed out shows
    the sign-in form (and its page after sign-in) rather than "page not found"."""
    aliases = [
        st.Page(f"pages/{SIGN_IN.stem}.py", title=SIGN_IN.title, url_path=spec.stem)
        for spec in PAGES
    ]
    return [sign_in, *aliases]


def refresh_signed_in_user() -> context.CurrentUser | None:
    """The signed-in user, re-read every run: a sign-in that ended elsewhere (sign-out in
    another tab, expiry, new password, deactivation) signs this session out, a new role applies,
    and a new session (reload, bookmark) resumes from the browser's cookie."""
    user = context.current_user()
    if user is None:
        resumed = auth.resume(context.session_factory(), context.browser_cookie())
        if resumed is not None:
            context.sign_in(resumed)
        return context.current_user()
    fresh = auth.still_valid(context.session_factory(), user.id, user.session_id)
    if fresh is None:
        context.sign_out()
        st.session_state[context.SIGNED_OUT_REASON_KEY] = (
            "Your sign-in ended: signed out elsewhere, expired, a new password, or the account "
            "was deactivated. Please sign in again."
        )
        return None
    if fresh.role != user.role or fresh.username != user.username:
        context.sign_in(fresh)
    return context.current_user()


def requested_stem() -> str:
    """The page named in the browser's address ("" for the root or when unknown)."""
    try:
        url = st.context.url or ""
    except (AttributeError, RuntimeError):  # no browser behind this run
        return ""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def remember_wanted_page() -> None:
    """Keep the page a signed-out bookmark or link asked for, to open it after sign-in."""
    stem = requested_stem()
    if stem and stem != SIGN_IN.stem:
        st.session_state[WANTED_PAGE_KEY] = stem


def open_wanted_page(sections: dict[str, list[st.Page]]) -> None:
    """After sign-in, go to the page that was asked for before it, when the role allows it."""
    wanted = st.session_state.pop(WANTED_PAGE_KEY, None)
    if not wanted or requested_stem() == wanted:
        return
    for pages in sections.values():
        for page in pages:
            if page.url_path == wanted:
                st.switch_page(page)


def _on_project_picked() -> None:
    context.select_project(st.session_state.get(PICKER_KEY))


def project_picker() -> None:
    """The sidebar project selector (creating projects lives on the Projects page)."""
    rows = project_service.projects(context.session_factory())
    if not rows:
        context.select_project(None)
        st.sidebar.caption("No project yet: create one on **Projects & upload**.")
        return
    names = {p.id: p.name for p in rows}
    chosen = context.selected_project()
    if chosen not in names:
        chosen = rows[0].id
        context.select_project(chosen)
    st.session_state[PICKER_KEY] = chosen
    st.sidebar.selectbox(
        "Project",
        options=list(names),
        format_func=lambda pid: names.get(pid, f"project {pid}"),
        key=PICKER_KEY,
        on_change=_on_project_picked,
    )


def user_box(user: context.CurrentUser) -> None:
    """The signed-in user and the sign-out button, at the bottom of the sidebar."""
    st.sidebar.divider()
    st.sidebar.markdown(f":material/person: **{user.username}** · {user.role}")
    st.sidebar.button(
        "Sign out", key="adn_sign_out", icon=":material/logout:", on_click=context.sign_out
    )


def main() -> None:
    """Build the navigation for whoever is (not) signed in and run the chosen page."""
    st.set_page_config(
        page_title="AttentDifferNet Studio",
        page_icon=":material/troubleshoot:",
        layout="wide",
    )
    try:
        user = refresh_signed_in_user()
        context.sync_cookie()
        if user is None:
            sign_in = page_for(SIGN_IN, default=True)
            if sign_in is None:
                st.error("The sign-in page is missing from this installation; reinstall it.")
                st.stop()
            remember_wanted_page()
            st.navigation(signed_out_navigation(sign_in), position="hidden").run()
            return
        sections = signed_in_navigation(user.role)
        page = st.navigation(sections)
        open_wanted_page(sections)
        with timed_run(page.url_path or DEFAULT_PAGE):
            project_picker()
            user_box(user)
            page.run()
    except DatabaseUnavailableError as exc:
        show_database_error(exc)
    except SCHEMA_ERRORS as exc:
        show_schema_error(exc)


main()
