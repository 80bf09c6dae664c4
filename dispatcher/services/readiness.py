"""What ``/readyz`` asks of the database: that it answers, that its schema is the code's, that a
site is loaded — then the engine's own checks (``services/heartbeat.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.orm import Session

from ..db import sites_repo
from ..db.migrate import head_revision
from .heartbeat import engine_health


def database_checks(session: Session, database_url: str, now: datetime) -> Iterator[tuple[str, str]]:
    """Each check as it is made: (name, "ok" or a sentence). One that raises ends the checks, and
    the ones given before it stand — the caller reports the failure."""
    session.execute(text("SELECT 1"))
    yield "database", "ok"
    rev = MigrationContext.configure(session.connection()).get_current_revision()
    head = head_revision(database_url)
    yield "schema", "ok" if rev == head else f"at {rev}, expected {head}: run `jiaoying db upgrade`"
    yield "site", "ok" if sites_repo.site_digest(session) else "no site loaded: run `jiaoying load`"
    yield from engine_health(session, now).items()
