"""The lot-drift loop in a real browser: a model meets a new lot, the studio says so, reviewers
confirm normals of the lot, one action retrains from them, Compare shows parent and child on
images neither trained on, and the child goes to work on the lot.

Screens are saved as ``artifacts/screenshots/drift_<page>.png``.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageEnhance, ImageFilter
from sqlalchemy import func, select

from db.models import Job, ModelVersion, Score, Verdict
from db.models.lineage import TrainingImage
from tests.browser.driving import (
    JOB_TIMEOUT_S,
    Store,
    choose,
    go_to,
    idle,
    job_status,
    shoot,
    sign_in,
    upload,
)
from tests.browser.stack import ADMIN_PASSWORD, Stack
from tests.fixtures.synthetic import textured_image

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

TRAIN_IMAGES = 40  # the tiny schedule holds 10 % out: 4 calibration normals
LOT_IMAGES = 16
CONFIRMED = 6


def new_lot(seed: int) -> Any:
    """A normal part of the new lot: softer focus and half the contrast."""
    picture = textured_image(64, seed=seed).filter(ImageFilter.GaussianBlur(2))
    return ImageEnhance.Contrast(picture).enhance(0.5)


def write_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """Normal training images of the old lot, and a batch of the new lot."""
    train, lot = folder / "train", folder / "lot"
    train.mkdir(parents=True)
    lot.mkdir(parents=True)
    for i in range(TRAIN_IMAGES):
        textured_image(64, seed=i).save(train / f"old_{i:02d}.png")
    for i in range(LOT_IMAGES):
        new_lot(600 + i).save(lot / f"new_{i:02d}.png")
    return sorted(train.iterdir()), sorted(lot.iterdir())


def wait_for_job(store: Store, stack: Stack, kind: str, count: int) -> None:
    """Wait until ``count`` jobs of ``kind`` exist and the newest succeeded."""

    def finished() -> bool:
        jobs = store.scalar(select(func.count(Job.id)).where(Job.kind == kind))
        return jobs >= count and job_status(store, kind) in ("succeeded", "failed", "cancelled")

    store.wait_for(f"{kind} job {count} to finish", finished, JOB_TIMEOUT_S)
    error = store.scalar(select(Job.error).where(Job.kind == kind).order_by(Job.id.desc()))
    assert job_status(store, kind) == "succeeded", f"{error}\n{stack.logs()}"


def has_verdicts(store: Store, count: int) -> bool:
    """Whether the store holds ``count`` verdicts or more."""
    return int(store.scalar(select(func.count(Verdict.id)))) >= count


def pick(page: Any, label: str, option: str | re.Pattern[str]) -> None:
    """Choose ``option`` in the select box labelled ``label``."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option).first.click()
    idle(page)


def score(page: Any, store: Store, stack: Stack, model: str | re.Pattern[str], count: int) -> None:
    """Score the new lot with ``model`` from the Train page; wait for the job."""
    from playwright.sync_api import expect

    # Through another page: a click on the open page's own link may not run it again, and the
    # model that just became ready must be in the list.
    go_to(page, "Jobs", "Jobs")
    go_to(page, "Train", "Train & score")
    pick(page, "Model version", model)
    choose(page, "Batches to score", "lot 2")
    idle(page)
    page.get_by_role("button", name="Queue scoring", exact=True).click()
    expect(page.get_by_text("Queued 1 job(s)")).to_be_visible()
    wait_for_job(store, stack, "score", count)


def test_a_new_lot_is_flagged_and_a_child_learns_it(
    studio_stack: Stack, browser_page: Any, screenshots: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    store = Store(studio_stack.data_dir)
    train_files, lot_files = write_images(tmp_path / "files")
    try:
        page.goto(studio_stack.url)
        sign_in(page, ADMIN_PASSWORD)
        expect(page.get_by_role("heading", name="Projects & upload")).to_be_visible()
        idle(page)
        page.get_by_role("textbox", name="Project name").fill("Drift line")
        page.get_by_role("button", name="Create project", exact=True).click()
        expect(page.get_by_text("created and selected")).to_be_visible()
        idle(page)
        upload(page, "old lot", train_files, inspect=False)
        upload(page, "lot 2", lot_files, inspect=True)

        # The parent: a tiny model of the old lot.
        go_to(page, "Train", "Train & score")
        page.get_by_text("tiny:", exact=False).first.click()
        idle(page)
        page.get_by_role("button", name="Queue training", exact=True).click()
        expect(page.get_by_text("Queued 1 job(s)")).to_be_visible()
        wait_for_job(store, studio_stack, "train", 1)

        # Scoring the new lot: Review warns that the lot drifted, and says what to do.
        score(page, store, studio_stack, re.compile("^#1 "), 1)
        go_to(page, "Review", "Review")
        warning = page.get_by_text("Lot drift:")
        expect(warning).to_be_visible()
        expect(page.get_by_text("Retrain from reviewed normals").first).to_be_visible()
        shoot(page, screenshots, "drift_review")
        go_to(page, "Drift", "Drift")
        shoot(page, screenshots, "drift_page")

        # A reviewer confirms normals of the lot with the keyboard.
        go_to(page, "Review", "Review")
        for count in range(1, CONFIRMED + 1):
            page.get_by_role("heading", name="Review", exact=True).click()  # focus off inputs
            page.keyboard.press("n")
            store.wait_for(f"verdict {count}", partial(has_verdicts, store, count), 30)
            idle(page)

        # One action retrains from them.
        go_to(page, "Train", "Train & score")
        expect(page.get_by_text(f"plus {CONFIRMED} confirmed normal(s)")).to_be_visible()
        shoot(page, screenshots, "drift_retrain")
        page.get_by_role("button", name="Queue retraining", exact=True).click()
        wait_for_job(store, studio_stack, "train", 2)

        # The child goes to work on the lot: it scores it with its own calibration threshold.
        score(page, store, studio_stack, re.compile("child of #1"), 2)
        go_to(page, "Review", "Review")
        pick(page, "Model version", re.compile("child of #1"))
        expect(page.get_by_text(f"{CONFIRMED} of {LOT_IMAGES} reviewed")).to_be_visible()
        shoot(page, screenshots, "drift_child_review")

        # Compare: parent and child on images neither trained on, saying how many were left out.
        go_to(page, "Compare", "Compare")
        pick(page, "Models to compare", re.compile("retrained children"))
        expect(page.get_by_text("child of #1").first).to_be_visible()
        expect(
            page.get_by_text(f"{CONFIRMED} images are left out of every number here")
        ).to_be_visible()
        shoot(page, screenshots, "drift_compare")
    except Exception:
        shoot(page, screenshots, "drift_failure")
        raise

    parent_id, child_id = store.rows(select(ModelVersion.id).order_by(ModelVersion.id))
    child = store.scalar(select(ModelVersion).where(ModelVersion.id == child_id[0]))
    assert child.parent_id == parent_id[0]
    sources = dict(
        store.rows(
            select(TrainingImage.source, func.count())
            .where(TrainingImage.model_version_id == child.id)
            .group_by(TrainingImage.source)
        )
    )
    assert sources == {"parent": TRAIN_IMAGES, "confirmed_normal": CONFIRMED}
    scored = store.scalar(select(func.count(Score.id)).where(Score.model_version_id == child.id))
    assert scored == LOT_IMAGES
    store.engine.dispose()
