"""Projects, the batches uploaded into them, and their images."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models._checks import one_of
from db.models.base import Base, UTCDateTime, utcnow
from db.models.enums import BatchPurpose, KnownLabel, values_of


class Project(Base):
    """One inspected part or production line."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"Project(id={self.id!r}, name={self.name!r})"


class ImageBatch(Base):
    """One upload (or several into the same batch): training normals or images to inspect."""

    __tablename__ = "image_batches"
    __table_args__ = (one_of("purpose", values_of(BatchPurpose)),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    accepted_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"ImageBatch(id={self.id!r}, name={self.name!r}, purpose={self.purpose!r})"


class Image(Base):
    """One stored image file, identified by its content hash within a project."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256"),
        Index("ix_images_project_id_category", "project_id", "category"),
        one_of("known_label", values_of(KnownLabel), nullable=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("image_batches.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    storage_path: Mapped[str] = mapped_column(String(255))
    original_name: Mapped[str] = mapped_column(String(512))
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    category: Mapped[str | None] = mapped_column(String(128))
    known_label: Mapped[str | None] = mapped_column(String(16))
    defect_type: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    batch: Mapped[ImageBatch] = relationship()

    def __repr__(self) -> str:
        return f"Image(id={self.id!r}, original_name={self.original_name!r})"
