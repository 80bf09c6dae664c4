"""The county as it is organised: a village's groups and grids (15-digit codes), hazard zones, town
duty rooms, several numbers per person (and which of them an attempt calls), responsibilities (包保),
warnings that name zones, and an index for the period assessment (call-outs by start time).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.alter_column("code", existing_type=sa.String(length=12), type_=sa.String(length=15))
        batch_op.alter_column("parent_code", existing_type=sa.String(length=12), type_=sa.String(length=15))
        batch_op.add_column(sa.Column("kind", sa.String(length=20), server_default="", nullable=False))
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.alter_column("area_code", existing_type=sa.String(length=12), type_=sa.String(length=15))
        batch_op.add_column(sa.Column("phone_kind", sa.String(length=12), server_default="mobile", nullable=False))
        batch_op.add_column(sa.Column("phones", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("responsibilities", sa.JSON(), server_default="[]", nullable=False))
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("room", sa.String(length=15), nullable=True))
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("zones", sa.JSON(), server_default="[]", nullable=False))
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_callouts_started_at", "callouts", ["started_at"])
    op.create_table(
        "zones",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_zones"),
    )
    op.create_table(
        "duty_rooms",
        sa.Column("area", sa.String(length=15), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("area", name="pk_duty_rooms"),
    )


def downgrade() -> None:
    op.drop_table("duty_rooms")
    op.drop_index("ix_callouts_started_at", table_name="callouts")
    op.drop_table("zones")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("number")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_column("zones")
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.drop_column("room")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("responsibilities")
        batch_op.drop_column("phones")
        batch_op.drop_column("phone_kind")
        batch_op.alter_column("area_code", existing_type=sa.String(length=15), type_=sa.String(length=12))
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.drop_column("kind")
        batch_op.alter_column("parent_code", existing_type=sa.String(length=15), type_=sa.String(length=12))
        batch_op.alter_column("code", existing_type=sa.String(length=15), type_=sa.String(length=12))
