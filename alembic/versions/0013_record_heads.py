"""The record's head in its own row (``record_heads``), no longer on the warning's row.

A start holds the warning's row for each part of its call-outs (up to a thousand officials, a second
or more on a busy server), and every worker recording what it had just sent locked the same row to
append to the record: 2–5 s of a 10,000-official fan-out were workers waiting for it. Heads are
copied as they are (count, MAC, seal), so every record verifies as before.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_heads",
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("seal", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["warnings.id"], name=op.f("fk_record_heads_record_id_warnings")),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_record_heads")),
    )
    op.execute("INSERT INTO record_heads (record_id, count, head, seal) "
               "SELECT id, record_count, record_head, record_seal FROM warnings WHERE record_count > 0")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_column("record_seal")
        batch_op.drop_column("record_head")
        batch_op.drop_column("record_count")


def downgrade() -> None:
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("record_head", sa.String(length=64), nullable=False,
                                      server_default="0" * 64))
        batch_op.add_column(sa.Column("record_seal", sa.String(length=64), nullable=True))
    for column, kept in (("record_count", "count"), ("record_head", "head"), ("record_seal", "seal")):
        op.execute(f"UPDATE warnings SET {column} = (SELECT h.{kept} FROM record_heads h "
                   f"WHERE h.record_id = warnings.id) WHERE id IN (SELECT record_id FROM record_heads)")
    op.drop_table("record_heads")
