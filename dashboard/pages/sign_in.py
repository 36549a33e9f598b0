"""Sign in with a user name and password."""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import context
from dashboard.services import auth

logger = logging.getLogger(__name__)


def render() -> None:
    """The sign-in form; a success reruns the app with the full navigation."""
    st.title("AttentDifferNet Studio")
    st.caption("Visual anomaly detection: upload, train, score, review, tune, export.")
    reason = st.session_state.pop(context.SIGNED_OUT_REASON_KEY, None)
    if reason:
        st.warning(reason)
    settings = context.store_settings()
    any_user = auth.has_users(context.session_factory())
    left, _ = st.columns([2, 3])
    with left:
        with st.form("sign_in_form"):
            st.subheader("Sign in")
            username = st.text_input("User name", autocomplete="username")
            password = st.text_input("Password", type="password", autocomplete="current-password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if submitted:
            signed = auth.check_credentials(context.session_factory(), username, password)
            if signed is None:
                st.error(auth.WRONG_CREDENTIALS, icon=":material/lock:")
            else:
                hours = context.store_settings().session_hours
                signed, ticket = auth.begin_browser_session(
                    context.session_factory(), signed, hours
                )
                context.sign_in(signed, ticket)
                st.rerun()
        st.info(auth.first_sign_in_hint(settings.data_dir), icon=":material/key:")
        if not any_user:
            st.warning(
                "No account exists yet. Start the studio with `adn-studio`: it creates the "
                "first admin and prints the password."
            )


render()
