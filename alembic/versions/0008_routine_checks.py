"""The county's routine checks as call-outs of their own: a record (the warnings table) says what
kind of occasion it is (a warning, a duty roll-call 值班点名, a 六问 spot-check); a roll-call's
call-out says which duty room it answers for; and the site's roll-call and spot-check definitions
are kept beside its plans.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=12), server_default="warning", nullable=False))
    with op.batch_alter_table("callouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("room", sa.String(length=15), nullable=True))
    op.create_table(
        "checks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_checks"),
    )


def downgrade() -> None:
    op.drop_table("checks")
    with op.batch_alter_table("callouts", schema=None) as batch_op:
        batch_op.drop_column("room")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_column("kind")
