"""People and tokens, answer revisions, the review inbox, training examples, the audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answer") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger(), nullable=False,
                                   server_default="1"))
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False, unique=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    op.create_table(
        "answer_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("answer_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changed", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("answer_id", "revision", name="uq_answer_revision"),
    )
    op.create_index("ix_answer_revision_answer_id", "answer_revision", ["answer_id"])
    # Answers that exist before this migration get their first revision from their row.
    answer = sa.table("answer", sa.column("id"), sa.column("intent"), sa.column("title"),
                      sa.column("body"), sa.column("questions", sa.JSON()),
                      sa.column("tags", sa.JSON()), sa.column("status"),
                      sa.column("updated_at"))
    rows = op.get_bind().execute(sa.select(answer)).mappings().all()
    if rows:
        op.bulk_insert(
            sa.table("answer_revision", sa.column("answer_id"), sa.column("revision"),
                     sa.column("action"), sa.column("changed", sa.JSON()),
                     sa.column("data", sa.JSON()), sa.column("author"),
                     sa.column("created_at")),
            [{"answer_id": r["id"], "revision": 1, "action": "create", "changed": [],
              "data": {k: r[k] for k in ("id", "intent", "title", "body", "questions", "tags",
                                         "status")},
              "author": None, "created_at": r["updated_at"]} for r in rows],
        )
    op.create_table(
        "review_item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("intent", sa.String(length=100), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("answer_id", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.String(length=128), nullable=True),
        sa.Column("turn_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.JSON(), nullable=False),
        sa.Column("handled_by", sa.String(length=64), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("session_id", "message_id", name="uq_review_message"),
    )
    op.create_index("ix_review_item_session_id", "review_item", ["session_id"])
    op.create_index("ix_review_item_turn_at", "review_item", ["turn_at"])
    op.create_index("ix_review_item_status", "review_item", ["status"])
    op.create_table(
        "training_example",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("review_item_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_training_example_intent", "training_example", ["intent"])
    op.create_index("ix_training_example_status", "training_example", ["status"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])


def downgrade() -> None:
    for table in ("audit_log", "training_example", "review_item", "answer_revision",
                  "api_token", "user"):
        op.drop_table(table)
    with op.batch_alter_table("answer") as batch:
        batch.drop_column("revision")
