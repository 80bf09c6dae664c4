"""The migrations build exactly the schema the code's tables declare, on SQLite and PostgreSQL —
a table or index added to the models without its migration would reach production missing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dispatcher.db.migrate import current_revision, head_revision
from dispatcher.db.session import engine_for
from dispatcher.db.tables import Base


def test_the_migrated_schema_matches_the_tables(database_url: str) -> None:
    assert current_revision(database_url) == head_revision(database_url)
    with engine_for(database_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], f"models and migrations differ: {differences}"
