"""Per-session state shared by every page: the database, the signed-in user, the project.

Pages read these helpers instead of touching ``st.session_state`` keys directly, and pass
``session_factory()`` and ``actor_id()`` to the services. ORM objects are never cached: only the
session factory (a resource) and small plain values live across reruns.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from dashboard.services.auth import SignedIn
from db.models import ROLE_RANK
from db.session import make_engine, make_session_factory
from db.settings import StoreSettings

USER_KEY = "adn_user"
PROJECT_KEY = "adn_project_id"


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in person, as plain values (safe to keep in session state)."""

    id: int
    username: str
    role: str  # "admin" | "reviewer" | "viewer"


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


def sign_in(user: SignedIn) -> None:
    """Remember ``user`` for this browser session."""
    st.session_state[USER_KEY] = CurrentUser(id=user.id, username=user.username, role=user.role)


def sign_out() -> None:
    """Forget the signed-in user and the chosen project."""
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(PROJECT_KEY, None)


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
