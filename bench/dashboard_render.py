"""Render time of the review and thresholds pages on a store with thousands of scored images.

Builds a temporary SQLite store (synthetic images on disk, a ready model version with a score
and a small heatmap PNG per image, an active threshold and a few hundred reviewer verdicts),
then renders the pages with Streamlit's AppTest: the first run of a new session separately,
then the median of several reruns. Writes a Markdown table.

    python bench/dashboard_render.py                       # 5,000 images, 300 verdicts
    python bench/dashboard_render.py --images 500 --runs 3 # a quick check
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

logger = logging.getLogger("bench.dashboard_render")

CATEGORIES = ("screw", "washer")
DEFECT_SHARE = 0.12


@dataclass(frozen=True)
class Store:
    """What the benchmark built: ids the pages need."""

    project_id: int
    model_id: int
    reviewer: object  # CurrentUser
    images: int
    verdicts: int
    image_size: int
    heatmap_bytes: int


def build_store(data_dir: Path, *, images: int, verdicts: int, image_size: int, seed: int) -> Store:
    """Fill a fresh store under ``data_dir`` (the ``ADN_*`` variables must point at it)."""
    from bench.store_pictures import blob_heatmaps, png_bytes
    from dashboard.context import CurrentUser
    from db.migrate import upgrade_to_head
    from db.models import Image
    from db.repositories import (
        add_verdict,
        create_batch,
        create_model_version,
        create_project,
        create_user,
        mark_model_ready,
        save_threshold,
        upsert_score,
    )
    from db.session import make_engine, make_session_factory, session_scope
    from db.settings import StoreSettings
    from db.storage import image_relative_path, store_image_bytes
    from jobspec import DEFAULT_HEATMAP_METHOD

    settings = StoreSettings.from_env()
    upgrade_to_head(settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, size=(image_size, image_size, 3)).astype(np.int16)
    heatmaps = blob_heatmaps(image_size, 16, rng)
    started = time.perf_counter()
    with session_scope(factory) as session:
        reviewer = create_user(
            session, username="bench-reviewer", password="bench-pass-1", role="reviewer"
        )
        project = create_project(session, name="Bench line", actor=reviewer)
        batch = create_batch(
            session, project_id=project.id, name="bench batch", purpose="inspect", actor=reviewer
        )
        defective = rng.random(images) < DEFECT_SHARE
        rows = []
        for index in range(images):
            noise = rng.integers(-6, 7, size=base.shape)
            data = png_bytes(np.clip(base + noise, 0, 255).astype(np.uint8))
            digest = hashlib.sha256(data).hexdigest()
            store_image_bytes(settings.data_dir, data, digest, "png")
            rows.append(
                Image(
                    project_id=project.id,
                    batch_id=batch.id,
                    sha256=digest,
                    storage_path=image_relative_path(digest, "png"),
                    original_name=f"{CATEGORIES[index % 2]}/test/{index:05d}.png",
                    format="PNG",
                    width=image_size,
                    height=image_size,
                    mode="RGB",
                    size_bytes=len(data),
                    category=CATEGORIES[index % 2],
                    known_label="anomalous" if defective[index] else "normal",
                )
            )
        session.add_all(rows)
        session.flush()
        model = create_model_version(
            session,
            project_id=project.id,
            name="bench cbam",
            variant="cbam",
            backbone="mobilenet_v2",
            actor=reviewer,
        )
        calibration = sorted(rng.normal(0.0, 1.0, 200).tolist())
        mark_model_ready(
            session,
            model.id,
            artifact_path=f"models/{model.id}/model.adn",
            calibration={"scores": calibration},
        )
        scores = rng.normal(0.0, 1.0, images) + 2.2 * defective
        sorted_calibration = np.asarray(calibration)
        for index, image in enumerate(rows):
            rank = np.searchsorted(sorted_calibration, scores[index], side="right")
            upsert_score(
                session,
                image_id=image.id,
                model_version_id=model.id,
                score=float(scores[index]),
                percentile=100.0 * rank / len(calibration),
                heatmap_pngs={DEFAULT_HEATMAP_METHOD.value: heatmaps[index % len(heatmaps)]},
            )
        save_threshold(
            session, model_version_id=model.id, value=1.5, method="manual", actor=reviewer
        )
        picker = random.Random(seed)
        for index in picker.sample(range(images), verdicts):
            label = "anomalous" if defective[index] else "normal"
            if picker.random() < 0.05:
                label = "unsure"
            add_verdict(
                session,
                image_id=rows[index].id,
                label=label,
                user=reviewer,
                model_version_id=model.id,
            )
        store = Store(
            project_id=project.id,
            model_id=model.id,
            reviewer=CurrentUser(reviewer.id, reviewer.username, reviewer.role),
            images=images,
            verdicts=verdicts,
            image_size=image_size,
            heatmap_bytes=int(np.mean([len(h) for h in heatmaps])),
        )
    engine.dispose()
    logger.info("store built in %.1f s", time.perf_counter() - started)
    return store


@dataclass(frozen=True)
class Case:
    """One page in one state: how to prepare the AppTest before timing its runs."""

    page: str
    state: str
    prepare: Callable[[object], None]


def _set(key: str, value: object) -> Callable[[object], None]:
    def prepare(app: object) -> None:
        app.session_state[key] = value  # type: ignore[attr-defined]

    return prepare


def _nothing(app: object) -> None:
    return None


def cases(store: Store) -> list[Case]:
    """The measured page states."""
    slider = f"adn_thr_value_{store.model_id}_all"
    return [
        Case("review", "highest score first, only unreviewed", _nothing),
        Case("review", "nearest the threshold first", _set("adn_review_order", "uncertain")),
        Case("review", "random audit of passed images", _set("adn_review_order", "audit")),
        Case("thresholds", "reviewer verdicts", _nothing),
        Case("thresholds", "verdicts + known labels (all images)", _set("adn_thr_known", True)),
        Case("thresholds", "review band, known labels", _band(slider, store)),
    ]


def _band(slider: str, store: Store) -> Callable[[object], None]:
    def prepare(app: object) -> None:
        state = app.session_state  # type: ignore[attr-defined]
        state["adn_thr_known"] = True
        state[f"adn_thr_use_band_{store.model_id}_all"] = True
        state[f"adn_thr_band_{store.model_id}_all"] = (1.0, 2.0)

    return prepare


@dataclass(frozen=True)
class Timing:
    """First run of a new session and the reruns after it, in seconds."""

    case: Case
    first: float
    reruns: list[float]


def measure(store: Store, case: Case, runs: int) -> Timing:
    """Render ``case`` once in a new session, then ``runs`` more times."""
    from streamlit.testing.v1 import AppTest

    from dashboard.context import PROJECT_KEY, USER_KEY

    app = AppTest.from_file(
        str(REPO_ROOT / "dashboard" / "pages" / f"{case.page}.py"), default_timeout=120
    )
    app.session_state[USER_KEY] = store.reviewer
    app.session_state[PROJECT_KEY] = store.project_id
    case.prepare(app)
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        app.run()
        times.append(time.perf_counter() - started)
        if app.exception:
            raise RuntimeError(f"{case.page} ({case.state}) failed: {app.exception[0].value}")
    return Timing(case, times[0], times[1:])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def report(
    store: Store, timings: list[Timing], command: str, build_seconds: float, load: str
) -> str:
    """The Markdown result table with the machine, versions and the command."""
    packages = ("streamlit", "sqlalchemy", "numpy", "pandas", "plotly", "pillow")
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    system = f"{platform.system()} {platform.release()}"
    side = store.image_size
    lines = [
        "# Dashboard render time",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {os.cpu_count()} CPUs, {_cpu_model()}, {system}",
        f"- Load average (1, 5, 15 min) before measuring: {load}; after: {_load()} "
        "(other processes on a shared machine inflate the times)",
        f"- Python {platform.python_version()}; {versions}",
        f"- Store: SQLite, {store.images:,} scored images ({side}×{side} PNG "
        f"files) with a heatmap PNG each (~{store.heatmap_bytes} bytes), {store.verdicts} "
        f"reviewer verdicts, known labels on every image, one active threshold "
        f"(built in {build_seconds:.1f} s)",
        f"- Command: `{command}`",
        "- Method: Streamlit AppTest renders the page script as a signed-in reviewer; *first* is "
        "the first run of a new session (cold caches, SQL and figures from scratch), *median* "
        "the median of the reruns after it.",
        "",
        "| Page | State | First run (s) | Median rerun (s) | Min (s) | Max (s) | Reruns |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for timing in timings:
        lines.append(
            f"| {timing.case.page} | {timing.case.state} | {timing.first:.3f} | "
            f"{statistics.median(timing.reruns):.3f} | {min(timing.reruns):.3f} | "
            f"{max(timing.reruns):.3f} | {len(timing.reruns)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build the store, measure, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--verdicts", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7, help="reruns after the first run")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "bench" / "results" / "dashboard-render.md"
    )
    parser.add_argument(
        "--keep-store",
        type=Path,
        default=None,
        help="build the store in this (new) folder and keep it, instead of a temporary one",
    )
    args = parser.parse_args(argv)
    if args.verdicts > args.images:
        parser.error("--verdicts cannot exceed --images")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    logging.getLogger("db").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("dashboard").setLevel(logging.WARNING)
    command = "python bench/dashboard_render.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    with tempfile.TemporaryDirectory(prefix="adn-bench-") as folder:
        data_dir = args.keep_store.resolve() if args.keep_store else Path(folder) / "data"
        if data_dir.exists() and any(data_dir.iterdir()):
            parser.error(f"{data_dir} is not empty; give a new folder to --keep-store")
        os.environ["ADN_DATA_DIR"] = str(data_dir)
        os.environ["ADN_DATABASE_URL"] = f"sqlite:///{data_dir / 'studio.db'}"
        started = time.perf_counter()
        store = build_store(
            data_dir,
            images=args.images,
            verdicts=args.verdicts,
            image_size=args.image_size,
            seed=args.seed,
        )
        build_seconds = time.perf_counter() - started
        load = _load()
        timings = []
        for case in cases(store):
            timing = measure(store, case, args.runs)
            logger.info(
                "%s · %s: first %.3f s, median %.3f s",
                case.page,
                case.state,
                timing.first,
                statistics.median(timing.reruns),
            )
            timings.append(timing)
    text = report(store, timings, command.strip(), build_seconds, load)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
