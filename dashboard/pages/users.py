"""Users (admins only): create accounts, change roles, deactivate, reset passwords."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard import context
from dashboard.services import users as user_service
from dashboard.services.errors import StoreError

logger = logging.getLogger(__name__)


def _run(action: str, fn: Callable[..., object], *args: object, **kwargs: object) -> bool:
    """Run a user change (one transaction in the service); show the error instead of raising."""
    try:
        fn(context.session_factory(), *args, actor_id=context.actor_id(), **kwargs)
    except StoreError as exc:
        st.error(f"Could not {action}: {exc}")
        return False
    return True


def users_table(rows: list[user_service.UserRow]) -> None:
    """Every account with role and state."""
    frame = pd.DataFrame(
        [
            {
                "user": r.username,
                "role": r.role,
                "active": r.active,
                "created": r.created_at,
            }
            for r in rows
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "active": st.column_config.CheckboxColumn("active"),
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        },
    )


def create_form() -> None:
    """Create a new account."""
    with st.form("create_user", clear_on_submit=True):
        st.subheader("Create a user")
        cols = st.columns(3)
        username = cols[0].text_input("User name")
        password = cols[1].text_input("Password (8 characters or more)", type="password")
        role = cols[2].selectbox(
            "Role",
            user_service.ROLES,
            index=user_service.ROLES.index("viewer"),
            format_func=lambda r: f"{r}: {user_service.ROLE_HELP[r]}",
        )
        if st.form_submit_button("Create user", type="primary") and _run(
            "create the user",
            user_service.add_user,
            username=username,
            password=password,
            role=role,
        ):
            st.session_state["adn_users_notice"] = f"User {username.strip().lower()!r} created."
            st.rerun()


def manage(rows: list[user_service.UserRow]) -> None:
    """Change one account: role, active state, password."""
    st.subheader("Change a user")
    by_id = {r.id: r for r in rows}
    user_id = st.selectbox(
        "User",
        list(by_id),
        format_func=lambda i: (
            f"{by_id[i].username} ({by_id[i].role}"
            + ("" if by_id[i].active else ", deactivated")
            + ")"
        ),
        key="adn_users_pick",
    )
    if user_id is None:
        return
    row = by_id[user_id]
    left, middle, right = st.columns(3)
    with left:
        role = st.selectbox(
            "New role", user_service.ROLES, index=user_service.ROLES.index(row.role), key="adn_role"
        )
        if st.button("Change role", key="adn_change_role") and _run(
            "change the role", user_service.change_role, row.id, role
        ):
            st.session_state["adn_users_notice"] = f"{row.username} is now {role}."
            st.rerun()
    with middle:
        label = "Deactivate" if row.active else "Reactivate"
        st.write("Account state")
        if st.button(label, key="adn_toggle_active") and _run(
            f"{label.lower()} the user", user_service.change_active, row.id, not row.active
        ):
            done = "deactivated" if row.active else "reactivated"
            st.session_state["adn_users_notice"] = f"{row.username} {done}."
            st.rerun()
    with right, st.form("reset_password", clear_on_submit=True):
        new_password = st.text_input("New password", type="password")
        if st.form_submit_button("Reset password") and _run(
            "reset the password", user_service.reset_password, row.id, new_password
        ):
            st.session_state["adn_users_notice"] = f"Password of {row.username} reset."
            st.rerun()


def render() -> None:
    """The Users page."""
    context.require_user()
    st.title("Users")
    if not context.can("admin"):
        st.error("Only admins manage users. Ask an admin if you need an account changed.")
        st.stop()
    notice = st.session_state.pop("adn_users_notice", None)
    if notice:
        st.success(notice)
    rows = user_service.users_table(context.session_factory())
    users_table(rows)
    create_form()
    manage(rows)


render()
