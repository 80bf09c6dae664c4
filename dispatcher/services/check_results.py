"""The result of a routine check on its own record, once it has settled: a duty roll-call's verdict
per room (``rollcall_result``), a 六问 spot-check's summary and follow-up list (``spotcheck_result``).

A check has settled when the engine has applied it and none of its call-outs is still open: each
was answered, ran out (未到岗, 未答全) or was cancelled — so every room of a roll-call is decided.
The scheduler's housekeeping (``runtime.engine.Engine.settle_checks``) finds those settled without
a result (a read, so a pass with nothing to do takes no lock) and writes each result once: under
the record's head lock (the lock every append takes; on SQLite the write lock) it looks again for
a result and for an open call-out, so a second scheduler, a restart or a retried pass writes
nothing more. Answers that come later (a late SMS filling in a spot-check) are on the record after
it, and on the board; the result says how things stood when the check settled.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.record_repo import append_event
from ..db.tables import CalloutRow, EventRow, RecordHeadRow, WarningRow
from ..domain.callouts import OPEN_STATES
from ..domain.checks import CheckKind
from ..domain.record import EventKind
from . import rollcalls, spotchecks

# How far back (from a check's start) the engine looks for checks to settle. A roll-call closes
# within two hours of its start, a spot-check within a day; this bounds what each pass reads.
SETTLE_WITHIN = timedelta(days=7)

RESULT = {CheckKind.ROLLCALL.value: EventKind.ROLLCALL_RESULT, CheckKind.SPOTCHECK.value: EventKind.SPOTCHECK_RESULT}
_OPEN = [s.value for s in OPEN_STATES]


def unsettled(session: Session, now: datetime) -> list[str]:
    """Checks started in the last ``SETTLE_WITHIN``, applied, with no call-out open and no result
    on their record yet, oldest first."""
    open_one = select(CalloutRow.id).where(CalloutRow.record_id == WarningRow.id, CalloutRow.state.in_(_OPEN))
    written = select(EventRow.id).where(EventRow.warning_id == WarningRow.id,
                                        EventRow.kind.in_([k.value for k in RESULT.values()]))
    return list(session.scalars(select(WarningRow.id).where(
        WarningRow.status == "active", WarningRow.received_at >= now - SETTLE_WITHIN,
        WarningRow.kind.in_(list(RESULT)), WarningRow.applied_at.is_not(None),
        ~open_one.exists(), ~written.exists()).order_by(WarningRow.received_at, WarningRow.id)))


def settle(session: Session, record_id: str, now: datetime) -> bool:
    """Write the check's result on its record, unless it is there already or a call-out is open
    again; True when written now."""
    locked = session.execute(select(RecordHeadRow.record_id).where(RecordHeadRow.record_id == record_id)
                             .with_for_update()).scalar_one_or_none()
    row = session.get(WarningRow, record_id)
    if locked is None or row is None or row.kind not in RESULT or row.applied_at is None:
        return False
    kind = RESULT[row.kind]
    if session.scalar(select(EventRow.id).where(EventRow.warning_id == record_id, EventRow.kind == kind.value)
                      .limit(1)) is not None:
        return False
    if session.scalar(select(CalloutRow.id).where(CalloutRow.record_id == record_id, CalloutRow.state.in_(_OPEN))
                      .limit(1)) is not None:
        return False
    data = (rollcalls.result_event(session, record_id) if kind is EventKind.ROLLCALL_RESULT
            else spotchecks.result_event(session, record_id))
    append_event(session, record_id, kind, "engine", now, data)
    return True
