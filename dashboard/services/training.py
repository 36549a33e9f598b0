"""Queue training (one model version + job per attention variant) and scoring jobs.

The job params are :mod:`jobspec`'s ``TrainSpec`` and ``ScoreSpec``, the same classes the worker
reads them back with. Each queue function writes its rows in one transaction, commits, then sends
the jobs (``services.jobs.send_jobs``): a job is never sent before its row exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from dashboard.services.jobs import SendResult, send_jobs
from dashboard.services.models import VARIANT_NAMES
from dashboard.services.store import SessionFactory
from dashboard.services.worker_status import WeightsStatus, weights_refusal
from db.errors import InvalidValueError
from db.models import BatchPurpose, KnownLabel, ModelStatus, Role, User
from db.repositories import (
    UNLABELLED,
    count_images,
    create_job,
    create_model_version,
    get_batch,
    get_model_version,
    get_user,
    list_categories,
    set_model_job,
)
from db.roles import require_role
from db.session import session_scope
from jobspec import (
    DEFAULT_HEATMAP_METHOD,
    OVERRIDE_LIMITS,
    PRESET_HELP,
    Backbone,
    JobSpecError,
    Overrides,
    Preset,
    ScoreSpec,
    TrainSpec,
    values_of,
)

logger = logging.getLogger(__name__)

BACKBONES: tuple[str, ...] = values_of(Backbone)
PRESETS: dict[str, str] = {
    preset.value: f"{preset}: {text}" for preset, text in PRESET_HELP.items()
}
DEFAULT_PRESET = Preset.FAST.value


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


@dataclass(frozen=True)
class SentJob:
    """A committed job and what happened when it was handed to the workers."""

    queued: QueuedJob
    result: SendResult


def _clean_overrides(overrides: dict[str, Any]) -> Overrides:
    unknown = sorted(set(overrides) - set(OVERRIDE_LIMITS))
    if unknown:
        raise InvalidValueError(
            f"unknown schedule override {unknown[0]!r}; use {', '.join(OVERRIDE_LIMITS)}"
        )
    try:
        return Overrides(**{k: v for k, v in overrides.items() if v is not None})
    except JobSpecError as exc:
        raise InvalidValueError(str(exc)) from exc


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


def _count_selected(
    session: Session,
    project_id: int,
    batch_ids: Sequence[int],
    category: str | None = None,
    *,
    training: bool = False,
) -> int:
    labels: tuple[str | None, ...] = (KnownLabel.NORMAL.value, UNLABELLED) if training else (None,)
    return sum(
        count_images(
            session, project_id=project_id, batch_id=b, category=category or None, known_label=k
        )
        for b in sorted(set(batch_ids))
        for k in labels
    )


def count_selected_images(
    factory: SessionFactory,
    project_id: int,
    batch_ids: Sequence[int],
    category: str | None = None,
    *,
    training: bool = False,
) -> int:
    """How many images the chosen batches (and category) hold; with ``training``, only those
    a model learns from (images known to be anomalous are left out)."""
    with session_scope(factory) as session:
        return _count_selected(session, project_id, batch_ids, category, training=training)


def categories_of(factory: SessionFactory, project_id: int, batch_ids: Sequence[int]) -> list[str]:
    """Distinct non-empty image categories inside the chosen batches."""
    if not batch_ids:
        return []
    with session_scope(factory) as session:
        return list_categories(session, project_id, batch_ids=batch_ids)


def model_label(name: str, variant: str, several: bool) -> str:
    """The model version name for one variant of a request."""
    return f"{name.strip()} · {VARIANT_NAMES[variant]}" if several else name.strip()


def queue_training(
    factory: SessionFactory,
    request: TrainRequest,
    *,
    actor_id: int,
    weights: Mapping[str, WeightsStatus] | None = None,
) -> list[SentJob]:
    """Create one pending model version and one queued train job per variant, commit, then
    send the jobs (a broker problem leaves them queued and is reported, not raised). With the
    workers' ``weights`` report, a backbone none of them has weights for is refused."""
    refusal = weights_refusal(weights or {}, request.backbone)
    if refusal is not None:
        raise InvalidValueError(refusal)
    with session_scope(factory, immediate=True) as session:
        queued = _write_training(session, request, actor=get_user(session, actor_id))
    return _send(queued)


def queue_scoring(
    factory: SessionFactory,
    *,
    project_id: int,
    model_version_id: int,
    batch_ids: Sequence[int],
    actor_id: int,
    heatmap_methods: Sequence[str] = (DEFAULT_HEATMAP_METHOD.value,),
) -> SentJob:
    """Create one queued score job for a ready model version and the chosen batches (storing a
    heatmap per image by each of ``heatmap_methods``), commit, then send it."""
    with session_scope(factory, immediate=True) as session:
        queued = _write_scoring(
            session,
            project_id=project_id,
            model_version_id=model_version_id,
            batch_ids=batch_ids,
            actor=get_user(session, actor_id),
            heatmap_methods=heatmap_methods,
        )
    return _send([queued])[0]


def _send(queued: list[QueuedJob]) -> list[SentJob]:
    results = send_jobs((q.job_id, q.kind) for q in queued)
    return [SentJob(q, r) for q, r in zip(queued, results, strict=True)]


def _write_training(session: Session, request: TrainRequest, *, actor: User) -> list[QueuedJob]:
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
    preset = Preset(request.preset)
    if not request.name.strip():
        raise InvalidValueError("the model name is empty; give the model a name")
    overrides = _clean_overrides(dict(request.overrides))
    batch_ids = _check_batches(session, request.project_id, request.batch_ids, BatchPurpose.TRAIN)
    category = (request.category or "").strip() or None
    image_count = _count_selected(session, request.project_id, batch_ids, category, training=True)
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
        with _spec_errors():
            spec = TrainSpec(
                model_version_id=model.id,
                batch_ids=tuple(batch_ids),
                category=category,
                preset=preset,
                overrides=overrides,
            )
        job = create_job(
            session,
            kind=spec.kind,
            project_id=request.project_id,
            params=spec.to_params(),
            actor=actor,
        )
        set_model_job(session, model.id, job.id)
        queued.append(QueuedJob(job.id, "train", model.id, label))
    logger.info("queued %d training job(s) in project %s", len(queued), request.project_id)
    return queued


def _write_scoring(
    session: Session,
    *,
    project_id: int,
    model_version_id: int,
    batch_ids: Sequence[int],
    actor: User,
    heatmap_methods: Sequence[str],
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
    if _count_selected(session, project_id, ids) == 0:
        raise InvalidValueError("the chosen batches hold no images; upload images first")
    with _spec_errors():
        spec = ScoreSpec(
            model_version_id=model.id, batch_ids=tuple(ids), heatmaps=tuple(heatmap_methods)
        )
    job = create_job(
        session, kind=spec.kind, project_id=project_id, params=spec.to_params(), actor=actor
    )
    return QueuedJob(job.id, "score", model.id, model.name)


@contextmanager
def _spec_errors() -> Iterator[None]:
    """Job-spec validation errors, shown as the store's."""
    try:
        yield
    except JobSpecError as exc:
        raise InvalidValueError(str(exc)) from exc
