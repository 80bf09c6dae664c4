"""Statements over many rows: one parameter for them all on PostgreSQL, the plain forms on SQLite.

psycopg runs an executemany as one statement per row (pipelined, each parsed, bound and executed by
the server), and an ``IN (…)`` list of 500 ids as 500 placeholders in an SQL text whose length
changes with the list, so psycopg parses it again each time and the server never prepares it. In a
fan-out the workers and the scheduler do both for every attempt. On PostgreSQL these helpers send
the rows as one JSON text (``json_populate_recordset``: the table's own row type converts each value)
and a list of ids as one array literal (``= ANY``): one statement, a fixed text, one or two
parameters, built by orjson. (A Python list per column was tried first: psycopg escapes
each string of a list in Python, which cost more than the executemany.) SQLite runs in process (no
round trips) and keeps ``IN`` lists and executemany. Measured in bench/README.md (2026-12-02,
"Rows as one parameter").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, ColumnElement, Enum, Float, Integer, String, Table, any_, bindparam, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import UserDefinedType

from .tables import UTCDateTime


def on_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values`` for an integer or a text column: on PostgreSQL ``column = ANY(:array)``, the
    array one literal (one parameter, one SQL text, whatever the number of values)."""
    text_column = isinstance(column.type, String)
    if on_postgres(session):
        if text_column:
            return column == any_(bindparam(None, _text_array(values), type_=_Array("TEXT")))
        return column == any_(bindparam(None, _int_array(values), type_=_Array("INTEGER")))
    return column.in_([_text(v) for v in values] if text_column else [int(i) for i in values])


def custom_plans(session: Session) -> None:
    """On PostgreSQL, plan every further statement of this transaction for its own parameters.

    psycopg prepares a statement on its fifth run, and PostgreSQL then settles on a generic plan,
    made without the parameters' values. In such a plan an ``= ANY(:array)`` the planner keeps as a
    filter is searched element by element for every row it looks at; planned with the values, the
    array is a constant and is hashed once. An apply's look-ups of 1,000 people among the warning's
    call-outs so far (``person_id`` is the second column of their indexes, and a county's first big
    fan-out plans them from the statistics of an empty table) took 35-250 ms each that way: 2.8 s of
    the server's 13.5-15.2 s of statement time in a 10,000-official fan-out on the build machine.
    Planning each one costs well under a millisecond. (``IN (SELECT unnest(:array))`` was tried
    instead: on the same statistics the planner ran the unnest again for every row, and it was slower
    still.)"""
    if on_postgres(session):
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]], conflict: str | None = None) -> int:
    """Insert ``rows`` (every row the same columns, else ValueError); with ``conflict``, a row whose
    ``conflict`` column value is already there is skipped. Returns how many were inserted."""
    if not rows:
        return 0
    names = _same_columns(rows)
    times = _plain(table, names)
    if on_postgres(session):
        statement = _json_insert(session.get_bind().dialect, table, names, conflict)
        result = session.connection().execute(statement, {"rows": _json(rows, times)})
        return result.rowcount if result.rowcount and result.rowcount > 0 else 0
    stmt = sqlite.insert(table)
    if conflict is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[conflict])
    total = 0
    for start in range(0, len(rows), 1000):
        result = session.connection().execute(stmt, list(rows[start:start + 1000]))
        total += result.rowcount if result.rowcount and result.rowcount > 0 else 0
    return total


def update_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: str = "id") -> None:
    """Set each row's columns on the table's row whose integer ``key`` column equals the row's ``key``
    value (every row the same columns, ``key`` among them, else ValueError)."""
    if not rows:
        return
    names = _same_columns(rows)
    times = _plain(table, names)
    if on_postgres(session):
        statement = _json_update(session.get_bind().dialect, table, names, key)
        session.connection().execute(statement, {"rows": _json(rows, times), "keys": _int_array(r[key] for r in rows)})
        return
    session.connection().execute(_keyed_update(table, names, key),
                                 [{("_key" if n == key else n): v for n, v in row.items()} for row in rows])


def _same_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    first = rows[0].keys()
    for row in rows:
        if row.keys() != first:
            raise ValueError(f"rows to write together must name the same columns: {sorted(first)} and {sorted(row)}")
    return tuple(first)


class _Array(UserDefinedType[str]):
    """A parameter sent as the text of an array and declared ``<element>[]`` where it is used, so the
    server reads it as an array constant once. (Sent as VARCHAR and cast in the statement, it was
    parsed again for every row a scan looked at: a claim's 500 ids, 0.6 s.)"""

    cache_ok = True
    render_bind_cast = True

    def __init__(self, element: str) -> None:
        self.element = element

    def get_col_spec(self, **_: Any) -> str:
        return f"{self.element}[]"


def _text_array(values: Any) -> str:
    """A PostgreSQL array literal of text: each element quoted, its backslashes and quotes escaped
    (inside quotes anything else — commas, braces, spaces, the word NULL — is taken as written)."""
    return "{" + ",".join('"' + _text(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a text column is compared with text, not {type(value).__name__}: {value!r}")
    return value


def _int_array(ids: Any) -> str:
    """A PostgreSQL array literal of integers (int() refuses anything else)."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def _json(rows: Sequence[dict[str, Any]], times: tuple[str, ...]) -> str:
    """The rows as one JSON text, by orjson: times as ISO 8601 with their offset, which PostgreSQL
    reads as they are. The standard library's encoder, called back for every time, took 10 times as
    long (26 ms for a part's 1,000 call-outs, 2.4 ms now): a fifth of the scheduler's CPU in a
    fan-out. A naive time in a time column is refused, as UTCDateTime refuses it."""
    for name in times:
        for row in rows:
            value = row[name]
            if isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError(f"naive datetime refused in {name}: times are stored with their offset")
    return orjson.dumps(rows, default=_refused, option=orjson.OPT_NON_STR_KEYS).decode()


def _refused(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} cannot be written in bulk: {value!r}")


@lru_cache(maxsize=128)
def _plain(table: Table, names: tuple[str, ...]) -> tuple[str, ...]:
    """PostgreSQL's path converts values as JSON does (times as ISO text with their offset): it is for
    columns whose type does nothing more to a value. Another type is refused on both databases, so a
    caller finds out on SQLite too. Returns the names of the time columns."""
    for name in names:
        column_type = table.c[name].type
        if not isinstance(column_type, (String, Integer, Float, Boolean, JSON, UTCDateTime)) or \
                isinstance(column_type, Enum):
            raise TypeError(f"{table.name}.{name} ({column_type!r}) cannot be written in bulk")
    return tuple(name for name in names if isinstance(table.c[name].type, UTCDateTime))


@lru_cache(maxsize=64)
def _json_insert(dialect: Dialect, table: Table, names: tuple[str, ...], conflict: str | None) -> Any:
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(n) for n in names)
    sql = (f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} "
           f"FROM json_populate_recordset(NULL::{quote(table.name)}, CAST(:rows AS json))")
    if conflict is not None:
        sql += f" ON CONFLICT ({quote(conflict)}) DO NOTHING"
    return text(sql)


@lru_cache(maxsize=64)
def _json_update(dialect: Dialect, table: Table, names: tuple[str, ...], key: str) -> Any:
    quote = dialect.identifier_preparer.quote
    name = quote(table.name)
    sets = ", ".join(f"{quote(n)} = u.{quote(n)}" for n in names if n != key)
    # "= ANY" beside the join: with the statistics of a young table (a county's first warnings) the
    # join alone was planned as a hash join over a scan of every attempt; the key's index it is.
    return text(f"UPDATE {name} SET {sets} FROM json_populate_recordset(NULL::{name}, CAST(:rows AS json)) AS u "
                f"WHERE {name}.{quote(key)} = u.{quote(key)} AND {name}.{quote(key)} = ANY(CAST(:keys AS integer[]))")


@lru_cache(maxsize=64)
def _keyed_update(table: Table, names: tuple[str, ...], key: str) -> Any:
    return update(table).where(table.c[key] == bindparam("_key")).values(
        {n: bindparam(n) for n in names if n != key})
