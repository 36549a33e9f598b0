"""Model lineage: the parent a model version was retrained from, and every model version's
training images (with the reviewer verdict that confirmed an added image normal).

Model versions trained before this revision have no training-image rows; the store reads their
training images from their training job's parameters instead.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_model_versions_parent_id_model_versions"),
            "model_versions",
            ["parent_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_model_versions_parent_id", ["parent_id"])
    op.create_table(
        "model_version_training_images",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("verdict_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "source IN ('batch', 'parent', 'confirmed_normal')",
            name=op.f("ck_model_version_training_images_source"),
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_training_images_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_model_version_training_images_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["verdict_id"],
            ["verdicts.id"],
            name=op.f("fk_model_version_training_images_verdict_id_verdicts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint(
            "model_version_id", "image_id", name=op.f("pk_model_version_training_images")
        ),
    )
    op.create_index(
        "ix_model_version_training_images_image_id",
        "model_version_training_images",
        ["image_id"],
    )
    op.create_index(
        "ix_model_version_training_images_verdict_id",
        "model_version_training_images",
        ["verdict_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_model_version_training_images_verdict_id", table_name="model_version_training_images"
    )
    op.drop_index(
        "ix_model_version_training_images_image_id", table_name="model_version_training_images"
    )
    op.drop_table("model_version_training_images")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_index("ix_model_versions_parent_id")
        batch.drop_constraint(
            op.f("fk_model_versions_parent_id_model_versions"), type_="foreignkey"
        )
        batch.drop_column("parent_id")
