"""Scores of images under model versions, and their Grad-CAM heatmaps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, UTCDateTime, utcnow


class Score(Base):
    """The anomaly score of one image under one model version (one row per pair)."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("image_id", "model_version_id"),
        Index("ix_scores_model_version_id_score", "model_version_id", "score"),
        # The pages' data version reads the newest scoring time of a model on every rerun.
        Index("ix_scores_model_version_id_scored_at", "model_version_id", "scored_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    score: Mapped[float] = mapped_column(Float)
    percentile: Mapped[float | None] = mapped_column(Float)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    heatmap: Mapped[Heatmap | None] = relationship(back_populates="score", uselist=False)

    def __repr__(self) -> str:
        return (
            f"Score(id={self.id!r}, image_id={self.image_id!r}, "
            f"model_version_id={self.model_version_id!r}, score={self.score!r})"
        )


class Heatmap(Base):
    """The Grad-CAM heatmap of one score, as PNG bytes."""

    __tablename__ = "heatmaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    score_id: Mapped[int] = mapped_column(ForeignKey("scores.id", ondelete="CASCADE"), unique=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    score: Mapped[Score] = relationship(back_populates="heatmap")
