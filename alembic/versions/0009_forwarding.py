"""Forwarding up and across (转发, 上报): where each warning came from (``origin``: its key's agency, or
"local"; ``via``: the sites a forwarded CAP passed through), when the engine decided where it goes,
and the ``forwards`` table — each forward and settled-result report, kept and retried until taken.

Warnings already stored count as decided (``forward_checked_at`` = their receipt): turning
forwarding on never sends old warnings.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=128), server_default="local", nullable=False))
        batch_op.add_column(sa.Column("via", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("forward_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_warnings_forward_checked_at", ["forward_checked_at"], unique=False)
    op.execute("UPDATE warnings SET forward_checked_at = received_at")
    op.create_table(
        "forwards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("warning_id", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("target_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("msg_type", sa.String(length=10), nullable=False),
        sa.Column("identifier", sa.String(length=160), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["warning_id"], ["warnings.id"], name=op.f("fk_forwards_warning_id_warnings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forwards")),
        sa.UniqueConstraint("key", name=op.f("uq_forwards_key")),
    )
    with op.batch_alter_table("forwards", schema=None) as batch_op:
        batch_op.create_index("ix_forwards_due", ["status", "not_before"], unique=False)
        batch_op.create_index("ix_forwards_record_id", ["record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("forwards", schema=None) as batch_op:
        batch_op.drop_index("ix_forwards_record_id")
        batch_op.drop_index("ix_forwards_due")
    op.drop_table("forwards")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_index("ix_warnings_forward_checked_at")
        batch_op.drop_column("forward_checked_at")
        batch_op.drop_column("via")
        batch_op.drop_column("origin")
