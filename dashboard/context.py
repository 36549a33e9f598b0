"""Per-session state shared by every page: the database, the signed-in user, the project.

Pages read these helpers instead of touching ``st.session_state`` keys directly, and pass
``session_factory()`` and ``actor_id()`` to the services. ORM objects are never cached: only the
session factory (a resource) and small plain values live across reruns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from dashboard.auth_routes import SESSION_COOKIE, SESSION_PATH, SIGN_OUT_PATH
from dashboard.services import auth
from dashboard.services.auth import SignedIn
from dashboard.services.data_version import DataKey, data_key
from db.models import ROLE_RANK
from db.session import make_engine, make_session_factory
from db.settings import StoreSettings

USER_KEY = "adn_user"
PROJECT_KEY = "adn_project_id"
COOKIE_TICKET_KEY = "adn_cookie_ticket"
CLEAR_COOKIE_KEY = "adn_clear_cookie"
SIGNED_OUT_REASON_KEY = "adn_signed_out_reason"


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in person, as plain values (safe to keep in session state)."""

    id: int
    username: str
    role: str  # "admin" | "reviewer" | "viewer"
    session_id: int | None = None  # the browser sign-in behind it


def store_settings() -> StoreSettings:
    """Data directory, database URL and upload limits from ``ADN_*`` environment variables."""
    return StoreSettings.from_env()


@st.cache_resource(show_spinner=False)
def _factory_for(url: str) -> sessionmaker[Session]:
    return make_session_factory(make_engine(url))


def session_factory() -> sessionmaker[Session]:
    """The cached session factory for the configured database."""
    return _factory_for(store_settings().database_url)


def current_user() -> CurrentUser | None:
    """The signed-in user, or None."""
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, CurrentUser) else None


def sign_in(user: SignedIn, ticket: str | None = None) -> None:
    """Remember ``user`` for this browser session; with a ``ticket``, the next run trades it
    for the session cookie that keeps the user signed in across reloads."""
    st.session_state[USER_KEY] = CurrentUser(user.id, user.username, user.role, user.session_id)
    if ticket:
        st.session_state[COOKIE_TICKET_KEY] = ticket


def sign_out() -> None:
    """End the sign-in server-side (every tab and the cookie), forget the user and project."""
    user = current_user()
    if user is not None and user.session_id is not None:
        auth.end_browser_session(session_factory(), session_id=user.session_id)
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(PROJECT_KEY, None)
    st.session_state.pop(COOKIE_TICKET_KEY, None)
    st.session_state[CLEAR_COOKIE_KEY] = True


def browser_cookie() -> str:
    """The session token the browser sent when this session opened ("" when none)."""
    try:
        return str(st.context.cookies.get(SESSION_COOKIE) or "")
    except (AttributeError, RuntimeError):  # no browser behind this run (tests, scripts)
        return ""


def _post_script(path: str, body: dict[str, str]) -> str:
    payload = json.dumps(json.dumps(body))
    return (
        f"<script>fetch({json.dumps(path)}, {{method: 'POST', credentials: 'same-origin', "
        f"headers: {{'Content-Type': 'application/json'}}, body: {payload}}});</script>"
    )


def sync_cookie() -> None:
    """Hand a new sign-in's ticket to the browser, or delete the cookie after a sign-out."""
    ticket = st.session_state.pop(COOKIE_TICKET_KEY, None)
    if ticket:
        st.html(_post_script(SESSION_PATH, {"ticket": str(ticket)}), unsafe_allow_javascript=True)
    if st.session_state.pop(CLEAR_COOKIE_KEY, False):
        st.html(_post_script(SIGN_OUT_PATH, {}), unsafe_allow_javascript=True)


def can(role: str) -> bool:
    """Whether the signed-in user has at least ``role`` (viewer < reviewer < admin)."""
    user = current_user()
    return user is not None and ROLE_RANK.get(user.role, -1) >= ROLE_RANK[role]


def require_user() -> CurrentUser:
    """The signed-in user; stops the page with a message when nobody is signed in."""
    user = current_user()
    if user is None:
        st.warning("Please sign in first.")
        st.stop()
    return user


def actor_id() -> int:
    """The signed-in user's id, the acting user of service calls that check roles."""
    return require_user().id


def selected_project() -> int | None:
    """The project chosen in the sidebar, or None."""
    value = st.session_state.get(PROJECT_KEY)
    return int(value) if value is not None else None


def require_project() -> int:
    """The chosen project; stops the page with a hint when none is chosen (or nobody signed in)."""
    require_user()
    project_id = selected_project()
    if project_id is None:
        st.info("Choose a project in the sidebar first, or create one on **Projects & upload**.")
        st.stop()
    return project_id


def select_project(project_id: int | None) -> None:
    """Make ``project_id`` the current project."""
    st.session_state[PROJECT_KEY] = project_id


def models_data_key(model_ids: Iterable[int]) -> DataKey:
    """The key under which a page keeps what it loaded for these models (see
    ``services/data_version.py``)."""
    return data_key(session_factory(), store_settings().database_url, model_ids)
