"""Fixtures of the browser tests: the running studio and a headless Chromium page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.stack import REPO_ROOT, Stack, start_stack

CHROMIUM = os.environ.get("ADN_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def studio_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The embedded studio on a free port with a fresh data dir; always stopped afterwards."""
    root = tmp_path_factory.mktemp("studio")
    stack = start_stack(root / "data", root / "logs")
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser_page(studio_stack: Stack) -> Iterator[object]:
    """A Chromium page (1400 px wide) on the studio; closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}; run `make browser-deps` or set ADN_TEST_CHROMIUM"
        )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """Where the journey saves one full-page screenshot per page (the CI artifact folder)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
