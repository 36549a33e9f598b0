"""Driving the running studio from a browser test: waits, navigation, uploads, pickers, and a
read-only look at its database."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Job
from db.session import make_engine, make_session_factory, session_scope
from db.settings import StoreSettings

JOB_TIMEOUT_S = 420.0
RENDER_TIMEOUT_MS = 60_000


class Store:
    """Read-only look at the studio's database from the test."""

    def __init__(self, data_dir: Path) -> None:
        settings = StoreSettings.from_values(data_dir=data_dir)
        self.engine = make_engine(settings.database_url)
        self.factory = make_session_factory(self.engine)

    def scalar(self, query: Any) -> Any:
        with session_scope(self.factory) as session:
            return session.scalar(query)

    def rows(self, query: Any) -> list[Any]:
        with session_scope(self.factory) as session:
            return list(session.execute(query).all())

    def wait_for(self, what: str, check: Callable[[], Any], timeout_s: float) -> Any:
        """Poll ``check`` until it returns something truthy, or fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(1.0)
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def idle(page: Any) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_timeout(400)
    page.locator('[data-testid="stStatusWidget"]').wait_for(
        state="hidden", timeout=RENDER_TIMEOUT_MS
    )
    page.wait_for_timeout(300)


def sign_in(page: Any, password: str, user: str = "admin") -> None:
    """Fill the sign-in form on the open page and press Sign in."""
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def go_to(page: Any, link: str, heading: str) -> None:
    """Open a page from the sidebar navigation (keeps the browser session); the page's title
    starts with ``heading``."""
    from playwright.sync_api import expect

    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link, exact=True).click()
    title = re.compile("^" + re.escape(heading))
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    idle(page)


def shoot(page: Any, folder: Path, name: str) -> None:
    """A screenshot of the whole page: the viewport grows to the content, then shrinks back."""
    height = page.evaluate(
        "() => Math.max(...Array.from(document.querySelectorAll("
        '\'[data-testid="stMain"], [data-testid="stMainBlockContainer"]\''
        ")).map(e => e.scrollHeight), 800)"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": int(height) + 120})
    page.wait_for_timeout(500)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


def upload(page: Any, name: str, files: list[Path], *, inspect: bool) -> None:
    """Fill the upload form and wait for the per-file results."""
    from playwright.sync_api import expect

    if inspect:
        page.get_by_text("images to inspect", exact=True).click()
        idle(page)
    page.get_by_role("textbox", name="Batch name").fill(name)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        [str(f) for f in files]
    )
    expect(page.get_by_text(files[-1].name)).to_be_visible()
    page.get_by_role("button", name="Upload batch", exact=True).click()
    expect(page.get_by_text(f"Upload into batch '{name}'")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    idle(page)


def choose(page: Any, label: str, option: str) -> None:
    """Pick the option that contains ``option`` in the multiselect labelled ``label``."""
    field = page.get_by_test_id("stMultiSelect").filter(has_text=label).locator("input")
    field.click()
    # Typing filters the list and opens it even when the click only focused the field.
    field.press_sequentially(option)
    page.get_by_role("option", name=option).first.click()
    page.keyboard.press("Escape")


def metrics(page: Any) -> dict[str, str]:
    """Streamlit metrics on the page as label -> value."""
    out: dict[str, str] = {}
    for text in page.locator('[data-testid="stMetric"]').all_inner_texts():
        parts = [p.strip() for p in text.split("\n") if p.strip()]
        if len(parts) >= 2:
            out[parts[0]] = parts[1]
    return out


def job_status(store: Store, kind: str) -> str | None:
    return store.scalar(select(Job.status).where(Job.kind == kind).order_by(Job.id.desc()))
