"""Index call-outs by the message that started them: applying a warning counts its call-outs and
looks up the ones it superseded, which scanned every call-out of the county's history.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_callouts_warning_id", "callouts", ["warning_id"])


def downgrade() -> None:
    op.drop_index("ix_callouts_warning_id", table_name="callouts")
