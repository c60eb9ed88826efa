"""The decision thresholds' saved revisions and the threshold simulator's replayed turns.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "threshold_setting",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("calibration", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "replay_turn",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("job.id"), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("turn_key", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("logged", sa.String(16), nullable=False),
        sa.Column("top1", sa.Float(), nullable=True),
        sa.Column("top2", sa.Float(), nullable=True),
        sa.Column("has_ranking", sa.Boolean(), nullable=False),
        sa.Column("exact", sa.Boolean(), nullable=False),
        sa.Column("answer_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("job_id", "session_id", "turn_key", name="uq_replay_turn_key"),
    )
    op.create_index("ix_replay_turn_session_id", "replay_turn", ["session_id"])
    op.create_index("ix_replay_turn_job", "replay_turn", ["job_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_replay_turn_job", "replay_turn")
    op.drop_index("ix_replay_turn_session_id", "replay_turn")
    op.drop_table("replay_turn")
    op.drop_table("threshold_setting")
