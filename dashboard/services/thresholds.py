"""Threshold tuning data: labelled scores as arrays, metrics at a value, versions, save, restore.

Saving creates the next threshold version and makes it active; the review queue computes the
model verdict from the active threshold in SQL, so stored scores are relabelled at once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from dashboard.services import metrics
from dashboard.services.store import SessionFactory
from dashboard.services.threshold_methods import METHOD_LABELS
from db import repositories
from db.models import Threshold
from db.repositories import (
    ScoredImage,
    current_labels,
    effective_threshold,
    get_user,
    list_scored_images,
    list_threshold_versions,
    restore_threshold,
    save_threshold,
    usernames,
)
from db.session import session_scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledData:
    """Scores with a ground truth (True = anomalous) and the other scored images' scores."""

    image_ids: np.ndarray
    scores: np.ndarray
    positives: np.ndarray
    from_verdicts: int
    from_known_labels: int
    unlabelled_scores: np.ndarray
    # Per unlabelled score: its current verdict is "unsure" (else nobody reviewed it).
    unlabelled_unsure: np.ndarray

    @property
    def unsure_scores(self) -> np.ndarray:
        """Scores of images whose current verdict is "unsure" (and that have no label)."""
        return self.unlabelled_scores[self.unlabelled_unsure]

    @property
    def unreviewed_scores(self) -> np.ndarray:
        """Scores of images nobody reviewed (and that have no label)."""
        return self.unlabelled_scores[~self.unlabelled_unsure]

    @property
    def n_anomalous(self) -> int:
        return int(self.positives.sum())

    @property
    def n_normal(self) -> int:
        return int(self.positives.size - self.positives.sum())

    @property
    def has_both_classes(self) -> bool:
        return self.n_anomalous > 0 and self.n_normal > 0

    @property
    def all_scores(self) -> np.ndarray:
        return np.concatenate([self.scores, self.unlabelled_scores])


def scored_categories(factory: SessionFactory, model_version_id: int) -> list[str]:
    """Distinct non-empty categories of the images a model version scored."""
    with session_scope(factory) as session:
        return repositories.scored_categories(session, model_version_id)


@dataclass(frozen=True)
class ScoredImages:
    """Every score of a model in a scope with its image's category and ground truth."""

    image_ids: np.ndarray  # int64
    scores: np.ndarray  # float64
    categories: list[str | None]
    truths: np.ndarray  # object: "anomalous", "normal" or None
    from_verdict: np.ndarray  # bool: the truth is a reviewer verdict (else a known label)
    unsure: np.ndarray  # bool: the current verdict is "unsure"


def _scored_images(
    session: Session,
    model_version_id: int,
    category: str | None,
    *,
    use_known_labels: bool,
    rows: list[ScoredImage] | None = None,
) -> ScoredImages:
    """Scores with their ground truth: the current reviewer verdict ("unsure" is none), else,
    with ``use_known_labels``, the label the image came with.

    Two plain queries instead of the review queue's per-row joins (the same rule as
    ``list_labelled_scores``, which the tests check), so 5,000 images load in tens of ms.
    """
    if rows is None:
        rows = list_scored_images(session, model_version_id=model_version_id, category=category)
    labels = current_labels(session, model_version_id=model_version_id)
    truths: list[str | None] = []
    from_verdict: list[bool] = []
    unsure: list[bool] = []
    for row in rows:
        verdict = labels.get(row.image_id)
        unsure.append(verdict == "unsure")
        if verdict in ("anomalous", "normal"):
            truths.append(verdict)
            from_verdict.append(True)
        else:
            known = row.known_label if use_known_labels else None
            truths.append(str(known) if known is not None else None)
            from_verdict.append(False)
    return ScoredImages(
        image_ids=np.fromiter((r.image_id for r in rows), dtype=np.int64, count=len(rows)),
        scores=np.fromiter((r.score for r in rows), dtype=np.float64, count=len(rows)),
        categories=[r.category for r in rows],
        truths=np.array(truths, dtype=object),
        from_verdict=np.array(from_verdict, dtype=bool),
        unsure=np.array(unsure, dtype=bool),
    )


def _labelled(
    session: Session,
    model_version_id: int,
    category: str | None,
    *,
    use_known_labels: bool,
    rows: list[ScoredImage] | None = None,
) -> LabelledData:
    scored = _scored_images(
        session, model_version_id, category, use_known_labels=use_known_labels, rows=rows
    )
    labelled = np.array([t is not None for t in scored.truths], dtype=bool)
    from_verdicts = int((scored.from_verdict & labelled).sum())
    return LabelledData(
        image_ids=scored.image_ids[labelled],
        scores=scored.scores[labelled],
        positives=(scored.truths == "anomalous")[labelled].astype(bool),
        from_verdicts=from_verdicts,
        from_known_labels=int(labelled.sum()) - from_verdicts,
        unlabelled_scores=scored.scores[~labelled],
        unlabelled_unsure=scored.unsure[~labelled],
    )


def load_labelled(
    factory: SessionFactory,
    model_version_id: int,
    category: str | None,
    *,
    use_known_labels: bool,
) -> LabelledData:
    """Reviewed (and, optionally, known-label) scores of a model and scope, as numpy arrays."""
    with session_scope(factory) as session:
        return _labelled(session, model_version_id, category, use_known_labels=use_known_labels)


def model_verdicts(
    session: Session,
    model_version_id: int,
    scores: np.ndarray,
    categories: Sequence[str | None],
) -> np.ndarray:
    """The model verdict of each score under the model's active thresholds, by the review
    queue's rule: without T2, score >= T1 is anomalous; with T2, >= T2 anomalous and T1..T2
    review; a category's own threshold wins over the all-categories one; None without any.
    Runs inside the caller's transaction."""
    result = np.full(scores.shape, None, dtype=object)
    category_array = np.array(list(categories), dtype=object)
    for category in set(categories):
        threshold = effective_threshold(session, model_version_id, category)
        if threshold is None:
            continue
        mask = category_array == category
        values = scores[mask]
        verdict = np.where(values >= threshold.value, "anomalous", "normal").astype(object)
        if threshold.upper_value is not None:
            verdict[(values >= threshold.value) & (values < threshold.upper_value)] = "review"
        result[mask] = verdict
    return result


def metrics_at(data: LabelledData, value: float, upper_value: float | None) -> dict[str, Any]:
    """What a threshold (or band) does on the labelled images, JSON-ready; {} without labels."""
    if data.scores.size == 0:
        return {}
    if upper_value is None:
        result: dict[str, Any] = metrics.confusion_at(data.scores, data.positives, value).as_dict()
    else:
        result = metrics.band_counts(data.scores, data.positives, value, upper_value).as_dict()
    result["labelled_from_verdicts"] = data.from_verdicts
    result["labelled_from_known_labels"] = data.from_known_labels
    return result


@dataclass(frozen=True)
class ActiveThreshold:
    """The threshold deciding a scope, as plain values."""

    id: int
    version: int
    category: str | None
    value: float
    upper_value: float | None
    method: str


def _active(
    session: Session, model_version_id: int, category: str | None
) -> ActiveThreshold | None:
    """The threshold deciding ``category`` (its own, else the all-categories one), or None."""
    row = effective_threshold(session, model_version_id, category)
    if row is None:
        return None
    return ActiveThreshold(
        row.id, row.version, row.category, row.value, row.upper_value, row.method
    )


def active_threshold(
    factory: SessionFactory, model_version_id: int, category: str | None
) -> ActiveThreshold | None:
    """The threshold deciding ``category`` (its own, else the all-categories one), or None."""
    with session_scope(factory) as session:
        return _active(session, model_version_id, category)


@dataclass(frozen=True)
class TuningView:
    """What the thresholds page needs for one model and scope, read in one transaction."""

    data: LabelledData
    known_available: int  # labelled images the known labels would add (0 when they are used)
    active: ActiveThreshold | None
    counts: dict[str, int]


def tuning_view(
    factory: SessionFactory,
    model_version_id: int,
    category: str | None,
    *,
    use_known_labels: bool,
) -> TuningView:
    """Labelled scores, how many known labels could add, the active threshold and its verdict
    counts for one model and scope."""
    with session_scope(factory) as session:
        rows = list_scored_images(session, model_version_id=model_version_id, category=category)
        data = _labelled(
            session, model_version_id, category, use_known_labels=use_known_labels, rows=rows
        )
        known_available = 0
        if not use_known_labels and data.scores.size == 0:
            known_available = _labelled(
                session, model_version_id, category, use_known_labels=True, rows=rows
            ).scores.size
        return TuningView(
            data=data,
            known_available=known_available,
            active=_active(session, model_version_id, category),
            counts=_verdict_counts(session, model_version_id, category, rows=rows),
        )


def scope_label(category: str | None) -> str:
    """The scope a threshold decides: all categories, or one category."""
    return "all categories" if category is None else f"category {category}"


def version_label(version: int, category: str | None) -> str:
    """A threshold version named with its scope (each scope numbers its own versions)."""
    return f"v{version} · {scope_label(category)}"


@dataclass(frozen=True)
class ThresholdVersion:
    """One saved version, as plain values for the versions table."""

    id: int
    version: int
    category: str | None
    value: float
    upper_value: float | None
    method: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    created_by: str
    created_at: datetime
    is_active: bool


def _version(row: Threshold, names: dict[int, str]) -> ThresholdVersion:
    return ThresholdVersion(
        id=row.id,
        version=row.version,
        category=row.category,
        value=row.value,
        upper_value=row.upper_value,
        method=row.method,
        params=dict(row.params_json or {}),
        metrics=dict(row.metrics_json or {}),
        created_by=names.get(row.created_by, "system") if row.created_by else "system",
        created_at=row.created_at,
        is_active=bool(row.is_active),
    )


def list_versions(
    factory: SessionFactory, model_version_id: int, category: str | None
) -> list[ThresholdVersion]:
    """The versions of exactly this scope (None = all categories), newest first."""
    with session_scope(factory) as session:
        rows = list_threshold_versions(session, model_version_id, category)
        names = usernames(session, {r.created_by for r in rows if r.created_by})
        return [_version(r, names) for r in rows]


def _short(values: dict[str, Any], keys: tuple[str, ...]) -> str:
    parts = []
    for key in keys:
        if key in values:
            value = values[key]
            parts.append(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts)


def versions_frame(versions: list[ThresholdVersion]) -> pd.DataFrame:
    """The versions table: version, value(s), method, params, metrics, who, when, active."""
    metric_keys = ("precision", "recall", "f1", "false_alarm_rate", "review_share")
    return pd.DataFrame(
        [
            {
                "version": version_label(v.version, v.category),
                "T1 (value)": f"{v.value:.6g}",
                "T2 (band)": "" if v.upper_value is None else f"{v.upper_value:.6g}",
                "method": METHOD_LABELS.get(v.method, v.method).split(" (")[0],
                "params": _short(v.params, tuple(v.params)),
                "metrics": _short(v.metrics, metric_keys),
                "who": v.created_by,
                "when": v.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                "active": v.is_active,
            }
            for v in versions
        ],
        columns=[
            "version",
            "T1 (value)",
            "T2 (band)",
            "method",
            "params",
            "metrics",
            "who",
            "when",
            "active",
        ],
    )


def save_version(
    factory: SessionFactory,
    *,
    actor_id: int,
    model_version_id: int,
    category: str | None,
    value: float,
    upper_value: float | None,
    method: str,
    params: dict[str, Any],
    data: LabelledData,
) -> ThresholdVersion:
    """Save and commit a new active version with the metrics at that value (reviewers and
    admins)."""
    with session_scope(factory, immediate=True) as session:
        actor = get_user(session, actor_id)
        row = save_threshold(
            session,
            model_version_id=model_version_id,
            category=category,
            value=float(value),
            upper_value=None if upper_value is None else float(upper_value),
            method=method,
            params=params,
            metrics=metrics_at(data, value, upper_value),
            actor=actor,
        )
        logger.info(
            "threshold v%s saved for model %s by %s", row.version, model_version_id, actor.username
        )
        return _version(row, {actor.id: actor.username})


def restore_version(
    factory: SessionFactory, *, actor_id: int, threshold_id: int
) -> ThresholdVersion:
    """Make an older version active again and commit (reviewers and admins)."""
    with session_scope(factory, immediate=True) as session:
        row = restore_threshold(session, threshold_id, actor=get_user(session, actor_id))
        names = usernames(session, [row.created_by] if row.created_by else [])
        return _version(row, names)


def _verdict_counts(
    session: Session,
    model_version_id: int,
    category: str | None,
    *,
    rows: list[ScoredImage] | None = None,
) -> dict[str, int]:
    if rows is None:
        rows = list_scored_images(session, model_version_id=model_version_id, category=category)
    scores = np.fromiter((r.score for r in rows), dtype=np.float64, count=len(rows))
    verdicts = model_verdicts(session, model_version_id, scores, [r.category for r in rows])
    return dict(Counter(str(v or "none") for v in verdicts.tolist()))


def verdict_counts(
    factory: SessionFactory, model_version_id: int, category: str | None
) -> dict[str, int]:
    """How many stored scores the active threshold calls anomalous / normal / review ("none"
    without a threshold), computed from the scores and the active thresholds."""
    with session_scope(factory) as session:
        return _verdict_counts(session, model_version_id, category)
