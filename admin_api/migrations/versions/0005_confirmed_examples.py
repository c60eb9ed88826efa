"""Training examples confirmed by customers' thumbs-up remember their feedback.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_example") as batch:
        batch.add_column(sa.Column("feedback_id", sa.Integer(), nullable=True))
        batch.create_index("ix_training_example_feedback_id", ["feedback_id"])


def downgrade() -> None:
    with op.batch_alter_table("training_example") as batch:
        batch.drop_index("ix_training_example_feedback_id")
        batch.drop_column("feedback_id")
