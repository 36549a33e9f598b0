"""The review queue: scores of a model joined with image, current verdict and the model verdict
under the ACTIVE threshold, computed in the query (changing the threshold relabels instantly).

Model verdict rule: T1 = threshold value, T2 = optional upper value.
Without T2: score >= T1 -> "anomalous", else "normal".
With T2: score >= T2 -> "anomalous", T1 <= score < T2 -> "review", else "normal".
No active threshold -> None. A category's own threshold wins over the all-categories one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from db.errors import InvalidValueError
from db.models import (
    Heatmap,
    Image,
    ModelVerdict,
    Score,
    Threshold,
    User,
    Verdict,
    VerdictLabel,
)
from db.repositories._common import check_choice, check_page
from db.repositories.verdicts import latest_verdict_id


class ScoreOrder(StrEnum):
    """Ranking of the review queue."""

    SCORE = "score"  # highest score first
    UNCERTAIN = "uncertain"  # nearest the threshold (or the middle of the band) first
    AUDIT = "audit"  # random sample of passed ("normal") images, reproducible by seed


@dataclass(frozen=True)
class ScoreRow:
    """One row of the review queue (plain values; safe to cache)."""

    score_id: int
    image_id: int
    model_version_id: int
    batch_id: int
    original_name: str
    storage_path: str
    category: str | None
    known_label: str | None
    width: int
    height: int
    score: float
    percentile: float | None
    scored_at: datetime
    has_heatmap: bool
    threshold_id: int | None
    threshold_category: str | None  # the threshold's own category; None for all categories
    threshold_version: int | None
    threshold_value: float | None
    threshold_upper: float | None
    model_verdict: str | None
    verdict_id: int | None
    verdict_label: str | None
    verdict_user_id: int | None
    verdict_username: str | None
    verdict_at: datetime | None


@dataclass(frozen=True)
class ScorePage:
    """One page of the queue and the number of rows over all pages."""

    items: list[ScoreRow]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class LabelledScore:
    """A score with a ground truth for threshold tuning and evaluation."""

    image_id: int
    category: str | None
    score: float
    label: str  # "anomalous" or "normal"
    source: str  # "verdict" or "known_label"


@dataclass
class _Parts:
    query: Select[*tuple[Any, ...]]
    lower: ColumnElement[Any]
    upper: ColumnElement[Any]
    model_verdict: ColumnElement[Any]
    verdict_id: ColumnElement[Any] | InstrumentedAttribute[Any]


def _base_query(model_version_id: int) -> _Parts:
    own = aliased(Threshold, name="own_threshold")
    shared = aliased(Threshold, name="all_threshold")
    current = aliased(Verdict, name="current_verdict")
    reviewer = aliased(User, name="reviewer")
    has_own = own.id.is_not(None)
    lower = func.coalesce(own.value, shared.value)
    upper = case((has_own, own.upper_value), else_=shared.upper_value)
    model_verdict = case(
        (lower.is_(None), literal(None)),
        (and_(upper.is_not(None), Score.score >= upper), literal(ModelVerdict.ANOMALOUS.value)),
        (and_(upper.is_not(None), Score.score >= lower), literal(ModelVerdict.REVIEW.value)),
        (Score.score >= lower, literal(ModelVerdict.ANOMALOUS.value)),
        else_=literal(ModelVerdict.NORMAL.value),
    )
    query = (
        select(
            Score.id.label("score_id"),
            Score.image_id,
            Score.model_version_id,
            Image.batch_id,
            Image.original_name,
            Image.storage_path,
            Image.category,
            Image.known_label,
            Image.width,
            Image.height,
            Score.score,
            Score.percentile,
            Score.scored_at,
            func.coalesce(own.id, shared.id).label("threshold_id"),
            case((has_own, own.category)).label("threshold_category"),
            func.coalesce(own.version, shared.version).label("threshold_version"),
            lower.label("threshold_value"),
            upper.label("threshold_upper"),
            model_verdict.label("model_verdict"),
            current.id.label("verdict_id"),
            current.label.label("verdict_label"),
            current.user_id.label("verdict_user_id"),
            reviewer.username.label("verdict_username"),
            current.created_at.label("verdict_at"),
        )
        .join(Image, Image.id == Score.image_id)
        .outerjoin(
            own,
            and_(
                own.model_version_id == Score.model_version_id,
                own.is_active.is_(True),
                own.category == Image.category,
            ),
        )
        .outerjoin(
            shared,
            and_(
                shared.model_version_id == Score.model_version_id,
                shared.is_active.is_(True),
                shared.category.is_(None),
            ),
        )
        .outerjoin(
            current,
            current.id == latest_verdict_id(Image.id),
        )
        .outerjoin(reviewer, reviewer.id == current.user_id)
        .where(Score.model_version_id == model_version_id)
    )
    return _Parts(query, lower, upper, model_verdict, current.id)


def _filtered(
    parts: _Parts,
    *,
    category: str | None,
    batch_id: int | None,
    model_verdict: str | None,
    reviewed: bool | None,
) -> Select[*tuple[Any, ...]]:
    query = parts.query
    if category is not None:
        query = query.where(Image.category == category)
    if batch_id is not None:
        query = query.where(Image.batch_id == batch_id)
    if model_verdict is not None:
        check_choice("model verdict", model_verdict, (m.value for m in ModelVerdict))
        query = query.where(parts.model_verdict == model_verdict)
    # An image has a current verdict exactly when it has any verdict: an EXISTS on the verdicts'
    # image index filters without evaluating the current-verdict join first.
    has_verdict = exists().where(Verdict.image_id == Score.image_id)
    if reviewed is True:
        query = query.where(has_verdict)
    elif reviewed is False:
        query = query.where(~has_verdict)
    return query


def _rows(
    session: Session, mappings: Any, *, model_version_id: int | None = None
) -> list[ScoreRow]:
    """Queue rows with their heatmap flag, looked up for these rows' scores only (or, with
    ``model_version_id``, for the whole model at once). A per-row EXISTS in the queue query
    lets PostgreSQL, once it has statistics, hash every heatmap of the store for a page of one."""
    found = [dict(m) for m in mappings]
    if model_version_id is not None:
        owned = select(Score.id).where(Score.model_version_id == model_version_id)
        flagged = select(Heatmap.score_id).where(Heatmap.score_id.in_(owned))
    else:
        flagged = select(Heatmap.score_id).where(
            Heatmap.score_id.in_([r["score_id"] for r in found])
        )
    with_heatmap = set(session.scalars(flagged.distinct())) if found else set()
    return [ScoreRow(**values, has_heatmap=values["score_id"] in with_heatmap) for values in found]


def _count(session: Session, query: Select[*tuple[Any, ...]]) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def list_scores(
    session: Session,
    *,
    model_version_id: int,
    order: str = ScoreOrder.SCORE,
    category: str | None = None,
    batch_id: int | None = None,
    model_verdict: str | None = None,
    reviewed: bool | None = None,
    seed: int = 0,
    limit: int = 50,
    offset: int = 0,
) -> ScorePage:
    """One page of the review queue of a model version.

    Orders: "score" (highest first), "uncertain" (nearest T1, or the middle of the T1..T2 band,
    first; rows without an active threshold last), "audit" (only images the model passed, in a
    random order fixed by `seed`). Filters: category, batch, model verdict, reviewed or not.
    """
    check_choice("order", order, (o.value for o in ScoreOrder))
    check_page(limit, offset)
    parts = _base_query(model_version_id)
    if order == ScoreOrder.AUDIT:
        if model_verdict not in (None, ModelVerdict.NORMAL):
            raise InvalidValueError("the audit sample only holds images the model passed")
        model_verdict = ModelVerdict.NORMAL
    query = _filtered(
        parts, category=category, batch_id=batch_id, model_verdict=model_verdict, reviewed=reviewed
    )
    if order == ScoreOrder.AUDIT:
        return _audit_page(session, query, seed=seed, limit=limit, offset=offset)
    total = (
        _count(session, query)
        if model_verdict is not None
        else _plain_count(session, model_version_id, category, batch_id, reviewed)
    )
    if order == ScoreOrder.UNCERTAIN:
        distance = case(
            (parts.upper.is_not(None), func.abs(Score.score - (parts.lower + parts.upper) / 2)),
            else_=func.abs(Score.score - parts.lower),
        )
        query = query.order_by(distance.asc().nulls_last(), Score.score.desc(), Score.id)
    else:
        query = query.order_by(Score.score.desc(), Score.id)
    rows = session.execute(query.limit(limit).offset(offset)).mappings()
    return ScorePage(_rows(session, rows), total, limit, offset)


def all_scores(session: Session, *, model_version_id: int) -> list[ScoreRow]:
    """Every queue row of a model version, highest score first, in one query (for export)."""
    query = _base_query(model_version_id).query.order_by(Score.score.desc(), Score.id)
    rows = session.execute(query).mappings()
    return _rows(session, rows, model_version_id=model_version_id)


def _audit_page(
    session: Session, query: Select[*tuple[Any, ...]], *, seed: int, limit: int, offset: int
) -> ScorePage:
    """Shuffle the passed score ids with a seeded RNG, then load one page of them."""
    ids = list(session.scalars(query.with_only_columns(Score.id).order_by(Score.id)))
    random.Random(seed).shuffle(ids)
    page_ids = ids[offset : offset + limit]
    if not page_ids:
        return ScorePage([], len(ids), limit, offset)
    rows = session.execute(query.where(Score.id.in_(page_ids))).mappings()
    by_id = {r.score_id: r for r in _rows(session, rows)}
    return ScorePage([by_id[i] for i in page_ids if i in by_id], len(ids), limit, offset)


def count_model_verdicts(
    session: Session, *, model_version_id: int, category: str | None = None
) -> dict[str, int]:
    """How many scores fall in each model verdict ("none" when there is no active threshold)."""
    parts = _base_query(model_version_id)
    query = _filtered(parts, category=category, batch_id=None, model_verdict=None, reviewed=None)
    inner = query.subquery()
    grouped = select(inner.c.model_verdict, func.count()).group_by(inner.c.model_verdict)
    return {str(verdict or "none"): int(n) for verdict, n in session.execute(grouped)}


def list_labelled_scores(
    session: Session,
    *,
    model_version_id: int,
    category: str | None = None,
    use_known_labels: bool = True,
) -> list[LabelledScore]:
    """Scores that have a ground truth: the current reviewer verdict ("unsure" ignored), else
    (with `use_known_labels`) the label that came with the image. For ROC/PR and tuning."""
    parts = _base_query(model_version_id)
    query = _filtered(parts, category=category, batch_id=None, model_verdict=None, reviewed=None)
    out: list[LabelledScore] = []
    for row in session.execute(query.order_by(Score.id)).mappings():
        verdict = row["verdict_label"]
        if verdict in (VerdictLabel.ANOMALOUS, VerdictLabel.NORMAL):
            label, source = str(verdict), "verdict"
        elif use_known_labels and row["known_label"] is not None:
            label, source = str(row["known_label"]), "known_label"
        else:
            continue
        out.append(LabelledScore(row["image_id"], row["category"], row["score"], label, source))
    return out


def count_scores(
    session: Session,
    *,
    model_version_id: int,
    category: str | None = None,
    batch_id: int | None = None,
    reviewed_only: bool = False,
) -> int:
    """Scores of a model version (in `category`, in `batch_id`), optionally only of reviewed
    images.

    A plain count without the threshold and current-verdict joins of the queue: an image has a
    current verdict exactly when it has any verdict.
    """
    return _plain_count(
        session, model_version_id, category, batch_id, True if reviewed_only else None
    )


def _plain_count(
    session: Session,
    model_version_id: int,
    category: str | None,
    batch_id: int | None,
    reviewed: bool | None,
) -> int:
    """Count scores without the queue's joins. An image has a current verdict exactly when it
    has any verdict, so the reviewed ones are counted from the (few) verdicts' images and the
    unreviewed ones are the rest: 100,000 scores count in milliseconds."""

    def filtered(query: Select[Any]) -> Select[Any]:
        if category is not None or batch_id is not None:  # the images only when needed
            query = query.join(Image, Image.id == Score.image_id)
        if category is not None:
            query = query.where(Image.category == category)
        if batch_id is not None:
            query = query.where(Image.batch_id == batch_id)
        return query

    total_query = select(func.count()).select_from(Score)
    total_query = filtered(total_query.where(Score.model_version_id == model_version_id))
    if reviewed is None:
        return int(session.scalar(total_query) or 0)
    verdict_images = select(Verdict.image_id).distinct().subquery()
    scored = filtered(
        select(Score.id).where(
            Score.image_id == verdict_images.c.image_id,
            Score.model_version_id == model_version_id,
        )
    )
    n_reviewed = int(
        session.scalar(select(func.count()).select_from(verdict_images).where(exists(scored))) or 0
    )
    if reviewed:
        return n_reviewed
    return int(session.scalar(total_query) or 0) - n_reviewed
