"""Record keys: each event names the record key that signed it (HMAC-SHA256 with a key derived from
the app's secret, kept outside the database); the warning row keeps a seal over the record's head;
a ledger of records chains every new record to the one before it, with its head in one row.

Events already on file keep no key id: they still verify by their plain SHA-256 chain, reported as
written before keying.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_seal", sa.String(length=64), nullable=True))
    op.create_table(
        "record_ledger",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_mac", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_record_ledger"),
        sa.UniqueConstraint("record_id", name="uq_record_ledger_record_id"),
    )
    head = op.create_table(
        "record_ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("seal", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_record_ledger_head"),
    )
    # The one head row, here rather than by the first writer: concurrent first writers need not race.
    op.bulk_insert(head, [{"id": 1, "count": 0, "head": "0" * 64, "key_id": None, "seal": None}])


def downgrade() -> None:
    op.drop_table("record_ledger_head")
    op.drop_table("record_ledger")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_column("record_seal")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("key_id")
