"""The roll-call and spot-check lists, workbooks and period figures read every check's results in
a fixed number of queries, not three or four per check (a workbook holds up to 500): 30 checks cost
what 3 do. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from dispatcher.db.session import engine_for, transaction
from dispatcher.services import rollcalls, spotchecks
from tests.conftest import FIXED_NOW


@contextmanager
def counted(url: str) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = engine_for(url)
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _start(url: str, many: int) -> None:
    with transaction(url) as session:
        for i in range(many):
            at = FIXED_NOW + timedelta(days=i)
            rollcalls.start_now(session, None, at, actor="test")
            spotchecks.start(session, None, at, "test", size=1, seed=i)


def _cost(url: str, read: Callable[[Session], object]) -> int:
    with transaction(url, write=False) as session, counted(url) as statements:
        read(session)
    return len(statements)


READS: dict[str, Callable[[Session], object]] = {
    "roll-call workbook": lambda s: rollcalls.to_xlsx(s),
    "spot-check history": lambda s: spotchecks.history(s, 50),
    "spot-check workbook": lambda s: spotchecks.to_xlsx(s),
    "spot-check period": lambda s: spotchecks.period(s, FIXED_NOW - timedelta(days=1), FIXED_NOW + timedelta(days=60)),
}


def test_a_list_of_thirty_checks_costs_what_a_list_of_three_does(site_loaded: str) -> None:
    _start(site_loaded, 3)
    few = {name: _cost(site_loaded, read) for name, read in READS.items()}
    _start(site_loaded, 27)
    many = {name: _cost(site_loaded, read) for name, read in READS.items()}
    assert many == few, (few, many)
    assert max(many.values()) <= 8, many
