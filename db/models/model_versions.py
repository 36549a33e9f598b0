"""Trained (or training) AttentDifferNet model versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models._checks import one_of
from db.models.base import Base, UTCDateTime, utcnow
from db.models.enums import ModelStatus, Variant, values_of


class ModelVersion(Base):
    """One trained detector: variant, backbone, config, metrics, calibration, artifact."""

    __tablename__ = "model_versions"
    __table_args__ = (
        Index("ix_model_versions_project_id_category", "project_id", "category"),
        one_of("variant", values_of(Variant)),
        one_of("status", values_of(ModelStatus)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(16))
    backbone: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(128))
    config_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    calibration_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    artifact_path: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), default=ModelStatus.PENDING.value)
    training_image_count: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    # The model version this one was retrained from (its training images plus reviewed normals).
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"ModelVersion(id={self.id!r}, name={self.name!r}, variant={self.variant!r}, "
            f"status={self.status!r})"
        )
