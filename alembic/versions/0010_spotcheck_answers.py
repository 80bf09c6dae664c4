"""六问 spot-checks (抽查): each answer an official gives to a question of the questionnaire, one row per
call-out and question (the first answer stands; every answer, and every reply that was not one, is
also on the record).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("callout_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("question", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=8), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["callout_id"], ["callouts.id"], name="fk_answers_callout_id_callouts"),
        sa.PrimaryKeyConstraint("id", name="pk_answers"),
        sa.UniqueConstraint("callout_id", "question", name="uq_answers_callout_id"),
    )
    op.create_index("ix_answers_record_id", "answers", ["record_id"], unique=False)
    op.create_index("ix_answers_person_at", "answers", ["person_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_answers_person_at", table_name="answers")
    op.drop_index("ix_answers_record_id", table_name="answers")
    op.drop_table("answers")
