"""The images the Compare page lists: where the models' verdicts disagree, the image picker's
order, and the names and files of those images only (a comparison holds none of them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dashboard.services.compare import Comparison
from dashboard.services.store import SessionFactory
from dashboard.services.text import display_name
from db.repositories import ImageFile
from db.repositories import image_files as stored_files
from db.session import session_scope
from db.storage import resolve_data_path


def disagreeing(comparison: Comparison) -> np.ndarray:
    """Positions of the images whose model verdicts (under each model's active threshold) are
    not all the same; a model without a verdict on an image does not count."""
    verdicts = comparison.verdicts
    if verdicts.size == 0:
        return np.empty(0, dtype=np.int64)
    codes = np.full(verdicts.shape, -1, dtype=np.int64)
    labels = sorted({v for v in verdicts.ravel().tolist() if v is not None})
    for code, label in enumerate(labels):
        codes[np.equal(verdicts, label)] = code
    decided = codes >= 0
    highest = np.where(decided, codes, -1).max(axis=0)
    lowest = np.where(decided, codes, len(labels)).min(axis=0)
    return np.flatnonzero(decided.any(axis=0) & (highest != lowest))


def disagreement_frame(
    comparison: Comparison, positions: np.ndarray, files: Mapping[int, ImageFile]
) -> pd.DataFrame:
    """One row per image at ``positions``: id, name, category, truth, and each model's verdict
    with its score."""
    records = []
    for position in positions.tolist():
        image_id = int(comparison.image_ids[position])
        found = files.get(image_id)
        record: dict[str, Any] = {
            "image_id": image_id,
            "image": display_name(found.original_name) if found else f"#{image_id}",
            "category": comparison.categories[position],
            "truth": comparison.truths[position] or "—",
        }
        for index, column in enumerate(comparison.columns):
            verdict = comparison.verdicts[index, position]
            score = comparison.scores[index, position]
            record[column] = f"{verdict or 'no threshold'} ({score:.3g})"
        records.append(record)
    columns = ["image_id", "image", "category", "truth", *comparison.columns]
    return pd.DataFrame(records, columns=columns)


def picker_order(comparison: Comparison, disagreeing_ids: list[int], limit: int) -> list[int]:
    """The image picker's choices: the images where the models disagree, then the highest
    mean score, ``limit`` at most."""
    shown = set(disagreeing_ids)
    by_score = np.argsort(-comparison.scores.mean(axis=0), kind="stable")[:limit]
    top = [int(i) for i in comparison.image_ids[by_score].tolist() if int(i) not in shown]
    return (disagreeing_ids[:limit] + top)[:limit]


def positions_of(comparison: Comparison, image_ids: Iterable[int]) -> dict[int, int]:
    """Where each of ``image_ids`` sits in the comparison (its image ids are ascending)."""
    wanted = list(image_ids)
    found = np.searchsorted(comparison.image_ids, wanted).tolist()
    return dict(zip(wanted, found, strict=True))


def image_files(factory: SessionFactory, image_ids: Iterable[int]) -> dict[int, ImageFile]:
    """Name and stored file of each listed image, by id (one query per 500 ids)."""
    with session_scope(factory) as session:
        return stored_files(session, image_ids)


def image_path(data_dir: Path, found: ImageFile) -> Path:
    """Absolute path of a listed image's file."""
    return resolve_data_path(data_dir, found.storage_path)
