"""The product's journeys in a real browser, against the real embedded stack.

Sign in, create a project, upload training images and an inspect batch with a corrupt file,
train a tiny model and wait for it, score the inspect batch, review two images with the
keyboard, move and save the threshold, export; then check the rows in the database. Each page
is saved as ``artifacts/screenshots/<page>.png``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dashboard.auth_routes import SESSION_COOKIE
from db.models import Heatmap, Image, ImageBatch, Job, Score, Threshold, User, Verdict
from tests.browser.driving import (
    JOB_TIMEOUT_S,
    RENDER_TIMEOUT_MS,
    Store,
    choose,
    go_to,
    idle,
    job_status,
    metrics,
    shoot,
    sign_in,
    upload,
)
from tests.browser.stack import ADMIN_PASSWORD, Stack
from tests.fixtures.synthetic import defect_image, textured_image
from worker.report import REFRESH_S, REPORTS_FOLDER

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


def write_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """Eight normal training images; an inspect batch of 3 normal, 3 defect and 1 corrupt."""
    train, inspect = folder / "train", folder / "inspect"
    train.mkdir(parents=True)
    inspect.mkdir(parents=True)
    for i in range(8):
        textured_image(64, seed=i).save(train / f"normal_{i:02d}.png")
    for i in range(3):
        textured_image(64, seed=100 + i).save(inspect / f"good_{i}.png")
        defect_image(64, seed=200 + i)[0].save(inspect / f"defect_{i}.png")
    (inspect / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 40)
    return sorted(train.iterdir()), sorted(inspect.iterdir())


def wait_for_cookie(
    page: Any, name: str, *, present: bool = True, timeout_s: float = 10.0
) -> dict[str, Any]:
    """The browser's cookie ``name`` once the page has set it (or {} once it is gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [dict(c) for c in page.context.cookies() if c["name"] == name]
        if bool(found) == present:
            return found[0] if found else {}
        page.wait_for_timeout(200)
    raise AssertionError(f"the cookie {name!r} was {'never set' if present else 'never deleted'}")


def silence_worker_reports(data_dir: Path) -> None:
    """Make every worker report look ten minutes old, as a hung worker's would, right after
    the worker's own minute-by-minute refresh (so it cannot overwrite this in the meantime)."""
    reports = sorted((data_dir / REPORTS_FOLDER).glob("*.json"))
    assert reports, "the worker never reported"
    for path in reports:
        report = json.loads(path.read_text())
        written = datetime.fromisoformat(report["updated_at"])
        next_refresh_s = REFRESH_S - (datetime.now(UTC) - written).total_seconds()
        if next_refresh_s < 20:
            time.sleep(max(0.0, next_refresh_s) + 2)
            report = json.loads(path.read_text())
        report["updated_at"] = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        path.write_text(json.dumps(report))


def test_journeys_end_to_end(
    studio_stack: Stack, browser_page: Any, screenshots: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    store = Store(studio_stack.data_dir)
    train_files, inspect_files = write_images(tmp_path / "files")
    try:
        # Sign in (the first admin was created by the launcher from ADN_ADMIN_PASSWORD).
        page.goto(studio_stack.url)
        sign_in(page, "wrong-password")
        expect(page.get_by_text("Wrong user name or password")).to_be_visible()
        shoot(page, screenshots, "sign_in")
        sign_in(page, ADMIN_PASSWORD)
        expect(page.get_by_role("heading", name="Projects & upload")).to_be_visible()
        idle(page)
        # The sign-in lives in an HTTP-only cookie, so a reload keeps it.
        cookie = wait_for_cookie(page, SESSION_COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        page.reload()
        expect(page.get_by_role("heading", name="Projects & upload")).to_be_visible()
        idle(page)

        # Journey 1: project, a training batch, an inspect batch with a corrupt file.
        page.get_by_role("textbox", name="Project name").fill("Browser line")
        page.get_by_role("button", name="Create project", exact=True).click()
        expect(page.get_by_text("created and selected")).to_be_visible()
        idle(page)
        upload(page, "normals", train_files, inspect=False)
        assert metrics(page) == {"Accepted": "8", "Duplicates": "0", "Rejected": "0"}
        upload(page, "monday", inspect_files, inspect=True)
        assert metrics(page) == {"Accepted": "6", "Duplicates": "0", "Rejected": "1"}
        rejected = page.locator('[data-testid="stAlert"]').filter(has_text="corrupt.png")
        expect(rejected).to_be_visible()
        shoot(page, screenshots, "projects")

        # Journey 2: train a tiny model (mobilenet_v2 has offline weights) and wait for it.
        go_to(page, "Train", "Train & score")
        page.get_by_text("tiny:", exact=False).first.click()
        idle(page)
        shoot(page, screenshots, "train")
        page.get_by_role("button", name="Queue training", exact=True).click()
        expect(page.get_by_text("Queued 1 job(s)")).to_be_visible()
        go_to(page, "Jobs", "Jobs")
        store.wait_for(
            "the training job to finish",
            lambda: job_status(store, "train") in ("succeeded", "failed", "cancelled"),
            JOB_TIMEOUT_S,
        )
        error = store.scalar(select(Job.error).where(Job.kind == "train"))
        assert job_status(store, "train") == "succeeded", f"{error}\n{studio_stack.logs()}"
        # The live table refreshes itself: no reload needed to see nothing running any more.
        expect(page.locator('[data-testid="stMetric"]').filter(has_text="Running")).to_contain_text(
            "0", timeout=15_000
        )
        idle(page)
        shoot(page, screenshots, "jobs")

        # Journey 3: score the inspect batch.
        go_to(page, "Train", "Train & score")
        queue_scoring = page.get_by_role("button", name="Queue scoring", exact=True)
        expect(queue_scoring).to_be_disabled()  # no batch is chosen behind the user's back
        choose(page, "Batches to score", "monday")
        idle(page)
        expect(queue_scoring).to_be_enabled()
        queue_scoring.click()
        expect(page.get_by_text("Queued 1 job(s)")).to_be_visible()
        store.wait_for(
            "the scoring job to finish",
            lambda: job_status(store, "score") in ("succeeded", "failed", "cancelled"),
            JOB_TIMEOUT_S,
        )
        error = store.scalar(select(Job.error).where(Job.kind == "score"))
        assert job_status(store, "score") == "succeeded", f"{error}\n{studio_stack.logs()}"

        # Journey 4: review two images with the keyboard (a = anomalous, n = normal).
        go_to(page, "Review", "Review")
        expect(page.get_by_text("0 of 6 reviewed")).to_be_visible()
        shoot(page, screenshots, "review")
        page.get_by_role("heading", name="Review", exact=True).click()  # focus off any input
        page.keyboard.press("a")
        store.wait_for(
            "the first verdict", lambda: store.scalar(select(func.count(Verdict.id))) == 1, 30
        )
        idle(page)
        page.keyboard.press("n")
        store.wait_for(
            "the second verdict", lambda: store.scalar(select(func.count(Verdict.id))) == 2, 30
        )
        idle(page)
        expect(page.get_by_text("2 of 6 reviewed")).to_be_visible()

        # Journey 5: move the threshold and save it as a new version.
        go_to(page, "Thresholds", "Thresholds")
        page.locator(".js-plotly-plot").first.wait_for(timeout=RENDER_TIMEOUT_MS)
        thumb_value = page.locator('[data-testid="stSliderThumbValue"]').first
        before = thumb_value.inner_text()
        page.get_by_role("slider").first.focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        idle(page)
        assert thumb_value.inner_text() != before
        page.get_by_role("button", name="Save as new version", exact=True).click()
        expect(page.get_by_text("Saved threshold v2 · all categories")).to_be_visible()
        idle(page)
        shoot(page, screenshots, "thresholds")

        # Journey 6 and 7: the comparison page renders; the export offers the files.
        go_to(page, "Compare", "Compare")
        shoot(page, screenshots, "compare")
        go_to(page, "Export", "Export")
        assert metrics(page)["Images"] == "6" and metrics(page)["Reviewed"] == "2"
        expect(page.get_by_role("button", name="Download CSV")).to_be_visible()
        expect(page.get_by_role("button", name="Download checkpoint")).to_be_visible()
        shoot(page, screenshots, "export")
        # A worker that stopped reporting is visible before anyone queues work for it.
        silence_worker_reports(studio_stack.data_dir)
        go_to(page, "Train", "Train & score")
        expect(page.get_by_text("No worker is listening on queue 'gpu'")).to_be_visible()
        expect(page.get_by_text("is silent for")).to_be_visible()
        shoot(page, screenshots, "worker_silent")
        # A bookmarked page opens directly, still signed in.
        page.goto(f"{studio_stack.url}/users")
        expect(page.get_by_role("heading", name="Users")).to_be_visible()
        idle(page)
        shoot(page, screenshots, "users")
        # Sign-out ends the sign-in: a reload shows the sign-in form again.
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("textbox", name="User name")).to_be_visible()
        wait_for_cookie(page, SESSION_COOKIE, present=False)
        page.reload()
        expect(page.get_by_role("textbox", name="User name")).to_be_visible()
        # A bookmark opened while signed out leads to its page once signed in.
        page.goto(f"{studio_stack.url}/users")
        sign_in(page, ADMIN_PASSWORD)
        expect(page.get_by_role("heading", name="Users")).to_be_visible()
    except Exception:
        shoot(page, screenshots, "failure")
        raise

    # The database holds what the browser did.
    admin_id = store.scalar(select(User.id).where(User.username == "admin"))
    verdicts = store.rows(select(Verdict.label, Verdict.user_id).order_by(Verdict.id))
    assert verdicts == [("anomalous", admin_id), ("normal", admin_id)]
    thresholds = store.rows(
        select(Threshold.version, Threshold.is_active, Threshold.created_by).order_by(
            Threshold.version
        )
    )
    assert [t.version for t in thresholds] == [1, 2]
    assert [t.is_active for t in thresholds] == [False, True]
    assert thresholds[-1].created_by == admin_id
    inspect_batch = store.scalar(select(ImageBatch).where(ImageBatch.name == "monday"))
    assert (inspect_batch.accepted_count, inspect_batch.rejected_count) == (6, 1)
    scored = store.scalar(
        select(func.count(Score.id))
        .join(Image, Image.id == Score.image_id)
        .where(Image.batch_id == inspect_batch.id)
    )
    assert scored == 6
    assert store.scalar(select(func.count(Heatmap.id))) == 6
    store.engine.dispose()
