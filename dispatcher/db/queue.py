"""The database as the work queue: inserting attempts once, and claiming due work so that two
workers never take the same row (FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite every write
transaction holds the single write lock, see db.session)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from ..domain.callouts import OPEN_STATES
from .bulk import among, insert_rows, on_postgres
from .tables import AttemptRow, CalloutRow


def attempt_values(callout: CalloutRow | Row[Any], key: str, step_index: int, purpose: str, channel: str,
                   recipient: str, now: datetime, number: int = 0) -> dict[str, Any]:
    """The row of one attempt, queued: the one place its shape is written. ``number``: which of the
    recipient's numbers a call is to (0: the first)."""
    return {
        "key": key, "callout_id": callout.id, "record_id": callout.record_id, "step_index": step_index,
        "purpose": purpose, "channel": channel, "recipient_id": recipient, "number": number,
        "priority": callout.priority, "status": "queued", "tries": 0, "created_at": now, "updated_at": now,
    }


def insert_attempts(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert attempts, skipping any whose key already exists (a retried step never doubles)."""
    return insert_rows(session, AttemptRow.__table__, rows, conflict="key")


def insert_returning_ids(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` (an integer ``id`` from its sequence) and return their ids in
    the rows' order. SQLite: one RETURNING insert per thousand rows. PostgreSQL: the ids are drawn
    from the table's sequence first and the rows inserted with them — psycopg parses a many-row
    ``INSERT … RETURNING`` statement's placeholders afresh each time (too long for its cache), which
    cost more than the insert itself at 1,000 rows of 17 columns."""
    if not rows:
        return []
    if not on_postgres(session):
        return list(session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                    list(rows)).scalars())
    sequence = func.pg_get_serial_sequence(table.name, "id")
    ids = list(session.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, len(rows)))))
    insert_rows(session, table, [row | {"id": i} for row, i in zip(rows, ids, strict=True)])
    return ids


def insert_new_attempts(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert attempts as ``insert_attempts`` does, and return the keys of those actually inserted
    (a key already there — a duplicate receipt's second try at the same attempt — is not)."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = AttemptRow.__table__
    stmt = insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    connection = session.connection()
    return {key for row in rows for key in connection.execute(stmt, dict(row)).scalars()}


def claimable(now: datetime) -> Any:
    """Queued and not waiting for a retry time: what a worker may take now."""
    return (AttemptRow.status == "queued") & (AttemptRow.not_before.is_(None) | (AttemptRow.not_before <= now))


def queued_up_to(session: Session, most: int) -> int:
    """How many attempts are queued, counted no further than ``most``: the scheduler asks after
    every pass how many workers to wake, and counting all 20,000 of a fan-out's took PostgreSQL
    3-4 ms a pass."""
    return session.scalar(select(func.count()).select_from(
        select(AttemptRow.id).where(AttemptRow.status == "queued").limit(most).subquery())) or 0


def cancel_queued(session: Session, callout_ids: Sequence[int], now: datetime,
                  purposes: Sequence[str] | None = None) -> int:
    """Cancel these call-outs' attempts still queued (only those for ``purposes``, if given); the
    ones being sent are stopped by the last look before their hand-over. Returns how many."""
    total = 0
    ids = list(callout_ids)
    for start in range(0, len(ids), 900):
        where = [AttemptRow.callout_id.in_(ids[start:start + 900]), AttemptRow.status == "queued"]
        if purposes is not None:
            where.append(AttemptRow.purpose.in_(list(purposes)))
        result = session.execute(update(AttemptRow).where(*where).values(status="cancelled", updated_at=now)
                                 .execution_options(synchronize_session=False))
        total += result.rowcount or 0
    return total


DUE_COLUMNS = (CalloutRow.id, CalloutRow.record_id, CalloutRow.person_id, CalloutRow.hazard, CalloutRow.priority,
               CalloutRow.state, CalloutRow.steps, CalloutRow.next_step, CalloutRow.next_due, CalloutRow.error)


def claim_due_callouts(session: Session, now: datetime, limit: int) -> list[Row[Any]]:
    """Open call-outs whose next step is due, highest level first, locked for this transaction:
    plain rows of ``DUE_COLUMNS`` (no ORM objects: a fan-out runs 10,000 of them).

    Picked by id from the index alone (``ix_callouts_due`` holds the priority), then read: choosing
    500 among 10,000 due call-outs sorted the whole rows, frozen steps and all, for every batch."""
    picked = list(session.scalars(
        select(CalloutRow.id)
        .where(CalloutRow.state.in_(OPEN_STATES), CalloutRow.next_due <= now)
        .order_by(CalloutRow.priority.desc(), CalloutRow.next_due, CalloutRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ))
    if not picked:
        return []
    rows = session.execute(select(*DUE_COLUMNS).where(among(session, CalloutRow.id, picked)))
    order = {callout_id: n for n, callout_id in enumerate(picked)}
    return sorted(rows, key=lambda c: order[c.id])


def claim_queued_attempts(session: Session, now: datetime, limit: int, worker: str, lease: timedelta,
                          channels: Sequence[str] | None = None, callee_spacing: timedelta | None = None,
                          number_limits: Sequence[tuple[int, timedelta]] = ()) -> list[int]:
    """Move up to ``limit`` queued attempts to 'sending' under this worker's lease, red first.

    ``channels`` restricts the claim (a rate-limited channel is claimed on its own budget);
    ``callee_spacing`` skips numbers called on that channel within the spacing; ``number_limits``
    ((count, window) each) skips numbers that already had ``count`` messages on that channel within
    the window (in flight included). Either way a claim takes one attempt per number. A number is a
    recipient's number (``attempts.number``, the index into their numbers): a call to someone's
    next number after the first was not answered is not held back by the call to the first."""
    candidates = select(AttemptRow.id).where(claimable(now))
    if channels is not None:
        candidates = candidates.where(AttemptRow.channel.in_(list(channels)))
    if callee_spacing:
        recent = aliased(AttemptRow)
        candidates = candidates.where(~exists().where(
            recent.recipient_id == AttemptRow.recipient_id, recent.channel == AttemptRow.channel,
            recent.number == AttemptRow.number,
            (recent.status == "sending") | (recent.sent_at > now - callee_spacing)))
    for count, window in number_limits:
        earlier = aliased(AttemptRow)
        candidates = candidates.where(select(func.count()).where(
            earlier.recipient_id == AttemptRow.recipient_id, earlier.channel == AttemptRow.channel,
            earlier.number == AttemptRow.number,
            (earlier.status == "sending") | (earlier.sent_at > now - window)).scalar_subquery() < count)
    candidates = (candidates.order_by(AttemptRow.priority.desc(), AttemptRow.id).limit(limit)
                  .with_for_update(skip_locked=True))
    # Pick, then take: two statements, so the batch is exactly what the limited SELECT chose. As one
    # ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`` PostgreSQL may plan a
    # nested-loop semi-join that re-runs the limited subquery per outer row (it does when the
    # table's statistics saw no queued rows, the normal case) and take ten times the batch.
    picked = list(session.scalars(candidates))
    if not picked:
        return []
    claimed = session.execute(
        update(AttemptRow)
        # By id alone: the rows are this transaction's (locked above, or SQLite's write lock), still
        # queued. Adding "status = 'queued'" let PostgreSQL, with the statistics of a new table, walk
        # the queue index over every queued row for the 500 ids (0.4 s a claim in a fan-out).
        .where(among(session, AttemptRow.id, picked))
        .values(status="sending", lease_until=now + lease, worker=worker, tries=AttemptRow.tries + 1,
                updated_at=now)
        .returning(AttemptRow.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(claimed.scalars())
    if (callee_spacing or number_limits) and ids:
        ids = _one_per_callee(session, ids)
    return ids


def _one_per_callee(session: Session, ids: list[int]) -> list[int]:
    """With callee spacing, one claim takes at most one attempt per number and channel (red first);
    the others go back to the queue and wait for the spacing like any later one."""
    rows = session.execute(select(AttemptRow.id, AttemptRow.recipient_id, AttemptRow.number, AttemptRow.channel,
                                  AttemptRow.priority)
                           .where(among(session, AttemptRow.id, ids))
                           .order_by(AttemptRow.priority.desc(), AttemptRow.id)).all()
    kept, seen, extra = [], set(), []
    for row in rows:
        callee = (row.recipient_id, row.number, row.channel)
        (extra if callee in seen else kept).append(row.id)
        seen.add(callee)
    if extra:
        session.execute(update(AttemptRow).where(among(session, AttemptRow.id, extra))
                        .values(status="queued", lease_until=None, worker=None, tries=AttemptRow.tries - 1)
                        .execution_options(synchronize_session=False))
    return sorted(kept)


def expired_leases(session: Session, now: datetime, limit: int) -> list[AttemptRow]:
    """Attempts a worker took but never finished (it died mid-send): in doubt."""
    query = (
        select(AttemptRow)
        .where(AttemptRow.status == "sending", AttemptRow.lease_until < now)
        .order_by(AttemptRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))
