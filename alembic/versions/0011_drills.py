"""Drills (演练): the ``drills`` table — a drill scheduled (blind 双盲, or announced), started now, or
posted by an agency; its schedule is a durable timer like an escalation step's, and its record is
its warning's.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drills",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("scenario", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record_id", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=128), nullable=True),
        sa.Column("ending", sa.String(length=12), nullable=True),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["warnings.id"], name="fk_drills_record_id_warnings"),
        sa.PrimaryKeyConstraint("id", name="pk_drills"),
        sa.UniqueConstraint("record_id", name="uq_drills_record_id"),
    )
    op.create_index("ix_drills_due", "drills", ["state", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_drills_due", table_name="drills")
    op.drop_table("drills")
