"""Several heatmaps per score, one per method.

Heatmaps stored before this revision came from the score job's default method of their time, the
last-stage Grad-CAM; they keep that name (``gradcam``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("heatmaps") as batch:
        batch.add_column(
            sa.Column("method", sa.String(length=32), nullable=False, server_default="gradcam")
        )
        batch.drop_constraint("uq_heatmaps_score_id", type_="unique")
        batch.create_unique_constraint("uq_heatmaps_score_id_method", ["score_id", "method"])
    with op.batch_alter_table("heatmaps") as batch:
        batch.alter_column("method", server_default=None)


def downgrade() -> None:
    # One heatmap per score again: keep the newest of each score's heatmaps.
    op.execute(
        "DELETE FROM heatmaps WHERE id NOT IN (SELECT MAX(id) FROM heatmaps GROUP BY score_id)"
    )
    with op.batch_alter_table("heatmaps") as batch:
        batch.drop_constraint("uq_heatmaps_score_id_method", type_="unique")
        batch.create_unique_constraint("uq_heatmaps_score_id", ["score_id"])
        batch.drop_column("method")
