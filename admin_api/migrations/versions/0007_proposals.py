"""Proposed answers: clusters of the questions the bot could not answer; a console session
remembers the token it was signed in with.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answer_proposal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("nearest_answer_id", sa.Integer(), nullable=True),
        sa.Column("nearest_title", sa.String(200), nullable=True),
        sa.Column("nearest_score", sa.Float(), nullable=True),
        sa.Column("candidate_bodies", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("handled_by", sa.String(64), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_answer_proposal_status", "answer_proposal", ["status"])
    with op.batch_alter_table("console_session") as batch:
        batch.add_column(sa.Column("token_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_console_session_token_id", "api_token", ["token_id"],
                                 ["id"])


def downgrade() -> None:
    with op.batch_alter_table("console_session") as batch:
        batch.drop_constraint("fk_console_session_token_id", type_="foreignkey")
        batch.drop_column("token_id")
    op.drop_index("ix_answer_proposal_status", "answer_proposal")
    op.drop_table("answer_proposal")
