"""Retrain from reviewed normals: a new model version trained on its parent's training images plus
the images reviewers confirmed normal (chosen batches, newest first, up to a cap).

The child has the parent's variant, backbone, category, preset and overrides. Confirmed normal
means the image's *current* verdict is normal; an image marked anomalous or unsure (or first
normal, then not) never goes in, and a parent's training image that reviewers have since marked
anomalous or unsure is left out too. The child's training images, with the verdict of each added
one, are recorded when it is queued (its lineage); the worker trains on exactly them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from dashboard.services.jobs import send_jobs
from dashboard.services.store import SessionFactory
from dashboard.services.text import display_name
from dashboard.services.training import DEFAULT_PRESET, QueuedJob, SentJob
from dashboard.services.worker_status import WeightsStatus, weights_refusal
from db.errors import InvalidValueError, NotFoundError
from db.models import ModelStatus, ModelVersion, Role, TrainingSource, User, VerdictLabel
from db.repositories import (
    TrainingEntry,
    confirmed_normals,
    create_child_version,
    create_job,
    current_verdicts,
    get_batch,
    get_job,
    get_model_version,
    get_user,
    set_model_job,
    training_entries,
    training_image_ids,
)
from db.roles import require_role
from db.session import session_scope
from jobspec import JobSpecError, Overrides, Preset, TrainSpec, values_of

logger = logging.getLogger(__name__)

DEFAULT_CAP = 200
# Each confirmed normal is used this many times in the child's training: a few normals of a new
# lot among hundreds of the old recover more of the lost AUROC (bench/results/drift-feedback.md).
CONFIRMED_NORMAL_REPEATS = 3
CONFIRMED = TrainingSource.CONFIRMED_NORMAL.value
MAX_CAP = 100_000
_CHUNK = 500


@dataclass(frozen=True)
class RetrainRequest:
    """Retrain ``parent_id`` with the confirmed normals of ``batch_ids`` (None: every batch)."""

    parent_id: int
    batch_ids: Sequence[int] | None = None
    cap: int = DEFAULT_CAP
    name: str | None = None  # None: the parent's name
    preset: str | None = None  # None: the parent's preset


@dataclass(frozen=True)
class NormalsBatch:
    """A batch holding confirmed normal images the parent did not train on."""

    id: int
    name: str
    new_normals: int

    @property
    def label(self) -> str:
        return f"{self.name} · {self.new_normals} confirmed normal(s)"


@dataclass(frozen=True)
class RetrainPlan:
    """What a retraining would train on."""

    parent_id: int
    parent_name: str
    variant: str
    backbone: str
    category: str | None
    preset: str
    parent_images: int  # the parent's training images that go in again
    dropped_from_parent: int  # parent images whose current verdict is now anomalous or unsure
    available: int  # confirmed normals of the chosen batches the parent did not train on
    added: tuple[int, ...]  # the confirmed normals that go in (newest first, at most the cap)

    @property
    def total(self) -> int:
        return self.parent_images + len(self.added)


@dataclass(frozen=True)
class Retrained:
    """A queued retraining: the job as sent, and what the child trains on."""

    sent: SentJob
    plan: RetrainPlan


@dataclass(frozen=True)
class _Selection:
    plan: RetrainPlan
    entries: list[TrainingEntry]
    batch_ids: tuple[int, ...]
    overrides: Overrides


def _parent_schedule(session: Session, parent: ModelVersion) -> tuple[str, Overrides, list[int]]:
    """The parent's preset, overrides and batch ids (its training job, else its metrics)."""
    params: Any = None
    if parent.job_id is not None:
        try:
            params = get_job(session, parent.job_id).params_json
        except NotFoundError:
            params = None
    try:
        spec = TrainSpec.from_params(params)
        return spec.preset.value, spec.overrides, list(spec.batch_ids)
    except JobSpecError:
        metrics = dict(parent.metrics_json or {})
        preset = metrics.get("preset")
        try:
            overrides = Overrides.from_dict(metrics.get("overrides"))
        except JobSpecError:
            overrides = Overrides()
        return (preset if preset in values_of(Preset) else DEFAULT_PRESET), overrides, []


def _current_labels(session: Session, image_ids: Sequence[int]) -> dict[int, str]:
    ids = sorted(set(image_ids))
    labels: dict[int, str] = {}
    for start in range(0, len(ids), _CHUNK):
        found = current_verdicts(session, ids[start : start + _CHUNK])
        labels.update({i: v.label for i, v in found.items()})
    return labels


def _parent_entries(session: Session, parent: ModelVersion) -> tuple[list[TrainingEntry], int]:
    """The parent's training images as the child's ``parent`` entries, without those whose
    current verdict is no longer normal; and how many were left out."""
    recorded = {e.image_id: e.verdict_id for e in training_entries(session, parent.id)}
    ids = sorted(recorded) if recorded else sorted(training_image_ids(session, parent.id))
    labels = _current_labels(session, ids)
    not_normal = {VerdictLabel.ANOMALOUS.value, VerdictLabel.UNSURE.value}
    kept = [i for i in ids if labels.get(i) not in not_normal]
    source = TrainingSource.PARENT.value
    return [TrainingEntry(i, source, recorded.get(i)) for i in kept], len(ids) - len(kept)


def _ready_parent(session: Session, parent_id: int) -> ModelVersion:
    parent = get_model_version(session, parent_id)
    if parent.status != ModelStatus.READY.value:
        raise InvalidValueError(
            f"model {parent.name!r} is {parent.status}, not ready; retrain from a ready model"
        )
    return parent


def _select(session: Session, request: RetrainRequest) -> _Selection:
    if not 1 <= int(request.cap) <= MAX_CAP:
        raise InvalidValueError(f"the cap must be between 1 and {MAX_CAP:,}, got {request.cap}")
    parent = _ready_parent(session, request.parent_id)
    preset, overrides, parent_batches = _parent_schedule(session, parent)
    if request.preset is not None:
        if request.preset not in values_of(Preset):
            raise InvalidValueError(
                f"unknown preset {request.preset!r}; use {', '.join(values_of(Preset))}"
            )
        preset = request.preset
    inherited, dropped = _parent_entries(session, parent)
    taken = training_image_ids(session, parent.id)
    batch_ids = None if request.batch_ids is None else [int(b) for b in request.batch_ids]
    for batch_id in batch_ids or []:
        if get_batch(session, batch_id).project_id != parent.project_id:
            raise InvalidValueError(f"batch {batch_id} belongs to another project; pick again")
    normals = confirmed_normals(
        session, project_id=parent.project_id, category=parent.category, batch_ids=batch_ids
    )
    fresh = [n for n in normals if n.image_id not in taken]
    added = fresh[: int(request.cap)]
    source = TrainingSource.CONFIRMED_NORMAL.value
    entries = inherited + [TrainingEntry(n.image_id, source, n.verdict_id) for n in added]
    plan = RetrainPlan(
        parent_id=parent.id,
        parent_name=display_name(parent.name),
        variant=parent.variant,
        backbone=parent.backbone,
        category=parent.category,
        preset=preset,
        parent_images=len(inherited),
        dropped_from_parent=dropped,
        available=len(fresh),
        added=tuple(n.image_id for n in added),
    )
    batches = tuple(sorted(set(parent_batches) | {n.batch_id for n in added}))
    return _Selection(plan, entries, batches, overrides)


def plan_retraining(factory: SessionFactory, request: RetrainRequest) -> RetrainPlan:
    """What ``request`` would train on (nothing is written)."""
    with session_scope(factory) as session:
        return _select(session, request).plan


def normals_batches(factory: SessionFactory, parent_id: int) -> list[NormalsBatch]:
    """The batches holding confirmed normals (of the parent's category) it did not train on,
    newest first."""
    with session_scope(factory) as session:
        parent = get_model_version(session, parent_id)
        taken = training_image_ids(session, parent.id)
        counts: dict[int, int] = {}
        for normal in confirmed_normals(
            session, project_id=parent.project_id, category=parent.category
        ):
            if normal.image_id not in taken:
                counts[normal.batch_id] = counts.get(normal.batch_id, 0) + 1
        batches = [get_batch(session, b) for b in counts]
        batches.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        return [NormalsBatch(b.id, display_name(b.name), counts[b.id]) for b in batches]


def queue_retraining(
    factory: SessionFactory,
    request: RetrainRequest,
    *,
    actor_id: int,
    weights: Mapping[str, WeightsStatus] | None = None,
) -> Retrained:
    """Create the child model version (lineage recorded) and its train job, commit, then send
    the job; reviewers and admins only. With the workers' ``weights`` report, a backbone none of
    them has weights for is refused."""
    with session_scope(factory, immediate=True) as session:
        queued, plan = write_retraining(
            session, request, actor=get_user(session, actor_id), weights=weights
        )
    result = send_jobs([(queued.job_id, queued.kind)])[0]
    return Retrained(SentJob(queued, result), plan)


def write_retraining(
    session: Session,
    request: RetrainRequest,
    *,
    actor: User,
    weights: Mapping[str, WeightsStatus] | None = None,
) -> tuple[QueuedJob, RetrainPlan]:
    """The child model version, its training images and its queued train job (not committed),
    and what it trains on."""
    require_role(actor, Role.REVIEWER, action="retrain models")
    selection = _select(session, request)
    plan = selection.plan
    refusal = weights_refusal(weights or {}, plan.backbone)
    if refusal is not None:
        raise InvalidValueError(refusal)
    if not plan.added:
        where = "the chosen batches" if request.batch_ids is not None else "this project"
        raise InvalidValueError(
            f"{where} hold no image confirmed normal that {plan.parent_name!r} did not train on; "
            "mark images normal on the Review page first, or choose other batches"
        )
    name = (request.name or "").strip() or get_model_version(session, plan.parent_id).name
    child = create_child_version(
        session, parent_id=plan.parent_id, name=name, entries=selection.entries, actor=actor
    )
    try:
        spec = TrainSpec(
            model_version_id=child.id,
            batch_ids=selection.batch_ids,
            image_ids=tuple(sorted(e.image_id for e in selection.entries)),
            category=plan.category,
            preset=Preset(plan.preset),
            overrides=selection.overrides,
            repeat_ids=tuple(
                sorted(e.image_id for e in selection.entries if e.source == CONFIRMED)
            ),
            repeats=CONFIRMED_NORMAL_REPEATS,
        )
    except JobSpecError as exc:
        raise InvalidValueError(str(exc)) from exc
    job = create_job(
        session,
        kind=spec.kind,
        project_id=child.project_id,
        params=spec.to_params(),
        actor=actor,
    )
    set_model_job(session, child.id, job.id)
    logger.info(
        "queued retraining of model %s as model %s: %d parent images + %d confirmed normals",
        plan.parent_id,
        child.id,
        plan.parent_images,
        len(plan.added),
    )
    return QueuedJob(job.id, "train", child.id, display_name(child.name)), plan
