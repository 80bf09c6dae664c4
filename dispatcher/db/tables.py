"""The tables. Rows are plain records; domain objects are built from them in repositories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out — on SQLite too, which keeps no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: times are stored with their offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Row ids are 32-bit integers in the database: a larger number is no row (and must not reach a query).
MAX_ID = 2**31 - 1

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class SiteRow(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime]


class AreaRow(Base):
    __tablename__ = "areas"
    code: Mapped[str] = mapped_column(String(15), primary_key=True)  # 15: a village's groups and grids
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(String(15))
    kind: Mapped[str] = mapped_column(String(20), default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ZoneRow(Base):
    """A hazard zone (山洪危险区, 隐患点, 小流域, 水库下游): villages or groups across towns."""

    __tablename__ = "zones"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    areas: Mapped[list[Any]]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DutyRoomRow(Base):
    """A town's duty room; its shifts are duty_shifts rows with ``room`` set to its area."""

    __tablename__ = "duty_rooms"
    area: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RoleRow(Base):
    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PersonRow(Base):
    __tablename__ = "people"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    im: Mapped[dict[str, Any]] = mapped_column(default=dict)
    area_code: Mapped[str] = mapped_column(String(15))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    phone_kind: Mapped[str] = mapped_column(String(12), default="mobile", server_default="mobile")
    phones: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")  # [{number, kind}] after phone
    responsibilities: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    unit: Mapped[str] = mapped_column(String(200), default="")
    deputy_id: Mapped[str | None] = mapped_column(String(64))
    superior_id: Mapped[str | None] = mapped_column(String(64))
    # People leave the roster but stay referenced by old call-outs: they are deactivated.
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DutyShiftRow(Base):
    __tablename__ = "duty_shifts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # dated | weekly
    room: Mapped[str | None] = mapped_column(String(15))  # a town duty room's area; None: the county's
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    weekday: Mapped[int | None] = mapped_column(Integer)
    start_time: Mapped[str | None] = mapped_column(String(5))
    hours: Mapped[float | None] = mapped_column(Float)
    leader_id: Mapped[str | None] = mapped_column(String(64))
    chief_id: Mapped[str | None] = mapped_column(String(64))
    staff: Mapped[list[Any]] = mapped_column(default=list)


class PlanRow(Base):
    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)  # file order decides which plan governs
    definition: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CheckRow(Base):
    """A routine check of the site (checks.yaml): a duty roll-call (值班点名) or the 六问 spot-check."""

    __tablename__ = "checks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # rollcall | spotcheck
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agency: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    hazards: Mapped[list[Any] | None] = mapped_column(JSON)  # None: every hazard
    senders: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class WarningRow(Base):
    __tablename__ = "warnings"
    __table_args__ = (
        UniqueConstraint("sender", "identifier", name="uq_warnings_sender_identifier"),
        Index("ix_warnings_status_received", "status", "received_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sender: Mapped[str] = mapped_column(String(128))
    identifier: Mapped[str] = mapped_column(String(128))
    msg_type: Mapped[str] = mapped_column(String(10))
    references: Mapped[list[Any]] = mapped_column(default=list)
    root_id: Mapped[str | None] = mapped_column(ForeignKey("warnings.id"))  # the first alert
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(10))
    areas: Mapped[list[Any]]
    zones: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")  # hazard zones named
    headline: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    instruction: Mapped[str] = mapped_column(Text, default="")
    sent: Mapped[datetime]
    expires: Mapped[datetime | None]
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    # active | updated (a later update carries on) | cancelled | expired
    status: Mapped[str] = mapped_column(String(12), default="active")
    received_at: Mapped[datetime]
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    source_format: Mapped[str] = mapped_column(String(8))  # json | cap
    # What the record is about: a warning, or a routine check started by the county itself
    # (rollcall 值班点名, spotcheck 六问抽查), which shares the call-outs, attempts, timers and record.
    kind: Mapped[str] = mapped_column(String(12), default="warning", server_default="warning")
    raw: Mapped[str] = mapped_column(Text, default="")
    # Set once the warning's call-outs (or its update/cancel effects) have been applied.
    applied_at: Mapped[datetime | None]
    # The engine could not apply it: why, and when it tries again (the other warnings carry on).
    apply_error: Mapped[str | None] = mapped_column(Text)
    apply_retry_at: Mapped[datetime | None]
    # Forwarding (services/forwarding.py): who posted it (its key's agency, or "local"), the site ids a
    # forwarded CAP passed through (its jiaoying_via parameter), and when the engine decided where it
    # goes (None: not yet; every message is decided once, after it is committed).
    origin: Mapped[str] = mapped_column(String(128), default="local", server_default="local")
    via: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    forward_checked_at: Mapped[datetime | None] = mapped_column(index=True)


class RecordHeadRow(Base):
    """The head of a record (a warning and its updates and cancel): appends lock this row, so one
    record's events are strictly ordered. Not kept on the warning's row: a start holds that row for
    a whole part of its call-outs, and a worker recording what it just sent must not wait for it."""

    __tablename__ = "record_heads"
    record_id: Mapped[str] = mapped_column(ForeignKey("warnings.id"), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)  # events up to and including the head
    head: Mapped[str] = mapped_column(String(64))  # the head event's MAC
    seal: Mapped[str | None] = mapped_column(String(64))  # HMAC over count + head (domain/record.py)


class EventRow(Base):
    """The per-warning record: appended, HMAC-chained (domain/record.py), never updated."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("warning_id", "seq", name="uq_events_warning_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    warning_id: Mapped[str] = mapped_column(ForeignKey("warnings.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))  # the event's MAC; plain SHA-256 if written before keying
    key_id: Mapped[str | None] = mapped_column(String(16))  # the record key's id; None: written before keying


class LedgerRow(Base):
    """The ledger of records: one entry per record (a warning and its updates and cancel),
    HMAC-chained to the entry before it, so a deleted record or entry shows. No foreign key: an
    entry outlives the record it names, which is what tells that the record was deleted."""

    __tablename__ = "record_ledger"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    record_id: Mapped[str] = mapped_column(String(32), unique=True)
    at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class LedgerHeadRow(Base):
    """The ledger's head (one row, id 1): its count and last MAC, sealed with the record key."""

    __tablename__ = "record_ledger_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)
    head: Mapped[str] = mapped_column(String(64), default="0" * 64)
    key_id: Mapped[str | None] = mapped_column(String(16))
    seal: Mapped[str | None] = mapped_column(String(64))


class CalloutRow(Base):
    """One official x one warning: the frozen steps, where it stands, and how it ended."""

    __tablename__ = "callouts"
    __table_args__ = (
        Index("ix_callouts_due", "state", "next_due", "priority"),  # the due claim picks from it alone
        Index("ix_callouts_person_state", "person_id", "state"),
        Index("ix_callouts_started_at", "started_at"),  # the period assessment reads a date range
        # Starting a part of a warning's call-outs asks, for the part's people only, who this message
        # and this event already reached: with the person in the index that reads the part, not every
        # call-out of the event so far (which made many small parts quadratic).
        Index("ix_callouts_warning_person", "warning_id", "person_id"),
        Index("ix_callouts_record_person", "record_id", "person_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    warning_id: Mapped[str] = mapped_column(ForeignKey("warnings.id"))  # the message that started it
    record_id: Mapped[str] = mapped_column(ForeignKey("warnings.id"))  # the event's first alert
    person_id: Mapped[str] = mapped_column(String(64))
    plan_id: Mapped[str] = mapped_column(String(64))
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(10))
    priority: Mapped[int] = mapped_column(Integer)  # the level's rank: red goes first
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16))  # pending|notified|acknowledged|unreached|cancelled
    steps: Mapped[list[Any]]
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    next_due: Mapped[datetime | None]  # the durable timer; None once nothing more is due
    ack_code: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    ack_via: Mapped[str | None] = mapped_column(String(16))  # sms|voice|link|manual|api
    ack_note: Mapped[str | None] = mapped_column(Text)
    unreached_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_reason: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)  # its last step could not be run: why (tried again)
    room: Mapped[str | None] = mapped_column(String(15))  # a roll-call's: the duty room it answers for


class AttemptRow(Base):
    """One message or call on one channel to one person for one step. The row (and its unique
    key) exists before the provider is called; the worker claims it, sends, and records."""

    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    callout_id: Mapped[int] = mapped_column(ForeignKey("callouts.id"), index=True)
    record_id: Mapped[str] = mapped_column(String(32), index=True)
    step_index: Mapped[int] = mapped_column(Integer)  # -1 for update/cancel notices
    purpose: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(String(64), index=True)
    # Which of the recipient's numbers a call is to: 0 the first, 1 the next (Person.voice_numbers);
    # a voice step not answered on one number queues an attempt for the next. 0 for every other channel.
    number: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    priority: Mapped[int] = mapped_column(Integer)
    # queued -> sending -> sent -> delivered | failed; queued -> cancelled
    status: Mapped[str] = mapped_column(String(12))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    # Set by a failed try: not claimed again before this time. A transient failure or an open circuit
    # is a wait, never the end of the attempt; a set value also tells the ladder this try failed.
    not_before: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


# The claim's order: red first, then oldest. Priority descending in the index itself: with
# (status, priority, id) a claim read and sorted every queued attempt of the top priority for each
# batch of 500 (ORDER BY priority DESC, id mixes directions), 10 ms a claim in a 20,000-attempt fan-out.
Index("ix_attempts_queue", AttemptRow.status, AttemptRow.priority.desc(), AttemptRow.id)


class InboundRow(Base):
    """Every acknowledgement that arrived, matched or not (unknown senders included)."""

    __tablename__ = "inbound"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    via: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(32))
    callouts: Mapped[list[Any]] = mapped_column(default=list)
    # The provider's own id of this reply or keypress (e.g. twilio:sms:<MessageSid>): a replayed
    # webhook finds it and changes nothing.
    provider_ref: Mapped[str | None] = mapped_column(String(160), unique=True)


class AnswerRow(Base):
    """A 六问 spot-check answer: one official's 是 or 否 to one question (the first answer stands)."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("callout_id", "question", name="uq_answers_callout_id"),
        Index("ix_answers_person_at", "person_id", "at"),  # who was checked lately (the sample skips them)
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(32), index=True)  # the spot-check
    callout_id: Mapped[int] = mapped_column(ForeignKey("callouts.id"))
    person_id: Mapped[str] = mapped_column(String(64))
    question: Mapped[int] = mapped_column(Integer)  # 0-based, in the questionnaire's order
    answer: Mapped[str] = mapped_column(String(8))  # yes | no
    via: Mapped[str] = mapped_column(String(16))  # sms | voice | link | manual
    at: Mapped[datetime]


class HeartbeatRow(Base):
    """Liveness of the scheduler and workers: when each last made progress."""

    __tablename__ = "heartbeats"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)


class UserRow(Base):
    """Duty-officer logins: viewer, officer, admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class BoardSessionRow(Base):
    """A board sign-in. The cookie names it; signing out or ``jiaoying users sign-out`` ends it here,
    so a copied cookie stops working at once rather than when it expires."""

    __tablename__ = "board_sessions"
    __table_args__ = (Index("ix_board_sessions_user", "user_id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's nonce
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class BroadcastOrderRow(Base):
    """An order to the rural emergency broadcast platform, kept until the platform took it."""

    __tablename__ = "broadcast_orders"
    __table_args__ = (Index("ix_broadcast_orders_due", "state", "next_try_at"),)
    id: Mapped[str] = mapped_column(String(48), primary_key=True)  # bc-<warning id>
    warning_id: Mapped[str] = mapped_column(ForeignKey("warnings.id"))
    record_id: Mapped[str] = mapped_column(String(32))
    areas: Mapped[list[Any]]
    repeat: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))  # pending | sent | failed
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime]
    platform_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class ForwardRow(Base):
    """A warning forwarded to another system (转发), or an event's settled result reported upward
    (上报): kept, and retried, until the receiver took it (services/forwarding.py). ``key`` is unique
    per message × target (forward) or event × target × recipient (report), so nothing goes twice."""

    __tablename__ = "forwards"
    __table_args__ = (Index("ix_forwards_due", "status", "not_before"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    record_id: Mapped[str] = mapped_column(String(32), index=True)  # the event's first alert
    warning_id: Mapped[str] = mapped_column(ForeignKey("warnings.id"))  # the message it carries
    target: Mapped[str] = mapped_column(String(64))  # the target's id in the forwarding file
    target_name: Mapped[str] = mapped_column(String(200), default="")  # its name, for /readyz and the board
    kind: Mapped[str] = mapped_column(String(16))  # forward | report | report_email
    slot: Mapped[int] = mapped_column(Integer, default=0)  # which of the target's report recipients
    msg_type: Mapped[str] = mapped_column(String(10), default="")  # the CAP msgType sent (forward)
    identifier: Mapped[str] = mapped_column(String(160))  # the CAP identifier sent: the same every try
    url: Mapped[str] = mapped_column(Text, default="")  # where it went last (addresses for e-mail)
    content_type: Mapped[str] = mapped_column(String(64), default="")
    body: Mapped[str] = mapped_column(Text, default="")  # frozen when queued: every try sends the same
    # waiting (a report, until the call-out settles) | queued | sending | sent | failed (refused: not retried)
    status: Mapped[str] = mapped_column(String(12))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None]  # the next try's time (backoff)
    lease_until: Mapped[datetime | None]  # while sending: a scheduler that died lets go of it then
    last_code: Mapped[int | None] = mapped_column(Integer)  # the receiver's last HTTP status (SMTP reply)
    error: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None]  # the first failure since the last success
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class DrillRow(Base):
    """A drill (演练): scheduled or started by the county (blind 双盲, or announced), or an agency's
    warning posted as a drill. Its schedule is the durable timer (``state`` scheduled, ``at``); once
    started, its record is its warning's (``record_id``), hash-chained like any warning's
    (services/drills.py)."""

    __tablename__ = "drills"
    __table_args__ = (Index("ix_drills_due", "state", "at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # blind | announced | posted
    state: Mapped[str] = mapped_column(String(12))  # scheduled | running | ended | missed | cancelled
    scenario: Mapped[dict[str, Any]]  # the warning it plays: hazard, level, areas, headline …
    options: Mapped[dict[str, Any]]  # broadcast, without, length (seconds)
    at: Mapped[datetime | None]  # when it starts (for a window: the moment drawn in it, never shown)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    record_id: Mapped[str | None] = mapped_column(ForeignKey("warnings.id"), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(128))
    ending: Mapped[str | None] = mapped_column(String(12))  # settled | ended | expired | cancelled
    revealed_at: Mapped[datetime | None]  # a blind drill is labelled 演练 for everyone from then on
