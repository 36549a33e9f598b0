"""Which images (and which reviewer verdicts) a model version was trained on."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models._checks import one_of
from db.models.base import Base
from db.models.enums import TrainingSource, values_of


class TrainingImage(Base):
    """One training image of a model version: why it went in, and the verdict that let it in."""

    __tablename__ = "model_version_training_images"
    __table_args__ = (
        Index("ix_model_version_training_images_image_id", "image_id"),
        one_of("source", values_of(TrainingSource)),
    )

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    # The reviewer verdict (current when training was queued) that confirmed the image normal.
    verdict_id: Mapped[int | None] = mapped_column(
        ForeignKey("verdicts.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(16))

    def __repr__(self) -> str:
        return (
            f"TrainingImage(model_version_id={self.model_version_id!r}, "
            f"image_id={self.image_id!r}, source={self.source!r})"
        )
