"""Engine hardening: attempts wait for their retry time (a transient failure or an open circuit is a
wait, not a failure); a warning or call-out the engine could not process keeps its error and is
tried again later while the others carry on; an inbound reply or keypress keeps the provider's id,
so a replayed webhook changes nothing.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("apply_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("apply_retry_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("callouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_ref", sa.String(length=160), nullable=True))
        batch_op.create_unique_constraint("uq_inbound_provider_ref", ["provider_ref"])


def downgrade() -> None:
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_provider_ref", type_="unique")
        batch_op.drop_column("provider_ref")
    with op.batch_alter_table("callouts", schema=None) as batch_op:
        batch_op.drop_column("error")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_column("apply_retry_at")
        batch_op.drop_column("apply_error")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("not_before")
