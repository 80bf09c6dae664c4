"""Indexes for the engine's claims at county scale.

- ``ix_callouts_warning_person`` (new) and ``ix_callouts_record_person`` (was ``ix_callouts_record_id``):
  applying a warning counts its call-outs and looks up the ones it superseded, which scanned every
  call-out of the county's history; and each part of its start asks, for the part's people, who this
  message and this event already reached, which read every call-out of the event so far.
- ``ix_callouts_due`` with the priority: the scheduler picks the due call-outs (highest level first)
  from the index alone, where it sorted every due row, frozen steps and all, for each batch.
- ``ix_attempts_queue`` with the priority descending, as the claim orders (red first, then oldest):
  with it ascending, each claim read and sorted every queued attempt of the top priority.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_callouts_warning_person", "callouts", ["warning_id", "person_id"])
    op.drop_index("ix_callouts_record_id", table_name="callouts")
    op.create_index("ix_callouts_record_person", "callouts", ["record_id", "person_id"])
    op.drop_index("ix_callouts_due", table_name="callouts")
    op.create_index("ix_callouts_due", "callouts", ["state", "next_due", "priority"])
    op.drop_index("ix_attempts_queue", table_name="attempts")
    op.create_index("ix_attempts_queue", "attempts", ["status", sa.text("priority DESC"), "id"])


def downgrade() -> None:
    op.drop_index("ix_attempts_queue", table_name="attempts")
    op.create_index("ix_attempts_queue", "attempts", ["status", "priority", "id"])
    op.drop_index("ix_callouts_due", table_name="callouts")
    op.create_index("ix_callouts_due", "callouts", ["state", "next_due"])
    op.drop_index("ix_callouts_record_person", table_name="callouts")
    op.create_index("ix_callouts_record_id", "callouts", ["record_id"])
    op.drop_index("ix_callouts_warning_person", table_name="callouts")
