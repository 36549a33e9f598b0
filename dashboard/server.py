"""The studio's web server: the Streamlit app plus the sign-in cookie routes.

``streamlit run dashboard/server.py`` (what ``adn-studio`` runs) serves both; ``app.py`` alone
runs the pages without cookies, so a reload then asks to sign in again.
"""

from __future__ import annotations

import streamlit as st

from dashboard.auth_routes import ROUTES

app = st.App("app.py", routes=ROUTES)
