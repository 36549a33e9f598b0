"""Model versions: create, mark ready or failed, list, get."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import InvalidValueError
from db.models import ModelStatus, ModelVersion, Role, User, Variant
from db.repositories._common import check_choice, clean_name, clean_optional, get_or_raise
from db.repositories.audit import record_audit
from db.repositories.projects import get_project
from db.roles import require_role


def create_model_version(
    session: Session,
    *,
    project_id: int,
    name: str,
    variant: str,
    backbone: str,
    category: str | None = None,
    config: dict[str, Any] | None = None,
    training_image_count: int = 0,
    job_id: int | None = None,
    parent_id: int | None = None,
    actor: User | None = None,
) -> ModelVersion:
    """Register a model version in status "pending" (its training job fills in the rest);
    ``parent_id`` names the model version it is retrained from (same project)."""
    if actor is not None:
        require_role(actor, Role.REVIEWER, action="train models")
    get_project(session, project_id)
    if parent_id is not None and get_model_version(session, parent_id).project_id != project_id:
        raise InvalidValueError(
            f"model version {parent_id} belongs to another project; retrain from a model of "
            "this project"
        )
    if training_image_count < 0:
        raise InvalidValueError(
            f"training_image_count must be 0 or more, got {training_image_count}"
        )
    model = ModelVersion(
        project_id=project_id,
        name=clean_name("model name", name, max_length=200),
        variant=check_choice("variant", variant, (v.value for v in Variant)),
        backbone=clean_name("backbone", backbone, max_length=64),
        category=clean_optional(category, max_length=128, what="category"),
        config_json=dict(config or {}),
        status=ModelStatus.PENDING.value,
        training_image_count=training_image_count,
        job_id=job_id,
        parent_id=parent_id,
        created_by=actor.id if actor is not None else None,
    )
    session.add(model)
    session.flush()
    record_audit(
        session,
        action="model_version.create",
        entity_type="model_version",
        entity_id=model.id,
        user=actor,
        details={
            "name": model.name,
            "variant": model.variant,
            "backbone": model.backbone,
            **({"parent_id": parent_id} if parent_id is not None else {}),
        },
    )
    return model


def get_model_version(session: Session, model_version_id: int) -> ModelVersion:
    """The model version with this id, or `NotFoundError`."""
    return get_or_raise(session, ModelVersion, model_version_id, "model version")


def set_model_job(session: Session, model_version_id: int, job_id: int) -> ModelVersion:
    """Link a model version to the job that trains it."""
    model = get_model_version(session, model_version_id)
    model.job_id = job_id
    session.flush()
    return model


def mark_model_ready(
    session: Session,
    model_version_id: int,
    *,
    artifact_path: str,
    metrics: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    training_image_count: int | None = None,
) -> ModelVersion:
    """Record a finished training: artifact (relative to the data dir), metrics, calibration."""
    model = get_model_version(session, model_version_id)
    model.artifact_path = clean_name("artifact path", artifact_path, max_length=512)
    if metrics is not None:
        model.metrics_json = dict(metrics)
    if calibration is not None:
        model.calibration_json = dict(calibration)
    if config is not None:
        model.config_json = dict(config)
    if training_image_count is not None:
        model.training_image_count = training_image_count
    model.status = ModelStatus.READY.value
    session.flush()
    record_audit(
        session, action="model_version.ready", entity_type="model_version", entity_id=model.id
    )
    return model


def mark_model_failed(
    session: Session, model_version_id: int, *, reason: str | None = None
) -> ModelVersion:
    """Record that training failed (the reason is kept in the audit log and the job)."""
    model = get_model_version(session, model_version_id)
    model.status = ModelStatus.FAILED.value
    session.flush()
    record_audit(
        session,
        action="model_version.failed",
        entity_type="model_version",
        entity_id=model.id,
        details={"reason": reason} if reason else None,
    )
    return model


def list_model_versions(
    session: Session,
    *,
    project_id: int,
    category: str | None = None,
    status: str | None = None,
    variant: str | None = None,
) -> list[ModelVersion]:
    """Model versions of a project, newest first, optionally by category, status or variant."""
    query = select(ModelVersion).where(ModelVersion.project_id == project_id)
    if category is not None:
        query = query.where(ModelVersion.category == category)
    if status is not None:
        query = query.where(
            ModelVersion.status == check_choice("status", status, (s.value for s in ModelStatus))
        )
    if variant is not None:
        query = query.where(
            ModelVersion.variant == check_choice("variant", variant, (v.value for v in Variant))
        )
    return list(
        session.scalars(query.order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc()))
    )


def model_names(session: Session, model_version_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """(name, variant) of each existing model version among `model_version_ids`."""
    ids = sorted(set(model_version_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.name, ModelVersion.variant).where(
            ModelVersion.id.in_(ids)
        )
    )
    return {int(i): (str(name), str(variant)) for i, name, variant in rows}


def parent_ids(session: Session, model_version_ids: Iterable[int]) -> dict[int, int]:
    """The parent of each model version among `model_version_ids` that was retrained from one."""
    ids = sorted(set(model_version_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.parent_id).where(
            ModelVersion.id.in_(ids), ModelVersion.parent_id.is_not(None)
        )
    )
    return {int(i): int(p) for i, p in rows if p is not None}
