"""The cookie routes: a one-time ticket buys an HTTP-only cookie; sign-out ends it server-side."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard import auth_routes
from dashboard.auth_routes import ROUTES, SESSION_COOKIE, SESSION_PATH, SIGN_OUT_PATH
from dashboard.services import auth
from tests.dashboard.conftest import StudioUser

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, studio_factory) -> TestClient:
    monkeypatch.setattr(auth_routes, "store_factory", lambda: studio_factory)
    return TestClient(Starlette(routes=ROUTES), base_url="http://studio.test")


def _ticket(factory, user: StudioUser) -> str:
    signed = auth.SignedIn(user.id, user.username, user.role)
    return auth.begin_browser_session(factory, signed, hours=2)[1]


def test_ticket_buys_an_http_only_cookie_once(
    client: TestClient, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    ticket = _ticket(studio_factory, studio_users["viewer"])
    answer = client.post(SESSION_PATH, json={"ticket": ticket})
    assert answer.status_code == 200
    header = answer.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "max-age=" in header
    token = answer.cookies[SESSION_COOKIE]
    assert token != ticket
    resumed = auth.resume(studio_factory, token)
    assert resumed is not None and resumed.username == "viewer"
    again = client.post(SESSION_PATH, json={"ticket": ticket})
    assert again.status_code == 403 and SESSION_COOKIE not in again.cookies


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        (
            {
                "content": "ticket=x",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            415,
        ),
        ({"content": "{not json", "headers": JSON}, 400),
        ({"json": {"ticket": ""}}, 400),
        ({"json": ["ticket"]}, 400),
        ({"json": {"ticket": "made-up"}}, 403),
    ],
)
def test_bad_requests_are_refused(client: TestClient, kwargs: dict, status: int) -> None:
    answer = client.post(SESSION_PATH, **kwargs)
    assert answer.status_code == status and SESSION_COOKIE not in answer.cookies


def test_other_sites_cannot_post(
    client: TestClient, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    ticket = _ticket(studio_factory, studio_users["viewer"])
    answer = client.post(
        SESSION_PATH, json={"ticket": ticket}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert client.post(SESSION_PATH, json={"ticket": ticket}).status_code == 200  # still unused


def test_sign_out_ends_the_sign_in_and_deletes_the_cookie(
    client: TestClient, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    ticket = _ticket(studio_factory, studio_users["admin"])
    token = client.post(SESSION_PATH, json={"ticket": ticket}).cookies[SESSION_COOKIE]
    answer = client.post(SIGN_OUT_PATH, json={})
    assert answer.status_code == 200
    assert (
        'adn_session="";' in answer.headers["set-cookie"]
        or "max-age=0" in answer.headers["set-cookie"].lower()
    )
    assert auth.resume(studio_factory, token) is None
