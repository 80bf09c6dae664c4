"""broadcast orders: kept until the rural emergency broadcast platform has taken them

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcast_orders",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("warning_id", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["warning_id"], ["warnings.id"], name=op.f("fk_broadcast_orders_warning_id_warnings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_orders")),
    )
    with op.batch_alter_table("broadcast_orders", schema=None) as batch_op:
        batch_op.create_index("ix_broadcast_orders_due", ["state", "next_try_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("broadcast_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_orders_due")

    op.drop_table("broadcast_orders")
