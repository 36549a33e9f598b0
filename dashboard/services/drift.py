"""Lot drift per scored batch: each batch's scores against the model's calibration normals.

The figures of a batch leave out its known anomalies (the current reviewer verdict says
anomalous, else the label the image was uploaded with; "unsure" is no verdict): a batch with
defects that were found should not read as drift. Images nobody labelled stay in, so a batch full
of unfound defects can still read as drifted; the known normals above the calibration p99 (images
confirmed normal that the threshold would flag) tell the two apart. The statistics and the drift
rule are in ``drift_statistics``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from dashboard.services import drift_statistics as stats_module
from dashboard.services.drift_statistics import SHIFT, TAIL, DriftError, DriftStats, Reference
from dashboard.services.store import SessionFactory
from dashboard.services.text import display_name
from db.repositories import (
    BatchScores,
    ScoredBatch,
    batch_scores,
    current_labels,
    current_labels_between,
    get_batch,
    get_model_version,
    newest_score,
    scored_batches,
)
from db.session import session_scope

logger = logging.getLogger(__name__)

HISTOGRAM_BINS = 40
REASON_TEXT = {
    TAIL: "more scores above the calibration p99 than chance allows",
    SHIFT: "the score distribution moved (KS and PSI)",
}


@dataclass(frozen=True)
class BatchDrift:
    """One scored batch of a model in a scope: its counts, figures and drift decision."""

    batch_id: int
    name: str
    purpose: str
    created_at: datetime  # upload: the lot's place in time
    scored_at: datetime  # the model's newest score in the batch
    scores: int  # every score of the batch in the scope
    known_anomalous: int  # left out of the figures
    known_normal: int
    normals_above: int  # known normals above the calibration p99 cut
    stats: DriftStats  # on the scores without the known anomalies
    histogram: tuple[int, ...] = ()  # those scores on the view's edges

    @property
    def drifted(self) -> bool:
        return self.stats.drifted


@dataclass(frozen=True)
class DriftView:
    """Every scored batch of a model in a scope against the model's calibration normals."""

    model_version_id: int
    category: str | None
    calibration_size: int
    cut: float  # the calibration p99 (the rank-th highest normal)
    rank: int
    expected_share: float  # of an undrifted batch above the cut
    edges: tuple[float, ...]
    calibration_histogram: tuple[int, ...]
    batches: tuple[BatchDrift, ...]  # oldest upload first

    @property
    def newest_scored(self) -> BatchDrift | None:
        """The batch the model scored last (what the inspectors look at now)."""
        if not self.batches:
            return None
        return max(self.batches, key=lambda b: (b.scored_at, b.batch_id))


def _reference(calibration: dict[str, Any] | None) -> Reference | None:
    """The drift reference of the engine's ``Calibration.to_dict()`` layout, or None."""
    values = (calibration or {}).get("scores") or []
    try:
        return stats_module.reference([float(v) for v in values])
    except DriftError:
        return None
    except (TypeError, ValueError):
        logger.warning("ignoring unreadable calibration scores")
        return None


def _truths(rows: BatchScores, labels: dict[int, str]) -> np.ndarray:
    """Per score: "anomalous", "normal" or "" by the current verdict, else the upload label."""
    truths = np.array([k or "" for k in rows.known_labels], dtype=object)
    decided = {i: v for i, v in labels.items() if v in ("anomalous", "normal")}
    if decided:
        image_ids = np.asarray(rows.image_ids, dtype=np.int64)
        verdicts = np.array([decided.get(i, "") for i in image_ids.tolist()], dtype=object)
        truths = np.where(verdicts != "", verdicts, truths)
    return truths


def _batch_drift(
    ref: Reference,
    batch: ScoredBatch,
    scores: np.ndarray,
    truths: np.ndarray,
    edges: np.ndarray | None,
) -> BatchDrift:
    anomalous = truths == "anomalous"
    normal = truths == "normal"
    kept = scores[~anomalous]
    histogram = () if edges is None else tuple(int(c) for c in np.histogram(kept, edges)[0])
    return BatchDrift(
        batch_id=batch.id,
        name=display_name(batch.name),
        purpose=batch.purpose,
        created_at=batch.created_at,
        scored_at=batch.scored_at,
        scores=int(scores.size),
        known_anomalous=int(anomalous.sum()),
        known_normal=int(normal.sum()),
        normals_above=int((scores[normal] > ref.cut).sum()),
        stats=stats_module.drift_stats(ref, kept),
        histogram=histogram,
    )


def _columns(rows: BatchScores, labels: dict[int, str]) -> tuple[np.ndarray, ...]:
    batch_ids = np.asarray(rows.batch_ids, dtype=np.int64)
    scores = np.asarray(rows.scores, dtype=np.float64)
    return batch_ids, scores, _truths(rows, labels)


def drift_view(
    factory: SessionFactory, model_version_id: int, category: str | None
) -> DriftView | None:
    """The drift of every batch a model scored (images of ``category`` when given), or None
    when the model stored no calibration normals. Four queries in one transaction."""
    with session_scope(factory) as session:
        ref = _reference(get_model_version(session, model_version_id).calibration_json)
        if ref is None:
            return None
        batches = scored_batches(session, model_version_id=model_version_id, category=category)
        rows = batch_scores(session, model_version_id=model_version_id, category=category)
        labels = current_labels(session, model_version_id=model_version_id) if rows else {}
    batch_ids, scores, truths = _columns(rows, labels)
    edges = np.histogram_bin_edges(
        np.concatenate([ref.scores, scores[truths != "anomalous"]]), bins=HISTOGRAM_BINS
    )
    order = np.argsort(batch_ids, kind="stable")
    ids, starts = np.unique(batch_ids[order], return_index=True)
    parts = dict(zip(ids.tolist(), np.split(order, starts[1:]) if ids.size else [], strict=True))
    empty = np.zeros(0, dtype=np.int64)
    drifts = tuple(
        _batch_drift(ref, b, scores[parts.get(b.id, empty)], truths[parts.get(b.id, empty)], edges)
        for b in batches
    )
    return DriftView(
        model_version_id=model_version_id,
        category=category,
        calibration_size=ref.size,
        cut=ref.cut,
        rank=ref.rank,
        expected_share=ref.expected_share,
        edges=tuple(float(e) for e in edges),
        calibration_histogram=tuple(int(c) for c in np.histogram(ref.scores, edges)[0]),
        batches=drifts,
    )


def newest_batch_drift(factory: SessionFactory, model_version_id: int) -> BatchDrift | None:
    """The drift of the batch a model scored last (every category), or None before its first
    score or without calibration normals. Reads that batch's scores once (its count is theirs,
    its newest score the model's newest) and the verdicts in its images' id range: cheap
    enough for every page."""
    with session_scope(factory) as session:
        newest = newest_score(session, model_version_id)
        if newest is None:
            return None
        ref = _reference(get_model_version(session, model_version_id).calibration_json)
        if ref is None:
            return None
        found = get_batch(session, newest.batch_id)
        rows = batch_scores(session, model_version_id=model_version_id, batch_id=found.id)
        labels = (
            current_labels_between(session, min(rows.image_ids), max(rows.image_ids))
            if rows
            else {}
        )
        batch = ScoredBatch(
            found.id, found.name, found.purpose, found.created_at, newest.scored_at, len(rows)
        )
    _, scores, truths = _columns(rows, labels)
    return _batch_drift(ref, batch, scores, truths, None)


def reasons_text(batch: BatchDrift) -> str:
    """Why a batch counts as drifted, in words ("" when it does not)."""
    return "; ".join(REASON_TEXT.get(r, r) for r in batch.stats.reasons)


def warning_text(batch: BatchDrift, *, on_drift_page: bool = False) -> str:
    """What the pages say when the model's newest batch has drifted, and what to do."""
    s = batch.stats
    left_out = (
        f" (its {batch.known_anomalous} known anomalies left out)" if batch.known_anomalous else ""
    )
    return (
        f"**Lot drift:** batch **{batch.name}**, the newest this model scored, does not look "
        f"like the model's calibration normals{left_out}: {s.share_above:.1%} of its scores are "
        f"above the calibration 99th percentile, where {s.expected_share:.1%} is expected when "
        f"nothing changed; PSI {s.psi:.2f}, KS D {s.ks_statistic:.2f}. The model may be stale "
        "for this lot: expect false alarms, and defects ranked among normal parts.\n\n"
        "**What to do:** "
        + ("" if on_drift_page else "open **Drift** for the trend over batches. ")
        + "On **Review**, choose this batch and confirm some of its normal images, then retrain "
        "the model from them (**Train** → *Retrain from reviewed normals*) and compare the two "
        "on **Compare**."
    )


FRAME_COLUMNS = (
    "batch",
    "uploaded",
    "scored",
    "scores",
    "known anomalies left out",
    "above p99",
    "expected",
    "p (share)",
    "KS D",
    "KS p",
    "PSI",
    "known normals above p99",
    "drifted",
    "why",
)


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def drift_frame(view: DriftView) -> pd.DataFrame:
    """The per-batch table, newest upload first."""
    rows = [
        {
            "batch": b.name,
            "uploaded": _when(b.created_at),
            "scored": _when(b.scored_at),
            "scores": b.scores,
            "known anomalies left out": b.known_anomalous,
            "above p99": f"{b.stats.above} ({b.stats.share_above:.1%})" if b.stats.measured else "",
            "expected": f"{b.stats.expected_share:.1%}",
            "p (share)": f"{b.stats.tail_p_value:.2g}" if b.stats.measured else "",
            "KS D": round(b.stats.ks_statistic, 3) if b.stats.measured else None,
            "KS p": f"{b.stats.ks_p_value:.2g}" if b.stats.measured else "",
            "PSI": round(b.stats.psi, 3) if b.stats.measured else None,
            "known normals above p99": f"{b.normals_above} of {b.known_normal}",
            "drifted": b.drifted,
            "why": reasons_text(b),
        }
        for b in reversed(view.batches)
    ]
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
