"""A studio store with many scored images, filled by bulk inserts (100,000 images in a minute).

One project and inspect batch; ``images`` image rows over a few dozen real PNG files (rows share
files, each row has its own content hash); two ready model versions (variants none and CBAM)
that scored every image, each score with a small heatmap PNG; known labels on every image; an
active threshold per model; reviewer verdicts on ``verdicts`` images; an admin to sign in with.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select, text

from bench.store_pictures import blob_heatmaps, png_bytes
from db.migrate import upgrade_to_head
from db.models import Heatmap, Image, Score, Verdict, utcnow
from db.repositories import (
    create_batch,
    create_model_version,
    create_project,
    ensure_first_admin,
    mark_model_ready,
    save_threshold,
)
from db.session import make_engine, make_session_factory, session_scope
from db.storage import image_relative_path, store_image_bytes
from jobspec import DEFAULT_HEATMAP_METHOD

CATEGORIES = ("mono", "poly")
DEFECT_SHARE = 0.12
FILES = 48
CHUNK = 5000
ADMIN = "admin"
ADMIN_PASSWORD = "bench-admin-pass-1"


@dataclass(frozen=True)
class BulkStore:
    """What was built, for the report."""

    images: int
    verdicts: int
    models: int
    seconds: float


def _image_files(data_dir: Path, size: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """A few real cell-like PNGs on disk: (storage path, bytes) each."""
    out = []
    for _ in range(FILES):
        base = rng.integers(70, 190, size=(size, size)).astype(np.uint8)
        data = png_bytes(np.stack([base] * 3, axis=-1))
        digest = hashlib.sha256(data).hexdigest()
        store_image_bytes(data_dir, data, digest, "png")
        out.append((image_relative_path(digest, "png"), len(data)))
    return out


def _chunks(rows: list[dict[str, object]]) -> Iterator[list[dict[str, object]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def build(
    database_url: str,
    data_dir: Path,
    *,
    images: int,
    verdicts: int,
    image_size: int = 96,
    seed: int = 0,
) -> BulkStore:
    """Migrate ``database_url`` and fill it; image files go under ``data_dir``."""
    started = time.perf_counter()
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    rng = np.random.default_rng(seed)
    files = _image_files(data_dir, image_size, rng)
    heatmaps = blob_heatmaps(image_size, 16, rng)
    defective = rng.random(images) < DEFECT_SHARE
    now = utcnow()
    with session_scope(factory) as session:
        admin = ensure_first_admin(session, ADMIN, ADMIN_PASSWORD)
        assert admin is not None
        project = create_project(session, name="Bench line", actor=admin)
        batch = create_batch(
            session, project_id=project.id, name="week 48", purpose="inspect", actor=admin
        )
        image_rows: list[dict[str, object]] = [
            {
                "project_id": project.id,
                "batch_id": batch.id,
                "sha256": hashlib.sha256(f"bench-{index}".encode()).hexdigest(),
                "storage_path": files[index % FILES][0],
                "original_name": f"{CATEGORIES[index % 2]}/cell_{index:06d}.png",
                "format": "PNG",
                "width": image_size,
                "height": image_size,
                "mode": "RGB",
                "size_bytes": files[index % FILES][1],
                "category": CATEGORIES[index % 2],
                "known_label": "anomalous" if defective[index] else "normal",
                "created_at": now,
            }
            for index in range(images)
        ]
        for chunk in _chunks(image_rows):
            session.execute(insert(Image), chunk)
        image_ids = list(
            session.scalars(select(Image.id).where(Image.batch_id == batch.id).order_by(Image.id))
        )
        batch.file_count = batch.accepted_count = images
        model_ids = []
        for variant, shift in (("none", 2.0), ("cbam", 2.4)):
            model = create_model_version(
                session,
                project_id=project.id,
                name=f"line model · {variant}",
                variant=variant,
                backbone="mobilenet_v2",
                actor=admin,
            )
            calibration = sorted(rng.normal(0.0, 1.0, 200).tolist())
            mark_model_ready(
                session,
                model.id,
                artifact_path=f"models/{model.id}/model.adn",
                calibration={"scores": calibration, "quantile": 0.99, "threshold": 2.3},
            )
            values = rng.normal(0.0, 1.0, images) + shift * defective
            ranks = np.searchsorted(np.asarray(calibration), values, side="right")
            score_rows: list[dict[str, object]] = [
                {
                    "image_id": image_id,
                    "model_version_id": model.id,
                    "score": float(values[i]),
                    "percentile": float(100.0 * ranks[i] / len(calibration)),
                    "scored_at": now,
                }
                for i, image_id in enumerate(image_ids)
            ]
            for chunk in _chunks(score_rows):
                session.execute(insert(Score), chunk)
            score_ids = list(
                session.scalars(
                    select(Score.id).where(Score.model_version_id == model.id).order_by(Score.id)
                )
            )
            heatmap_rows: list[dict[str, object]] = [
                {
                    "score_id": score_id,
                    "method": DEFAULT_HEATMAP_METHOD.value,
                    "png": heatmaps[i % len(heatmaps)],
                    "width": image_size,
                    "height": image_size,
                    "created_at": now,
                }
                for i, score_id in enumerate(score_ids)
            ]
            for chunk in _chunks(heatmap_rows):
                session.execute(insert(Heatmap), chunk)
            save_threshold(session, model_version_id=model.id, value=1.5, method="manual")
            model_ids.append(model.id)
        reviewed = rng.choice(images, size=min(verdicts, images), replace=False)
        verdict_rows: list[dict[str, object]] = [
            {
                "image_id": image_ids[i],
                "label": "anomalous" if defective[i] else "normal",
                "user_id": admin.id,
                "model_version_id": model_ids[0],
                "created_at": now,
            }
            for i in sorted(reviewed.tolist())
        ]
        for chunk in _chunks(verdict_rows):
            session.execute(insert(Verdict), chunk)
    if engine.dialect.name == "postgresql":
        # A live server's autovacuum gathers statistics after bulk inserts like these; the
        # planner then picks other plans than on an unanalysed store, and the pages are timed
        # with the plans a line's database would use.
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    engine.dispose()
    return BulkStore(images, len(verdict_rows), len(model_ids), time.perf_counter() - started)
