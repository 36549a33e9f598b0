"""HTTP routes beside the Streamlit app that hold a sign-in in an HTTP-only cookie.

After a sign-in the page posts its one-time ticket to ``/auth/session``, which answers with the
session cookie; the app reads that cookie when a reload or a bookmark opens a new session.
``/auth/sign-out`` ends the sign-in server-side and deletes the cookie. Both take JSON only, from
the studio's own pages, so another site cannot post to them from a form.
"""

from __future__ import annotations

import logging
from functools import cache
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboard.services import auth
from dashboard.services.store import SessionFactory
from db.session import make_engine, make_session_factory
from db.settings import StoreSettings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "adn_session"
SESSION_PATH = "/auth/session"
SIGN_OUT_PATH = "/auth/sign-out"


@cache
def _factory(url: str) -> SessionFactory:
    return make_session_factory(make_engine(url))


def store_factory() -> SessionFactory:
    """The session factory of the configured database (one per process)."""
    return _factory(StoreSettings.from_env().database_url)


def _refusal(request: Request) -> JSONResponse | None:
    """Why a request is refused: not JSON, or sent from another site's page."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"error": "send JSON"}, status_code=415)
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
        return JSONResponse({"error": "cross-site request refused"}, status_code=403)
    return None


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


async def trade_ticket(request: Request) -> Response:
    """Trade a fresh one-time ticket for the HTTP-only session cookie."""
    if (refused := _refusal(request)) is not None:
        return refused
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    ticket = body.get("ticket") if isinstance(body, dict) else None
    if not isinstance(ticket, str) or not ticket:
        return JSONResponse({"error": "no ticket"}, status_code=400)
    grant = await run_in_threadpool(auth.grant_cookie, store_factory(), ticket)
    if grant is None:
        return JSONResponse({"error": "the ticket is unknown, used or expired"}, status_code=403)
    response = JSONResponse({"ok": True})
    response.set_cookie(
        SESSION_COOKIE,
        grant.token,
        max_age=grant.max_age_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


async def sign_out(request: Request) -> Response:
    """End the sign-in of this browser's cookie and delete the cookie."""
    if (refused := _refusal(request)) is not None:
        return refused
    token = request.cookies.get(SESSION_COOKIE, "")
    await run_in_threadpool(auth.end_browser_session, store_factory(), token=token)
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


ROUTES = [
    Route(SESSION_PATH, trade_ticket, methods=["POST"]),
    Route(SIGN_OUT_PATH, sign_out, methods=["POST"]),
]
