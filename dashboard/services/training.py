"""Queue training (one model version + job per attention variant) and scoring jobs.

The worker reads exactly these ``params_json`` contracts:

- train: ``{"model_version_id", "batch_ids", "image_ids", "category", "preset", "overrides"}``
- score: ``{"model_version_id", "batch_ids", "image_ids", "heatmaps": true}``

Rows are written here; the caller commits, then sends the jobs (``services.jobs.send_jobs``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services.models import VARIANT_NAMES
from db.errors import InvalidValueError
from db.models import BatchPurpose, Image, KnownLabel, ModelStatus, Role, User
from db.repositories import (
    UNLABELLED,
    count_images,
    create_job,
    create_model_version,
    get_batch,
    get_model_version,
    set_model_job,
)
from db.roles import require_role

logger = logging.getLogger(__name__)

BACKBONES: tuple[str, ...] = ("mobilenet_v2", "efficientnet_lite0", "alexnet")
PRESETS: dict[str, str] = {
    "fast": "fast: a short schedule that is good enough to try things (default)",
    "paper": "paper: the full schedule of the AttentDifferNet paper (slow)",
    "tiny": "tiny: a few minutes on a CPU, for smoke tests",
}
DEFAULT_PRESET = "fast"
OVERRIDE_LIMITS: dict[str, tuple[int, int]] = {
    "epochs": (1, 1000),
    "image_size": (32, 1024),
    "test_views": (1, 64),
    "cache_views_per_image": (1, 64),
    "seed": (0, 2**31 - 1),
}


@dataclass(frozen=True)
class TrainRequest:
    """What a person asked for on the Train page."""

    project_id: int
    name: str
    batch_ids: Sequence[int]
    backbone: str
    variants: Sequence[str]
    preset: str = DEFAULT_PRESET
    category: str | None = None
    overrides: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QueuedJob:
    """A job written by this service (not yet sent)."""

    job_id: int
    kind: str
    model_version_id: int
    label: str  # e.g. "widget · CBAM"


def _clean_overrides(overrides: dict[str, Any]) -> dict[str, int]:
    clean: dict[str, int] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in OVERRIDE_LIMITS:
            raise InvalidValueError(
                f"unknown schedule override {key!r}; use {', '.join(OVERRIDE_LIMITS)}"
            )
        low, high = OVERRIDE_LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidValueError(
                f"{key} must be a whole number from {low} to {high}, got {value!r}"
            )
        clean[key] = value
    return clean


def _check_batches(
    session: Session, project_id: int, batch_ids: Sequence[int], purpose: str | None
) -> list[int]:
    ids = sorted({int(b) for b in batch_ids})
    if not ids:
        what = "training batch" if purpose == BatchPurpose.TRAIN else "batch"
        raise InvalidValueError(f"no {what} chosen; pick at least one")
    for batch_id in ids:
        batch = get_batch(session, batch_id)
        if batch.project_id != project_id:
            raise InvalidValueError(f"batch {batch_id} belongs to another project; pick again")
        if purpose is not None and batch.purpose != purpose:
            raise InvalidValueError(
                f"batch {batch.name!r} holds images to inspect, not normal training images; "
                "train only on batches uploaded as normal training images"
            )
    return ids


def count_selected_images(
    session: Session,
    project_id: int,
    batch_ids: Sequence[int],
    category: str | None = None,
    *,
    training: bool = False,
) -> int:
    """How many images the chosen batches (and category) hold; with ``training``, only those
    a model learns from (images known to be anomalous are left out)."""
    labels: tuple[str | None, ...] = (KnownLabel.NORMAL.value, UNLABELLED) if training else (None,)
    return sum(
        count_images(
            session, project_id=project_id, batch_id=b, category=category or None, known_label=k
        )
        for b in sorted(set(batch_ids))
        for k in labels
    )


def categories_of(session: Session, project_id: int, batch_ids: Sequence[int]) -> list[str]:
    """Distinct non-empty image categories inside the chosen batches."""
    if not batch_ids:
        return []
    query = (
        select(Image.category)
        .distinct()
        .where(
            Image.project_id == project_id,
            Image.batch_id.in_(sorted(set(batch_ids))),
            Image.category.is_not(None),
        )
        .order_by(Image.category)
    )
    return [c for c in session.scalars(query) if c]


def model_label(name: str, variant: str, several: bool) -> str:
    """The model version name for one variant of a request."""
    return f"{name.strip()} · {VARIANT_NAMES[variant]}" if several else name.strip()


def queue_training(session: Session, request: TrainRequest, *, actor: User) -> list[QueuedJob]:
    """Create one pending model version and one queued train job per variant (not committed)."""
    require_role(actor, Role.REVIEWER, action="train models")
    variants = list(dict.fromkeys(request.variants))
    if not variants:
        raise InvalidValueError(
            "no attention variant chosen; pick none, SENet or CBAM (or several)"
        )
    unknown = [v for v in variants if v not in VARIANT_NAMES]
    if unknown:
        raise InvalidValueError(f"unknown variant {unknown[0]!r}; use {', '.join(VARIANT_NAMES)}")
    if request.backbone not in BACKBONES:
        raise InvalidValueError(
            f"unknown backbone {request.backbone!r}; use {', '.join(BACKBONES)}"
        )
    if request.preset not in PRESETS:
        raise InvalidValueError(f"unknown preset {request.preset!r}; use {', '.join(PRESETS)}")
    if not request.name.strip():
        raise InvalidValueError("the model name is empty; give the model a name")
    overrides = _clean_overrides(dict(request.overrides))
    batch_ids = _check_batches(session, request.project_id, request.batch_ids, BatchPurpose.TRAIN)
    category = (request.category or "").strip() or None
    image_count = count_selected_images(
        session, request.project_id, batch_ids, category, training=True
    )
    if image_count == 0:
        where = f" in category {category!r}" if category else ""
        raise InvalidValueError(
            f"the chosen batches hold no training images{where} (images known to be anomalous "
            "are never trained on); upload normal training images first or choose other batches"
        )
    queued: list[QueuedJob] = []
    for variant in variants:
        label = model_label(request.name, variant, len(variants) > 1)
        model = create_model_version(
            session,
            project_id=request.project_id,
            name=label,
            variant=variant,
            backbone=request.backbone,
            category=category,
            training_image_count=image_count,
            actor=actor,
        )
        params: dict[str, Any] = {
            "model_version_id": model.id,
            "batch_ids": batch_ids,
            "image_ids": None,
            "category": category,
            "preset": request.preset,
            "overrides": overrides,
        }
        job = create_job(
            session, kind="train", project_id=request.project_id, params=params, actor=actor
        )
        set_model_job(session, model.id, job.id)
        queued.append(QueuedJob(job.id, "train", model.id, label))
    logger.info("queued %d training job(s) in project %s", len(queued), request.project_id)
    return queued


def queue_scoring(
    session: Session,
    *,
    project_id: int,
    model_version_id: int,
    batch_ids: Sequence[int],
    actor: User,
) -> QueuedJob:
    """Create one queued score job for a ready model version and the chosen batches."""
    require_role(actor, Role.REVIEWER, action="score images")
    model = get_model_version(session, model_version_id)
    if model.project_id != project_id:
        raise InvalidValueError("that model version belongs to another project; pick again")
    if model.status != ModelStatus.READY.value:
        raise InvalidValueError(
            f"model {model.name!r} is {model.status}, not ready; wait for its training job to "
            "succeed (see Jobs) or pick a ready model"
        )
    ids = _check_batches(session, project_id, batch_ids, None)
    if count_selected_images(session, project_id, ids) == 0:
        raise InvalidValueError("the chosen batches hold no images; upload images first")
    params: dict[str, Any] = {
        "model_version_id": model.id,
        "batch_ids": ids,
        "image_ids": None,
        "heatmaps": True,
    }
    job = create_job(session, kind="score", project_id=project_id, params=params, actor=actor)
    return QueuedJob(job.id, "score", model.id, model.name)
