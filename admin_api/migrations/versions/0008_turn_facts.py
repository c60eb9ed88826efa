"""The dashboard's pre-aggregated customer turns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turn_fact",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("turn_key", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("intent", sa.String(255), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("confidence_bin", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.String(255), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("answer_id", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.UniqueConstraint("session_id", "turn_key", name="uq_turn_fact_key"),
    )
    op.create_index("ix_turn_fact_session_id", "turn_fact", ["session_id"])
    op.create_index("ix_turn_fact_window", "turn_fact",
                    ["at", "outcome", "session_id", "model_id", "intent", "confidence",
                     "confidence_bin", "answer_id", "latency_ms", "day"])
    op.create_index("ix_turn_fact_day", "turn_fact",
                    ["day", "session_id", "outcome", "confidence"])


def downgrade() -> None:
    for index in ("ix_turn_fact_day", "ix_turn_fact_window", "ix_turn_fact_session_id"):
        op.drop_index(index, "turn_fact")
    op.drop_table("turn_fact")
