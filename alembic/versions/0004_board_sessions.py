"""board sessions: kept server-side, so signing out ends a session everywhere

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "board_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_board_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_sessions")),
    )
    with op.batch_alter_table("board_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_board_sessions_user", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("board_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_board_sessions_user")
    op.drop_table("board_sessions")
