"""Scores of images under model versions, and their heatmaps (one per method)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
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

    heatmaps: Mapped[list[Heatmap]] = relationship(back_populates="score")

    def __repr__(self) -> str:
        return (
            f"Score(id={self.id!r}, image_id={self.image_id!r}, "
            f"model_version_id={self.model_version_id!r}, score={self.score!r})"
        )


class Heatmap(Base):
    """One heatmap of a score by one method (``jobspec.HeatmapMethod``), as 8-bit PNG bytes."""

    __tablename__ = "heatmaps"
    __table_args__ = (UniqueConstraint("score_id", "method"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    score_id: Mapped[int] = mapped_column(ForeignKey("scores.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(32))
    png: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    score: Mapped[Score] = relationship(back_populates="heatmaps")
