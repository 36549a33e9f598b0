"""The review queue: pick a ready model, walk its ranked scores one at a time, save verdicts.

The queue is paginated in SQL (one row per page load); the page keeps only its position and
plain values in session state. Verdicts are appended with the acting user; a viewer is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from db.models import Image, Score, User, Verdict, VerdictLabel
from db.repositories import (
    ScoreOrder,
    ScoreRow,
    add_verdict,
    get_heatmap_png,
    get_model_version,
    get_user,
    list_scores,
    verdict_history,
)
from db.storage import resolve_data_path

logger = logging.getLogger(__name__)

ORDER_LABELS: dict[str, str] = {
    ScoreOrder.SCORE.value: "Highest score first",
    ScoreOrder.UNCERTAIN.value: "Nearest the threshold first (uncertain)",
    ScoreOrder.AUDIT.value: "Random audit of passed images",
}
VERDICT_LABELS: tuple[str, ...] = tuple(v.value for v in VerdictLabel)


def percentile_among(calibration: tuple[float, ...], score: float) -> float | None:
    """Share (%) of calibration normals scoring at or below ``score``; None without any."""
    if not calibration:
        return None
    rank = np.searchsorted(np.asarray(calibration), score, side="right")
    return 100.0 * float(rank) / len(calibration)


@dataclass(frozen=True)
class QueueFilter:
    """Which queue: model, order, category filter, unreviewed only, audit seed."""

    model_version_id: int
    order: str = ScoreOrder.SCORE.value
    category: str | None = None
    unreviewed_only: bool = False
    seed: int = 0

    def key(self) -> str:
        """A text identifying this queue (the page resets its position when it changes)."""
        return (
            f"{self.model_version_id}|{self.order}|{self.category}|"
            f"{self.unreviewed_only}|{self.seed}"
        )


@dataclass(frozen=True)
class QueueSlot:
    """The item at the current position (None past the end) and the queue's progress."""

    item: ScoreRow | None
    position: int
    size: int  # items in the queue as filtered now
    total: int  # items in the queue without the "only unreviewed" filter
    reviewed: int  # of ``total``, how many have a verdict


def _page(session: Session, queue: QueueFilter, *, reviewed: bool | None, offset: int) -> Any:
    return list_scores(
        session,
        model_version_id=queue.model_version_id,
        order=queue.order,
        category=queue.category,
        reviewed=reviewed,
        seed=queue.seed,
        limit=1,
        offset=offset,
    )


def _scored_count(session: Session, queue: QueueFilter, *, reviewed_only: bool) -> int:
    """Scores of the model (in the category), optionally only of images with a verdict.

    A plain count without the threshold and latest-verdict joins of the queue query: an image
    has a current verdict exactly when it has any verdict.
    """
    query = (
        select(func.count())
        .select_from(Score)
        .join(Image, Image.id == Score.image_id)
        .where(Score.model_version_id == queue.model_version_id)
    )
    if queue.category is not None:
        query = query.where(Image.category == queue.category)
    if reviewed_only:
        query = query.where(exists().where(Verdict.image_id == Score.image_id))
    return int(session.scalar(query) or 0)


def queue_slot(session: Session, queue: QueueFilter, position: int) -> QueueSlot:
    """Load only the row at ``position`` plus the counts for the progress indicator."""
    position = max(0, position)
    current = _page(
        session, queue, reviewed=False if queue.unreviewed_only else None, offset=position
    )
    if queue.order == ScoreOrder.AUDIT:
        # The audit queue holds only passed images: count it with the same query.
        if queue.unreviewed_only:
            total = _page(session, queue, reviewed=None, offset=0).total
            reviewed = total - current.total
        else:
            total = current.total
            reviewed = _page(session, queue, reviewed=True, offset=0).total
    elif queue.unreviewed_only:
        total = _scored_count(session, queue, reviewed_only=False)
        reviewed = total - current.total
    else:
        total = current.total
        reviewed = _scored_count(session, queue, reviewed_only=True)
    item = current.items[0] if current.items else None
    return QueueSlot(item, position, current.total, total, reviewed)


def next_position(position: int, *, unreviewed_only: bool, saved: bool) -> int:
    """Where to go after an action: a saved verdict drops out of an "only unreviewed" queue,
    so the next item slides into the same position; otherwise move one on."""
    return position if (unreviewed_only and saved) else position + 1


def save_verdict(
    session: Session,
    *,
    actor: User,
    image_id: int,
    label: str,
    model_version_id: int | None,
    note: str | None = None,
) -> int:
    """Append a verdict by ``actor`` (reviewer or admin; else ``PermissionDeniedError``)."""
    verdict = add_verdict(
        session,
        image_id=image_id,
        label=label,
        user=actor,
        note=note,
        model_version_id=model_version_id,
    )
    logger.info("verdict %s on image %s by %s", label, image_id, actor.username)
    return int(verdict.id)


@dataclass(frozen=True)
class HistoryEntry:
    """One verdict of an image: what, who, when (newest first in lists)."""

    label: str
    username: str
    at: datetime
    note: str | None


def history(session: Session, image_id: int) -> list[HistoryEntry]:
    """Every verdict of an image, newest (= current) first, with reviewer names."""
    verdicts = verdict_history(session, image_id)
    names = {uid: get_user(session, uid).username for uid in {v.user_id for v in verdicts}}
    return [HistoryEntry(v.label, names[v.user_id], v.created_at, v.note) for v in verdicts]


def heatmap_png(session: Session, *, image_id: int, model_version_id: int) -> bytes | None:
    """The stored heatmap PNG of (image, model), or None."""
    return get_heatmap_png(session, image_id=image_id, model_version_id=model_version_id)


def image_path(data_dir: Path, item: ScoreRow) -> Path:
    """Absolute path of the queue item's image file."""
    return resolve_data_path(data_dir, item.storage_path)


def model_name(session: Session, model_version_id: int) -> str:
    """The name of a model version (for messages)."""
    return get_model_version(session, model_version_id).name
