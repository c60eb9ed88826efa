"""The staff console: sessions, hand-off claims, canned replies; merged inbox repeats.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_console_session_user_id", "console_session", ["user_id"])
    op.create_index("ix_console_session_last_seen_at", "console_session", ["last_seen_at"])
    op.create_table(
        "handoff_claim",
        sa.Column("session_id", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "canned_reply",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("review_item") as batch:
        batch.add_column(sa.Column("text_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("repeats", sa.Integer(), nullable=False, server_default="1"))
        batch.create_index("ix_review_item_text_key", ["text_key"])
    op.create_table(
        "review_repeat",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_item.id"), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("turn_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("session_id", "message_id", name="uq_review_repeat"),
    )
    op.create_index("ix_review_repeat_item_id", "review_repeat", ["item_id"])
    op.create_index("ix_review_repeat_session_id", "review_repeat", ["session_id"])


def downgrade() -> None:
    op.drop_table("review_repeat")
    with op.batch_alter_table("review_item") as batch:
        batch.drop_index("ix_review_item_text_key")
        batch.drop_column("repeats")
        batch.drop_column("text_key")
    op.drop_table("canned_reply")
    op.drop_table("handoff_claim")
    op.drop_index("ix_console_session_last_seen_at", "console_session")
    op.drop_index("ix_console_session_user_id", "console_session")
    op.drop_table("console_session")
