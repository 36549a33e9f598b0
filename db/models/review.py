"""Reviewer verdicts (append-only) and versioned decision thresholds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models._checks import one_of
from db.models.base import Base, UTCDateTime, utcnow
from db.models.enums import VerdictLabel, values_of


class Verdict(Base):
    """One reviewer decision; an image's current verdict is its latest by (created_at, id)."""

    __tablename__ = "verdicts"
    __table_args__ = (
        Index("ix_verdicts_image_id_created_at_id", "image_id", "created_at", "id"),
        one_of("label", values_of(VerdictLabel)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"Verdict(id={self.id!r}, image_id={self.image_id!r}, label={self.label!r})"


class Threshold(Base):
    """One saved threshold version for a model version (and optionally one category).

    `value` is T1: scores at or above it are anomalous. With `upper_value` (T2) the pair is a
    review band: below T1 passes, at or above T2 fails, in between goes to a person.
    """

    __tablename__ = "thresholds"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint("upper_value IS NULL OR upper_value >= value", name="upper_value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    category: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    upper_value: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(32))
    params_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return (
            f"Threshold(id={self.id!r}, model_version_id={self.model_version_id!r}, "
            f"category={self.category!r}, version={self.version!r}, active={self.is_active!r})"
        )


# NULL categories would be distinct in a plain unique index, so both indexes key on
# coalesce(category, ''): one scope per (model version, category or "all categories").
Index(
    "uq_thresholds_one_active",
    Threshold.model_version_id,
    func.coalesce(Threshold.category, ""),
    unique=True,
    sqlite_where=Threshold.is_active,
    postgresql_where=Threshold.is_active,
)
Index(
    "uq_thresholds_version",
    Threshold.model_version_id,
    func.coalesce(Threshold.category, ""),
    Threshold.version,
    unique=True,
)
