"""An index for the newest scoring time of a model (the pages' data version reads it each run).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_scores_model_version_id_scored_at", "scores", ["model_version_id", "scored_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_scores_model_version_id_scored_at", table_name="scores")
