"""Model versions of a project as plain values for pickers (never ORM objects across reruns)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dashboard.services.store import SessionFactory
from dashboard.services.text import display_name
from db.models import ModelStatus, TrainingSource
from db.repositories import list_model_versions, source_counts
from db.session import session_scope
from jobspec import VARIANT_NAMES as JOB_VARIANT_NAMES

logger = logging.getLogger(__name__)

# Plain-string keys: widgets compare and store them as strings.
VARIANT_NAMES: dict[str, str] = {str(variant): name for variant, name in JOB_VARIANT_NAMES.items()}


@dataclass(frozen=True)
class ModelChoice:
    """A model version offered in pickers."""

    id: int
    name: str
    variant: str
    backbone: str
    category: str | None
    created_at: datetime
    status: str = ModelStatus.READY.value
    calibration_scores: tuple[float, ...] = ()
    parent_id: int | None = None  # retrained from this model version
    confirmed_normals: int = 0  # images added to the parent's because reviewers said normal

    @property
    def lineage(self) -> str:
        """``"child of #3, +25 confirmed normals"``; empty for a model trained from batches."""
        return lineage_text(self.parent_id, self.confirmed_normals)

    @property
    def label(self) -> str:
        """Id, name, variant, backbone, category and lineage in one line."""
        scope = self.category or "all categories"
        variant = VARIANT_NAMES.get(self.variant, self.variant)
        name = display_name(self.name)
        parts = [f"#{self.id} {name}"]
        if not name.endswith(f"· {variant}"):  # names of multi-variant runs end with it
            parts.append(variant)
        return " · ".join([*parts, self.backbone, scope, *([self.lineage] if self.lineage else [])])


def lineage_text(parent_id: int | None, confirmed_normals: int) -> str:
    """``"child of #3, +25 confirmed normals"``; empty for a model trained from batches."""
    if parent_id is None and not confirmed_normals:
        return ""
    parent = "child of a deleted model" if parent_id is None else f"child of #{parent_id}"
    return f"{parent}, +{confirmed_normals} confirmed normals"


def _calibration_scores(calibration: dict[str, Any] | None) -> tuple[float, ...]:
    values = (calibration or {}).get("scores") or []  # the engine's Calibration.to_dict() layout
    try:
        return tuple(sorted(float(v) for v in values))
    except (TypeError, ValueError):
        logger.warning("ignoring unreadable calibration scores")
        return ()


def choices_in(
    session: Session, project_id: int, *, status: str | None = None
) -> list[ModelChoice]:
    """Model versions of a project, newest first, inside the caller's transaction."""
    models = list_model_versions(session, project_id=project_id, status=status)
    counts = source_counts(session, [m.id for m in models])
    added = TrainingSource.CONFIRMED_NORMAL.value
    return [
        ModelChoice(
            id=m.id,
            name=m.name,
            variant=m.variant,
            backbone=m.backbone,
            category=m.category,
            created_at=m.created_at,
            status=m.status,
            calibration_scores=_calibration_scores(m.calibration_json),
            parent_id=m.parent_id,
            confirmed_normals=counts.get(m.id, {}).get(added, 0),
        )
        for m in models
    ]


def model_choices(
    factory: SessionFactory, project_id: int, *, status: str | None = None
) -> list[ModelChoice]:
    """Model versions of a project, newest first (optionally only one status)."""
    with session_scope(factory) as session:
        return choices_in(session, project_id, status=status)


def ready_models(factory: SessionFactory, project_id: int) -> list[ModelChoice]:
    """Ready model versions of a project, newest first."""
    return model_choices(factory, project_id, status=ModelStatus.READY)
