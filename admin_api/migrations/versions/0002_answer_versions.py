"""Answer versions: a global clock, each answer's version, and tombstones of deleted answers.

The retriever in the action server polls ``/api/v1/answers/changes?since=N`` and needs every
write, deletions included, in commit order; see ``admin_api/crud.py``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answer") as batch:
        batch.add_column(sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"))
        batch.create_index("ix_answer_version", ["version"])
    op.create_table(
        "answer_clock",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO answer_clock (id, version) VALUES (1, 1)")
    op.create_table(
        "answer_tombstone",
        sa.Column("answer_id", sa.BigInteger(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_answer_tombstone_version", "answer_tombstone", ["version"])


def downgrade() -> None:
    op.drop_index("ix_answer_tombstone_version", table_name="answer_tombstone")
    op.drop_table("answer_tombstone")
    op.drop_table("answer_clock")
    with op.batch_alter_table("answer") as batch:
        batch.drop_index("ix_answer_version")
        batch.drop_column("version")
