"""Appending to and reading the per-warning record; the ledger of records; verifying both.

The record key comes from the app's secret (``Settings.secret_key``: ``JIAOYING_SECRET_KEY`` or the
secret file), resolved for the database the session writes to, exactly as ``Settings`` resolves it
for that database — never from the database itself. See :mod:`dispatcher.domain.record`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..domain.record import (
    GENESIS,
    OPENING,
    WARNING_FACTS,
    CalloutFacts,
    Findings,
    Keyring,
    LedgerEntry,
    LedgerHead,
    MessageFacts,
    RecordedEvent,
    RecordKey,
    Supersession,
    check_callouts,
    check_chain,
    check_ledger,
    check_messages,
    entry_findings,
    event_mac,
    facts_digest,
    head_seal,
    ledger_mac,
    ledger_seal,
    other_key_text,
    superseding_ids,
)
from .bulk import insert_rows
from .session import transaction
from .tables import CalloutRow, EventRow, LedgerHeadRow, LedgerRow, RecordHeadRow, WarningRow

# -- the record key ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    key: RecordKey
    path: Path | None  # the secret file it came from (re-read when the file changes); None: environment
    stamp: tuple[int, int, int] | None


_resolved: dict[tuple[URL, str | None, str | None], _Resolved] = {}
_resolving = threading.Lock()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def signing_key(session: Session) -> RecordKey:
    """The record key for the session's database: derived from the secret ``Settings`` would use
    for it (the environment, else the secret file, else the public development value)."""
    url = session.get_bind().engine.url
    env = (url, os.environ.get("JIAOYING_SECRET_KEY"), os.environ.get("JIAOYING_SECRET_FILE"))
    found = _resolved.get(env)
    if found is not None and (found.path is None or _stamp(found.path) == found.stamp):
        return found.key
    from .. import secretfile
    from ..config import Settings

    with _resolving:
        settings = Settings(database_url=url.render_as_string(hide_password=False))
        secret, path, stamp = settings.secret_key, None, None
        if settings.secret_origin != "environment":
            path = settings.secret_path
            stamp = _stamp(path)
            stored = secretfile.read(path)  # read after the stamp: a file replaced since is read next time
            secret = secret if stored is None else stored
        found = _resolved[env] = _Resolved(RecordKey.from_secret(secret), path, stamp)
    return found.key


def keyring_for(session: Session) -> Keyring:
    return Keyring(signing_key(session))


# -- appending ------------------------------------------------------------------------------------------


def append_event(
    session: Session, warning_id: str, kind: str, actor: str, at: datetime, data: dict[str, Any] | None = None
) -> EventRow:
    """Append one event. The record's head row is locked (FOR UPDATE on PostgreSQL) so concurrent
    writers chain their events one after another. No query beyond that lock and the writes,
    except for a record's first event, which makes its head and enters the record in the ledger."""
    row = EventRow(**_append(session, _locked(session, warning_id), signing_key(session), kind, actor, at, data))
    session.add(row)
    return row


def append_events(session: Session, events: list[tuple[str, str, str, datetime, dict[str, Any]]]) -> None:
    """Append many events — (record id, kind, actor, at, data) each, in order — locking each record's
    head once: a burst of a thousand acknowledgements is one lock per record, not one per event.
    The heads are locked in the order of their ids, as every writer of several records locks them,
    so that two such writers never wait for each other in a circle."""
    if not events:
        return
    key = signing_key(session)
    heads = {record_id: _locked(session, record_id) for record_id in sorted({e[0] for e in events})}
    rows = [_append(session, heads[warning_id], key, kind, actor, at, data)
            for warning_id, kind, actor, at, data in events]
    session.flush()  # the rows they hang on (a warning, a ledger entry) go first
    insert_rows(session, EventRow.__table__, rows)  # one statement (db.bulk), no ORM objects to track


_NEW_RECORDS = "jiaoying_new_records"  # session info: records inserted by this transaction, no head yet


def new_record(session: Session, record_id: str) -> None:
    """``record_id``'s row was just inserted by this session's transaction (services.intake's
    insert_record): its first event need not look for a head or for events, which cannot exist."""
    session.info.setdefault(_NEW_RECORDS, set()).add(record_id)


def _locked(session: Session, record_id: str) -> RecordHeadRow:
    """The record's head, locked; made at the record's first event (its warning's intake)."""
    # populate_existing: a row this session loaded before the lock was taken is read again, or
    # the head and count would be those of before another writer's append.
    query = (select(RecordHeadRow).where(RecordHeadRow.record_id == record_id).with_for_update()
             .execution_options(populate_existing=True))
    fresh = record_id in session.info.get(_NEW_RECORDS, ())
    if not fresh:
        head = session.execute(query).scalar_one_or_none()
        if head is not None:
            return head
    # A new record: its warning was stored in this transaction (intake, a roll-call, a spot-check),
    # so no other writer can be making the same head; the insert is this session's, flushed with
    # the event. (A second maker would wait on the primary key and then fail, never chain twice.)
    # A record this transaction inserted (new_record) has neither head nor events: no query asks.
    if session.get(WarningRow, record_id) is None:
        raise LookupError(record_id)
    if fresh:
        session.info[_NEW_RECORDS].discard(record_id)
    else:
        last = session.scalar(select(func.max(EventRow.seq)).where(EventRow.warning_id == record_id))
        if last is not None:  # never chain a second event 1: appending stops here, loudly
            raise RuntimeError(f"record {record_id} has {last} events but no head: its head row was deleted "
                               f"(jiaoying verify shows it)")
    head = RecordHeadRow(record_id=record_id, count=0, head=GENESIS, seal=None)
    session.add(head)
    return head


def _append(session: Session, head: RecordHeadRow, key: RecordKey, kind: str, actor: str, at: datetime,
            data: dict[str, Any] | None) -> dict[str, Any]:
    """The event's row, chained to the record's head (the head moves on to it)."""
    warning_id = head.record_id
    seq = head.count + 1
    payload = dict(data) if data else {}
    if kind in OPENING and isinstance(payload.get("warning"), str):
        # The message's facts, so an edit of the row shows (it was just added or locked: no query).
        message = session.get(WarningRow, payload["warning"])
        if message is not None:
            facts = _facts(message)
            for name in ("sent", "expires"):  # on the record in the clear, as the 一事一档 shows them
                if name not in payload:
                    payload[name] = facts[name].astimezone(UTC).isoformat() if facts[name] else None
            payload["row"] = facts_digest(facts)
    mac = event_mac(key, warning_id, seq, at, actor, kind, payload, head.head)
    row = {"warning_id": warning_id, "seq": seq, "at": at, "actor": actor, "kind": kind, "data": payload,
           "prev_hash": head.head, "hash": mac, "key_id": key.id}
    head.count, head.head, head.seal = seq, mac, head_seal(key, warning_id, seq, mac)
    if seq == 1:  # after the head moved on: a new head is inserted as it stands, not inserted and updated
        _enter_in_ledger(session, key, warning_id, at, mac)
    return row


def _facts(row: WarningRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in WARNING_FACTS}


def _ledger_head(session: Session) -> LedgerHeadRow:
    query = (select(LedgerHeadRow).where(LedgerHeadRow.id == 1).with_for_update()
             .execution_options(populate_existing=True))
    head = session.execute(query).scalar_one_or_none()
    if head is not None:
        return head
    try:  # a database built without the migrations (which write this row)
        with session.begin_nested():
            session.add(LedgerHeadRow(id=1, count=0, head=GENESIS))
    except IntegrityError:
        pass  # another writer made it first
    return session.execute(query).scalar_one()


def _enter_in_ledger(session: Session, key: RecordKey, record_id: str, at: datetime, first: str) -> None:
    """A new record: its entry in the ledger, chained to the one before. Writers of new records
    take the ledger's head row in turn (a warning's intake, not the fan-out, pays for it)."""
    head = _ledger_head(session)
    data: dict[str, Any] = {"first": first}
    if head.count == 0:
        # The first keyed record: every event written from here on carries a key, so an unkeyed
        # event with a later id was written (or rewritten) without it.
        data["unkeyed_before"] = (session.scalar(select(func.max(EventRow.id))) or 0) + 1
    seq, prev = head.count + 1, head.head
    entry = LedgerRow(seq=seq, record_id=record_id, at=at, key_id=key.id, data=data, prev_mac=prev,
                      mac=ledger_mac(key, seq, record_id, at, data, prev))
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        # The head was rewritten by hand (it counts fewer entries than there are). Never refuse a
        # warning for it: carry on after the last entry, and say so in the entry, under its MAC.
        last = session.execute(select(LedgerRow).order_by(LedgerRow.seq.desc()).limit(1)).scalar_one()
        data = data | {"head_was": head.count}
        seq, prev = last.seq + 1, last.mac
        entry = LedgerRow(seq=seq, record_id=record_id, at=at, key_id=key.id, data=data, prev_mac=prev,
                          mac=ledger_mac(key, seq, record_id, at, data, prev))
        session.add(entry)
    head.count, head.head, head.key_id, head.seal = seq, entry.mac, key.id, ledger_seal(key, seq, entry.mac)


# -- reading -----------------------------------------------------------------------------------------------


def events(session: Session, warning_id: str) -> list[RecordedEvent]:
    rows = session.scalars(select(EventRow).where(EventRow.warning_id == warning_id).order_by(EventRow.seq))
    return [RecordedEvent(r.seq, r.at, r.actor, r.kind, r.data, r.prev_hash, r.hash, r.key_id, r.id) for r in rows]


@dataclass(frozen=True)
class RecordHead:
    """What the printed record carries, to be checked against the database later."""

    record_id: str
    count: int  # events up to and including the head
    mac: str  # the head event's MAC
    key_id: str | None  # None: written before keying
    ledger_seq: int | None  # the record's entry in the ledger of records

    @property
    def short(self) -> str:
        return self.mac[:16]


def head(session: Session, warning_id: str, seq: int | None = None) -> RecordHead:
    """The record's head — or the head as of event ``seq`` (the last one a page shows)."""
    row = session.get(WarningRow, warning_id)
    if row is None:
        raise LookupError(warning_id)
    record = row.root_id or row.id
    kept = session.get(RecordHeadRow, record)
    upto = (kept.count if kept else 0) if seq is None else seq
    event = session.execute(select(EventRow.hash, EventRow.key_id).where(
        EventRow.warning_id == record, EventRow.seq == upto)).first()
    ledger = session.scalar(select(LedgerRow.seq).where(LedgerRow.record_id == record))
    if event is None:
        return RecordHead(record, upto, kept.head if kept and seq is None else GENESIS, None, ledger)
    return RecordHead(record, upto, event.hash, event.key_id, ledger)


# -- verifying -----------------------------------------------------------------------------------------------


@dataclass
class RecordCheck:
    record_id: str
    count: int
    findings: Findings
    ledger_seq: int | None = None

    @property
    def problems(self) -> list[str]:
        return self.findings.problems

    @property
    def unverified(self) -> list[str]:
        return self.findings.unverified

    @property
    def notes(self) -> list[str]:
        return self.findings.notes

    @property
    def intact(self) -> bool:
        """Every event proven unchanged (unkeyed ones by their plain chain) and every row agreeing."""
        return not self.problems and not self.unverified


@dataclass(frozen=True)
class _Context:
    """What the ledger's first entry says: from which event id on every event carries a key."""

    keys: Keyring
    unkeyed_before: int | None
    trusted: bool  # the first entry's MAC was checked (not signed with another key)
    findings: Findings = field(default_factory=Findings)


_NO_CUTOFF = "ledger entry 1 does not say from which event on the records were keyed"


def _context(session: Session, keys: Keyring) -> _Context:
    found = Findings()
    first = session.get(LedgerRow, 1)
    if first is None:
        lowest = session.scalar(select(func.min(LedgerRow.seq)))
        ledger_head = session.get(LedgerHeadRow, 1)
        if lowest is not None:
            found.problems.append(f"the ledger's first entr{'y is' if lowest == 2 else 'ies are'} missing "
                                  f"(1–{lowest - 1}): entries were deleted")
        elif ledger_head is not None and ledger_head.count > 0:
            found.problems.append(f"the ledger of records is empty, but its head counts {ledger_head.count} "
                                  f"entries: they were deleted")
        return _Context(keys, None, True, found)
    found.extend(entry_findings(_entry(first), keys))
    cutoff = first.data.get("unkeyed_before") if isinstance(first.data, dict) else None
    if not isinstance(cutoff, int):
        found.problems.append(_NO_CUTOFF)
        cutoff = 1
    return _Context(keys, cutoff, keys.get(first.key_id) is not None, found)


def _entry(row: LedgerRow) -> LedgerEntry:
    return LedgerEntry(row.seq, row.record_id, row.at, row.key_id, row.data, row.prev_mac, row.mac)


def check(session: Session, warning_id: str, keys: Keyring | None = None) -> RecordCheck:
    """The whole check of one record (the warning's event): its chain and head, its ledger entry,
    and the rows it describes. ``keys``: default, the key this process signs with."""
    keys = keys or keyring_for(session)
    context = _context(session, keys)
    result = _check(session, warning_id, context)
    # The ledger's first entry matters here only for what it says about keying: its problems do.
    result.findings.problems[:0] = context.findings.problems
    return result


def verify(session: Session, warning_id: str, keys: Keyring | None = None) -> list[str]:
    """Every break in the record, and everything that could not be checked, as sentences; an empty
    list means the record is intact (events written before keying are fine: see ``check``)."""
    result = check(session, warning_id, keys)
    return result.problems + result.unverified


def _check(session: Session, warning_id: str, context: _Context) -> RecordCheck:
    warning = session.get(WarningRow, warning_id)
    if warning is None:
        raise LookupError(warning_id)
    record = warning.root_id or warning.id
    if warning.id != record and session.get(WarningRow, record) is None:
        raise LookupError(record)
    keys = context.keys
    evs = events(session, record)
    kept = session.get(RecordHeadRow, record)
    found = check_chain(record, evs, kept.head if kept else GENESIS, kept.count if kept else 0,
                        kept.seal if kept else None, keys, context.unkeyed_before)
    if kept is None and evs:
        found.problems.insert(0, "the record's head is missing: its row was deleted")
    if not context.trusted and any(e.key_id is None for e in evs):
        found.unverified.append(other_key_text(
            str(session.scalar(select(LedgerRow.key_id).where(LedgerRow.seq == 1))), keys,
            "whether its unkeyed events were written before keying cannot be checked: ledger entry 1 is"))
    entry = session.scalar(select(LedgerRow).where(LedgerRow.record_id == record))
    if entry is not None:
        found.extend(entry_findings(_entry(entry), keys))
        if evs and entry.data.get("first") != evs[0].hash:
            found.problems.append(f"the record's first event is not the one its ledger entry ({entry.seq}) names")
    elif evs and evs[0].key_id is not None:
        found.problems.append("the record has no entry in the ledger of records: its entry was deleted")
    messages = [MessageFacts(m.id, m.status, _facts(m)) for m in session.scalars(
        select(WarningRow).where(or_(WarningRow.id == record, WarningRow.root_id == record)))]
    found.problems += check_messages(evs, messages)
    callouts = [CalloutFacts(*r) for r in session.execute(
        select(CalloutRow.id, CalloutRow.warning_id, CalloutRow.person_id, CalloutRow.state, CalloutRow.started_at,
               CalloutRow.acknowledged_at, CalloutRow.acknowledged_by, CalloutRow.ack_via, CalloutRow.ack_note,
               CalloutRow.unreached_at, CalloutRow.closed_at, CalloutRow.closed_reason)
        .where(CalloutRow.record_id == record).order_by(CalloutRow.id))]
    found.problems += check_callouts(evs, callouts, _supersessions(session, superseding_ids(callouts)))
    return RecordCheck(record, len(evs), found, entry.seq if entry is not None else None)


def _supersessions(session: Session, ids: set[str]) -> dict[str, Supersession]:
    if not ids:
        return {}
    rows = session.execute(select(WarningRow.id, WarningRow.root_id, WarningRow.level)
                           .where(WarningRow.id.in_(sorted(ids)))).all()
    listed: dict[str, frozenset[int]] = {}
    for record in {r.root_id or r.id for r in rows}:
        for data in session.scalars(select(EventRow.data).where(EventRow.warning_id == record,
                                                                EventRow.kind == "applied")):
            if isinstance(data, dict) and data.get("warning") in ids:
                listed[data["warning"]] = frozenset(i for i in data.get("superseded") or () if isinstance(i, int))
    return {r.id: Supersession(r.level, listed.get(r.id)) for r in rows}


@dataclass
class LedgerCheck:
    """Every record, and the ledger that chains them."""

    ledger: Findings
    records: dict[str, RecordCheck]
    entries: int

    def all(self, what: str) -> list[str]:
        out = list(getattr(self.ledger, what))
        for record_id, result in self.records.items():
            out += [f"{record_id}: {text}" for text in getattr(result.findings, what)]
        return out

    @property
    def problems(self) -> list[str]:
        return self.all("problems")

    @property
    def unverified(self) -> list[str]:
        return self.all("unverified")

    @property
    def unkeyed_records(self) -> int:
        return sum(1 for r in self.records.values() if r.ledger_seq is None and r.notes)


def check_all(session: Session, keys: Keyring | None = None) -> LedgerCheck:
    """The ledger's chain, every record it names still on file, every record on file in it (or
    written before keying), and each record's own check."""
    keys = keys or keyring_for(session)
    context = _context(session, keys)
    entries = [_entry(r) for r in session.scalars(select(LedgerRow).order_by(LedgerRow.seq))]
    head_row = session.get(LedgerHeadRow, 1)
    ledger_head = (LedgerHead(head_row.count, head_row.head, head_row.key_id, head_row.seal)
                   if head_row is not None else None)
    found = check_ledger(entries, ledger_head, keys)
    found.problems[:0] = [p for p in context.findings.problems if p == _NO_CUTOFF]  # the rest: check_ledger's
    roots = list(session.scalars(select(WarningRow.id).where(WarningRow.root_id.is_(None))
                                 .order_by(WarningRow.received_at, WarningRow.id)))
    on_file = set(roots)
    for entry in entries:
        if entry.record_id not in on_file:
            found.problems.append(f"record {entry.record_id} (ledger entry {entry.seq}, received "
                                  f"{entry.at.isoformat()}) is no longer on file: it was deleted")
    records = {record_id: _check(session, record_id, context) for record_id in roots}
    return LedgerCheck(found, records, len(entries))


@contextmanager
def snapshot(url: str) -> Iterator[Session]:
    """A read-only session that sees one snapshot of the database: a record appended to while it is
    being verified must not look shortened (PostgreSQL's default gives each statement a fresh one)."""
    if url.startswith("sqlite"):
        with transaction(url, write=False) as session:  # one WAL snapshot from its first read
            yield session
        return
    with transaction(url) as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})
        yield session
