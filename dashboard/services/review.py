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
from sqlalchemy.orm import Session

from dashboard.services.store import SessionFactory
from db.models import VerdictLabel
from db.repositories import (
    ScoreOrder,
    ScoreRow,
    add_verdict,
    count_scores,
    get_heatmap_pngs,
    get_user,
    list_categories,
    list_scores,
    usernames,
    verdict_history,
)
from db.session import session_scope
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
    """Which queue: model, order, category and batch filters, unreviewed only, audit seed."""

    model_version_id: int
    order: str = ScoreOrder.SCORE.value
    category: str | None = None
    unreviewed_only: bool = False
    seed: int = 0
    batch_id: int | None = None

    def key(self) -> str:
        """A text identifying this queue (the page resets its position when it changes)."""
        return (
            f"{self.model_version_id}|{self.order}|{self.category}|"
            f"{self.unreviewed_only}|{self.seed}|{self.batch_id}"
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
        batch_id=queue.batch_id,
        reviewed=reviewed,
        seed=queue.seed,
        limit=1,
        offset=offset,
    )


def _queue_slot(session: Session, queue: QueueFilter, position: int) -> QueueSlot:
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
        total = count_scores(
            session,
            model_version_id=queue.model_version_id,
            category=queue.category,
            batch_id=queue.batch_id,
        )
        reviewed = total - current.total
    else:
        total = current.total
        reviewed = count_scores(
            session,
            model_version_id=queue.model_version_id,
            category=queue.category,
            batch_id=queue.batch_id,
            reviewed_only=True,
        )
    item = current.items[0] if current.items else None
    return QueueSlot(item, position, current.total, total, reviewed)


def next_position(position: int, *, unreviewed_only: bool, saved: bool) -> int:
    """Where to go after an action: a saved verdict drops out of an "only unreviewed" queue,
    so the next item slides into the same position; otherwise move one on."""
    return position if (unreviewed_only and saved) else position + 1


def save_verdict(
    factory: SessionFactory,
    *,
    actor_id: int,
    image_id: int,
    label: str,
    model_version_id: int | None,
    note: str | None = None,
) -> int:
    """Append a verdict by the user ``actor_id`` (reviewer or admin; else
    ``PermissionDeniedError``) and commit it; returns the verdict id."""
    with session_scope(factory, immediate=True) as session:
        actor = get_user(session, actor_id)
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


def _history(session: Session, image_id: int) -> list[HistoryEntry]:
    """Every verdict of an image, newest (= current) first, with reviewer names."""
    verdicts = verdict_history(session, image_id)
    names = usernames(session, {v.user_id for v in verdicts})
    return [
        HistoryEntry(v.label, names.get(v.user_id, f"user {v.user_id}"), v.created_at, v.note)
        for v in verdicts
    ]


@dataclass(frozen=True)
class QueueView:
    """What the review page shows at one position: the slot, its heatmaps (by method, the
    default first) and its history."""

    slot: QueueSlot
    heatmap_pngs: dict[str, bytes]
    history: list[HistoryEntry]


def queue_view(factory: SessionFactory, queue: QueueFilter, position: int) -> QueueView:
    """Load only the row at ``position``, the progress counts, and that image's heatmaps and
    verdict history, in one transaction."""
    with session_scope(factory) as session:
        slot = _queue_slot(session, queue, position)
        item = slot.item
        if item is None:
            return QueueView(slot, {}, [])
        pngs = get_heatmap_pngs(
            session, image_id=item.image_id, model_version_id=item.model_version_id
        )
        return QueueView(slot, pngs, _history(session, item.image_id))


def categories(factory: SessionFactory, project_id: int) -> list[str]:
    """Distinct non-empty image categories of a project, sorted (for the queue filter)."""
    with session_scope(factory) as session:
        return list_categories(session, project_id)


def image_path(data_dir: Path, item: ScoreRow) -> Path:
    """Absolute path of the queue item's image file."""
    return resolve_data_path(data_dir, item.storage_path)
