"""The per-warning record (一事一档): event kinds, the keyed chain that makes edits visible, and the
checks that the rows the record describes still agree with it.

- **Keyed chain.** Each event carries an HMAC-SHA256 over its own content and the previous event's
  MAC, made with the *record key*: a sub-key derived from the app's secret, which is kept outside
  the database. Changing, inserting or removing an event breaks every MAC after it, and nobody
  without the secret can compute new ones. Each event names the key's short id, so a record signed
  before the secret was rotated reads as "signed with another key", not as tampered.
- **Sealed head.** The warning row keeps the head (the count and the last MAC) and a *seal*, an
  HMAC over that head: removing the last events and fixing the head cannot be sealed again.
- **Rows.** The warning messages and their call-outs must agree with the events that set them: a
  message's fields with its ``received`` event (a digest of them is recorded in that event), its
  status with the update/cancel events, a call-out's state and acknowledgement with the
  ``acknowledged``, ``unreached``, ``applied`` and ``cancelled`` events.
- **Ledger.** Every new record gets an entry in a ledger of records, HMAC-chained to the entry
  before it and sealed at its head, so deleting a whole record — or its entry — shows.

Events written before the record was keyed carry no key id and a plain SHA-256 chain
(:func:`event_hash`); they still verify, reported as unkeyed. The first ledger entry records the
first event id written with a key: an unkeyed event after it was written, or rewritten, without the
key. This module is pure: no I/O; :mod:`dispatcher.db.record_repo` reads the rows and calls it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64
RECORD_KEY_CONTEXT = b"jiaoying record v1"  # the record key is HMAC(secret, this): never the raw secret


class EventKind(StrEnum):
    RECEIVED = "received"  # intake accepted the warning
    MATCHED = "matched"  # the rules engine's decision: plans, officials, gaps
    UPDATED = "updated"  # a later update superseded this message
    CANCELLED = "cancelled"  # a cancel (解除) arrived, or a duty officer cancelled
    APPLY_FAILED = "apply_failed"  # the engine could not apply the warning (tried again; others carry on)
    STEP_FAILED = "step_failed"  # the engine could not run a call-out's step (tried again; others carry on)
    EXPIRED = "expired"  # the message's ``expires`` passed (services/expiry.py)
    APPLIED = "applied"  # the engine started the call-outs (or carried out the update or cancel)
    STEPS = "steps"  # due steps ran: attempts queued per call-out
    ATTEMPTS = "attempts"  # what the providers said of a batch of attempts
    UNREACHED = "unreached"  # the last step passed unanswered: the 未叫醒 list
    STEP_BROUGHT_FORWARD = "step_brought_forward"  # a failed own step: the next one runs now
    # A call not answered (no answer, busy, failed, the number refused): the same step calls the
    # person's next number. data: {"calls": [{callout, to, step, failed (key), failed_number, attempt
    # (the new key), number (the one called next), why}]}; numbers in full (viewers see them masked).
    NEXT_NUMBER = "next_number"
    PROVIDER_RECEIPT = "provider_receipt"  # a provider's status callback
    INBOUND_SMS = "inbound_sms"  # an SMS reply
    VOICE_KEYPRESS = "voice_keypress"  # a key pressed on a call
    LINK_USED = "link_used"  # a signed confirm link was used
    ACKNOWLEDGED = "acknowledged"  # a call-out was answered (by the official, a deputy or a duty officer)
    ACK_IGNORED = "ack_ignored"  # an answer that changed nothing (already closed)
    RECALL = "recall"  # a duty officer's 立即重呼
    CALLOUTS_EXPIRED = "callouts_expired"  # open call-outs closed because the warning ran out
    SENT_AFTER_LEASE_LOST = "sent_after_lease_lost"  # a worker sent what another held: a possible double
    BROADCAST_ORDERED = "broadcast_ordered"  # the rural broadcast was ordered for the affected villages
    BROADCAST_SENT = "broadcast_sent"  # … and the platform took the order
    BROADCAST_FAILED = "broadcast_failed"  # … or refused it for good
    BROADCAST_RECEIPT = "broadcast_receipt"  # a terminal's playback receipt
    # The door-to-door follow-up of an unreached official (安排上门/现场核实), by a duty officer on the
    # board (services/follow_up.py). data: {callout, person (the official), who (who goes), note}.
    FOLLOW_UP_ASSIGNED = "follow_up_assigned"
    # … and what they found. data: {callout, person, outcome (reached | relayed | not_found), note, assigned
    # (the seq of the assignment it answers)}.
    FOLLOW_UP_RESULT = "follow_up_result"
    # A duty roll-call (值班点名) was started, by the schedule or a duty officer. data: {rollcall (its id in
    # checks.yaml), name, at (the time it is for), headline, answer_within (seconds), channels}.
    ROLLCALL_STARTED = "rollcall_started"
    # A 六问 spot-check (抽查) was started by a duty officer. data: {warning, spotcheck (its id in checks.yaml),
    # name, questions, size (asked), seed, drawn (person ids, in the order drawn), available, skipped
    # (left out as checked lately), short (fewer available than asked), answer_within (seconds), channels}.
    SPOTCHECK_STARTED = "spotcheck_started"
    # Answers to a spot-check's questions. data: {callout, person, via, answers ({question index: yes|no},
    # the new ones only), ignored (indexes answered before: the first answer stands), complete, body (an
    # SMS's text) or digits (a call's keys)}.
    ANSWERED = "answered"
    # A reply or key on a spot-check that was not an answer ("好的", five answers to six questions, key 5).
    # data: {callout, person, via, body | digits, question (on a call), asked_again (true: asked once more)}.
    NOT_AN_ANSWER = "not_an_answer"
    # A duty roll-call settled (every call-out closed, so every room decided): written once, by the engine.
    # data: {rooms: [{area, name, verdict (manned 到岗 | missing 未到岗 | unmanned 无人值班), called, present,
    # late, absent}], manned, missing, unmanned (how many rooms)}.
    ROLLCALL_RESULT = "rollcall_result"
    # A 六问 spot-check settled (every call-out closed: answered in full, or 未答全 at its time limit): written
    # once, by the engine. data: {checked, ok (全部为是), no (有否), missing (未答全), questions: [{yes, no,
    # none}] per question, follow_up: [{person, name, town, no: [question indexes], missing: [...]}]}.
    SPOTCHECK_RESULT = "spotcheck_result"
    # Forwarding (services/forwarding.py). A target took a forwarded message. data: {target, name, warning,
    # msg_type, identifier, code (its HTTP status), tries}.
    FORWARDED = "forwarded"
    # A forward or report could not be delivered for now (5xx, timeout, unreachable): tried again. data:
    # {target, name, kind (forward | report | report_email), warning, code, error, tries, retry_at}.
    FORWARD_FAILED = "forward_failed"
    # … refused for good (401/403: our key; another 4xx: the content): not retried until someone says so
    # (`jiaoying forwarding retry`). data: as forward_failed, and key (true: our key was refused).
    FORWARD_REFUSED = "forward_refused"
    # The settled result went upward. data: {target, name, kind (report | report_email), to (URL or
    # addresses), called, acknowledged, unreached}.
    REPORT_SENT = "report_sent"
    # A drill (演练) the county scheduled or started (services/drills.py), right after its warning's
    # ``received``. data: {drill (its id), kind (blind | announced), by (who scheduled or started it),
    # scheduled_at, at (the time it was for), window ([start, end] or null), broadcast, without, length
    # (seconds)}. Kept from duty officers' eyes on the board while a blind drill runs.
    DRILL_STARTED = "drill_started"
    # The drill ended and, if blind, was revealed. data: {drill, kind, ending (settled | ended | expired |
    # cancelled), by, called, reached, acknowledged, unreached}.
    DRILL_ENDED = "drill_ended"


@dataclass(frozen=True)
class RecordedEvent:
    seq: int
    at: datetime
    actor: str
    kind: str
    data: dict[str, Any]
    prev_hash: str
    hash: str  # the event's MAC (its plain SHA-256 for an event written before keying)
    key_id: str | None = None  # None: written before the record was keyed
    row_id: int | None = None  # the event row's id (ids only grow: see Ledger.unkeyed_before)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


# -- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordKey:
    """The record key: HMAC-SHA256(secret, "jiaoying record v1"), and its short public id."""

    id: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: str) -> RecordKey:
        key = hmac.new(secret.encode(), RECORD_KEY_CONTEXT, hashlib.sha256).digest()
        return cls(hmac.new(key, b"key id", hashlib.sha256).hexdigest()[:8], key)

    def mac(self, purpose: str, body: Any) -> str:
        """HMAC-SHA256 of one canonical JSON body; ``purpose`` keeps events, heads and the ledger apart."""
        message = purpose.encode() + b"\n" + _canonical(body).encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Keyring:
    """The key records are verified with (``current``), and keys used before a rotation."""

    current: RecordKey
    older: tuple[RecordKey, ...] = ()

    @classmethod
    def of(cls, secret: str, *older: str) -> Keyring:
        return cls(RecordKey.from_secret(secret), tuple(RecordKey.from_secret(s) for s in older))

    def get(self, key_id: str | None) -> RecordKey | None:
        return next((k for k in (self.current, *self.older) if k.id == key_id), None)


def event_hash(warning_id: str, seq: int, at: datetime, actor: str, kind: str, data: dict[str, Any],
               prev_hash: str) -> str:
    """The plain SHA-256 of an event written before keying (kept to verify those records)."""
    body = json.dumps(
        {"warning": warning_id, "seq": seq, "at": at.isoformat(), "actor": actor, "kind": kind,
         "data": data, "prev": prev_hash},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def event_mac(key: RecordKey, warning_id: str, seq: int, at: datetime, actor: str, kind: str,
              data: dict[str, Any], prev: str) -> str:
    return key.mac("event", {"warning": warning_id, "seq": seq, "at": _utc(at), "actor": actor, "kind": kind,
                             "data": data, "prev": prev, "key": key.id})


def head_seal(key: RecordKey, warning_id: str, count: int, head: str) -> str:
    """Seals the record's head: without the key, a shortened record cannot be sealed again."""
    return key.mac("head", {"warning": warning_id, "count": count, "head": head})


def ledger_mac(key: RecordKey, seq: int, record_id: str, at: datetime, data: dict[str, Any], prev: str) -> str:
    return key.mac("ledger", {"seq": seq, "record": record_id, "at": _utc(at), "data": data, "prev": prev,
                              "key": key.id})


def ledger_seal(key: RecordKey, count: int, head: str) -> str:
    return key.mac("ledger head", {"count": count, "head": head})


# -- the warning row's facts ----------------------------------------------------------------------

# The events that open a record and carry its message's facts: a warning received, or a routine
# check (a duty roll-call) started by the county itself.
OPENING = frozenset({EventKind.RECEIVED, EventKind.ROLLCALL_STARTED, EventKind.SPOTCHECK_STARTED})
# The facts of a warning message that never change once received. Its ``status`` changes, and is
# checked against the update and cancel events instead.
WARNING_FACTS = ("id", "sender", "identifier", "msg_type", "references", "root_id", "hazard", "level", "areas",
                 "headline", "description", "instruction", "sent", "expires", "drill", "received_at",
                 "api_key_id", "source_format", "raw")
# Those the ``received`` event also carries in the clear: a difference is named.
NAMED_FACTS = ("sender", "identifier", "msg_type", "hazard", "level", "areas", "drill", "headline", "sent", "expires")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _same(stored: Any, recorded: Any) -> bool:
    if isinstance(stored, datetime) and isinstance(recorded, str):
        try:
            return stored == datetime.fromisoformat(recorded)
        except ValueError:
            return False
    return _plain(stored) == recorded


def facts_digest(facts: Mapping[str, Any]) -> str:
    """SHA-256 of a message's facts (recorded in its ``received`` event, under that event's MAC)."""
    return hashlib.sha256(_canonical({k: _plain(facts.get(k)) for k in WARNING_FACTS}).encode()).hexdigest()


# -- what a check finds ----------------------------------------------------------------------------


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)  # breaks: something was changed or removed
    unverified: list[str] = field(default_factory=list)  # could not be checked: signed with another key
    notes: list[str] = field(default_factory=list)  # fine, worth saying (unkeyed events written before keying)

    def extend(self, other: Findings) -> None:
        self.problems += other.problems
        self.unverified += other.unverified
        self.notes += other.notes


def spans(numbers: Iterable[int]) -> str:
    """[1, 2, 3, 7] → "1–3, 7"."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(numbers):
        if run and n != run[-1] + 1:
            out.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(n)
    if run:
        out.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def _events_word(seqs: Sequence[int]) -> str:
    return f"event{'s' if len(seqs) > 1 else ''} {spans(seqs)}"


def other_key_text(key_id: str, keyring: Keyring, what: str) -> str:
    return (f"{what} signed with another key ({key_id}), not with this secret's ({keyring.current.id}): "
            f"the secret was changed since; verify with the earlier secret (--old-secret-file)")


def check_chain(warning_id: str, events: Iterable[RecordedEvent], head: str, count: int, seal: str | None,
                keyring: Keyring, unkeyed_before: int | None = None) -> Findings:
    """The chain itself: order, links, MACs, the head and its seal. ``unkeyed_before``: the first
    event id written with a key (from the ledger); None before any record was keyed."""
    found = Findings()
    problems = found.problems
    prev, expected_seq, seen = GENESIS, 1, 0
    keyed_seen = False
    unkeyed: list[int] = []
    foreign: dict[str, list[int]] = defaultdict(list)
    last: RecordedEvent | None = None
    for ev in events:
        seen += 1
        if ev.seq != expected_seq:
            problems.append(f"event {expected_seq} is missing (next found is {ev.seq})")
        if ev.prev_hash != prev:
            problems.append(f"event {ev.seq} does not follow the event before it")
        if ev.key_id is None:
            if keyed_seen:
                problems.append(f"event {ev.seq} ({ev.kind}) carries no key, after keyed events: "
                                f"it was rewritten without the key")
            elif unkeyed_before is not None and ev.row_id is not None and ev.row_id >= unkeyed_before:
                problems.append(f"event {ev.seq} ({ev.kind}) carries no key but was written after the record "
                                f"was keyed: it was rewritten without the key")
            if event_hash(warning_id, ev.seq, ev.at, ev.actor, ev.kind, ev.data, ev.prev_hash) != ev.hash:
                problems.append(f"event {ev.seq} ({ev.kind}) was changed after it was recorded")
            unkeyed.append(ev.seq)
        else:
            keyed_seen = True
            key = keyring.get(ev.key_id)
            if key is None:
                foreign[ev.key_id].append(ev.seq)
            elif event_mac(key, warning_id, ev.seq, ev.at, ev.actor, ev.kind, ev.data, ev.prev_hash) != ev.hash:
                problems.append(f"event {ev.seq} ({ev.kind}) was changed after it was recorded")
        prev, expected_seq, last = ev.hash, ev.seq + 1, ev
    if seen == 0:
        problems.append("the record holds no events (every warning is recorded when it is received)")
    if seen != count or prev != head:
        problems.append(f"the record should hold {count} events ending in {head[:12]}…, "
                        f"found {seen} ending in {prev[:12]}…")
    if last is not None and last.key_id is not None:
        key = keyring.get(last.key_id)
        if key is not None:
            if seal is None:
                problems.append("the record's head carries no seal: its head was rewritten")
            elif not hmac.compare_digest(seal, head_seal(key, warning_id, count, head)):
                problems.append(f"the record's head ({count} events ending in {head[:12]}…) is not the one "
                                f"that was sealed: events were removed from its end, or its head was rewritten")
    for key_id, seqs in foreign.items():
        found.unverified.append(other_key_text(key_id, keyring, _events_word(seqs)))
    if unkeyed:
        found.notes.append(f"{_events_word(unkeyed)} carr{'y' if len(unkeyed) > 1 else 'ies'} no key: written "
                           f"before the record was keyed, checked by the plain hash chain of that time")
    return found


# -- the rows the record describes -----------------------------------------------------------------


@dataclass(frozen=True)
class MessageFacts:
    """A warning message's row, as stored (``facts``: the columns named in WARNING_FACTS)."""

    id: str
    status: str
    facts: Mapping[str, Any]


def check_messages(events: Sequence[RecordedEvent], messages: Sequence[MessageFacts]) -> list[str]:
    """Each warning message of the record against its ``received`` event, its status against the
    update and cancel events; a message the record received must still be on file."""
    problems: list[str] = []
    received: dict[str, RecordedEvent] = {}
    expected: dict[str, tuple[str, int]] = {}  # message → (status, the event that set it)
    for ev in events:
        data = ev.data
        if ev.kind in OPENING and isinstance(data.get("warning"), str):
            received[data["warning"]] = ev
            expected[data["warning"]] = ("cancelled" if data.get("msg_type") == "cancel" else "active", ev.seq)
        elif ev.kind in (EventKind.UPDATED, EventKind.CANCELLED) and isinstance(data.get("warnings"), list):
            status = "updated" if ev.kind == EventKind.UPDATED else "cancelled"
            for wid in data["warnings"]:
                expected[str(wid)] = (status, ev.seq)
        elif ev.kind == EventKind.EXPIRED and isinstance(data.get("warning"), str):
            expected[data["warning"]] = ("expired", ev.seq)
    on_file = {m.id for m in messages}
    for m in messages:
        ev = received.get(m.id)
        if ev is None:
            problems.append(f"warning {m.id} has no 'received' event in the record")
            continue
        changed = [name for name in NAMED_FACTS if name in ev.data and not _same(m.facts.get(name), ev.data[name])]
        if "row" in ev.data and ev.data["row"] != facts_digest(m.facts) and not changed:
            changed = ["description, instruction, references, times of receipt, key or source text"]
        if changed:
            problems.append(f"warning {m.id}: {', '.join(changed)} differ{'s' if len(changed) == 1 else ''} "
                            f"from what was recorded when it was received (event {ev.seq})")
        status, seq = expected[m.id]
        if m.status != status and not (m.status == "expired" and status == "active" and _expired_on_arrival(m)):
            problems.append(f"warning {m.id} is marked {m.status!r}, but by the record it is {status!r} "
                            f"(event {seq})")
    for wid, ev in received.items():
        if wid not in on_file:
            problems.append(f"warning {wid}, received in event {ev.seq}, is no longer on file (deleted)")
    return problems


def _expired_on_arrival(m: MessageFacts) -> bool:
    """Stored expired by intake (its ``expires`` had passed): no event but its facts say so, and
    those are covered by the digest in its ``received`` event."""
    expires, received = m.facts.get("expires"), m.facts.get("received_at")
    return isinstance(expires, datetime) and isinstance(received, datetime) and expires <= received


@dataclass(frozen=True)
class CalloutFacts:
    """A call-out's row: the columns the record speaks about."""

    id: int
    warning_id: str
    person_id: str
    state: str
    started_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    ack_via: str | None = None
    ack_note: str | None = None
    unreached_at: datetime | None = None
    closed_at: datetime | None = None
    closed_reason: str | None = None


@dataclass(frozen=True)
class Supersession:
    """A warning named in a call-out's "superseded by …" reason: its level, and the call-outs its
    ``applied`` event lists as superseded (None while it is still being applied)."""

    level: str
    superseded: frozenset[int] | None


SUPERSEDED = re.compile(r"^superseded by (\S+) \((\w+)\)$")
CANCELLED_BY = re.compile(r"^warning cancelled by (\S+)$")
EXPIRED_REASON = "warning expired"
_OPEN = ("pending", "notified")


def superseding_ids(callouts: Iterable[CalloutFacts]) -> set[str]:
    return {m.group(1) for c in callouts if c.state == "cancelled" and (m := SUPERSEDED.match(c.closed_reason or ""))}


def _closings(events: Sequence[RecordedEvent]) -> list[tuple[RecordedEvent, str, int | None]]:
    """The events that closed every open call-out of the record, with the state they gave and how
    many they closed: a duty officer's cancel, a cancel message applied by the engine (the
    ``cancelled`` event written at intake closes nothing yet), the warning running out."""
    out: list[tuple[RecordedEvent, str, int | None]] = []
    for ev in events:
        if ev.kind == EventKind.CANCELLED and "callouts_cancelled" in ev.data:
            out.append((ev, "cancelled", _int(ev.data.get("callouts_cancelled"))))
        elif ev.kind == "applied" and ev.data.get("msg_type") == "cancel":
            out.append((ev, "cancelled", _int(ev.data.get("cancelled"))))
        elif ev.kind == "callouts_expired":
            out.append((ev, "expired", _int(ev.data.get("callouts"))))
    return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_callouts(events: Sequence[RecordedEvent], callouts: Sequence[CalloutFacts],
                   supersessions: Mapping[str, Supersession]) -> list[str]:
    """Each call-out's state and acknowledgement against the events that set them, and the number
    of call-outs each applied message started."""
    problems: list[str] = []
    acks: dict[int, RecordedEvent] = {}
    unreached: dict[int, RecordedEvent] = {}
    started: dict[str, tuple[int, int]] = {}  # message → (call-outs started, event)
    for ev in events:
        data = ev.data
        if ev.kind == "acknowledged" and isinstance(data.get("callout"), int):
            acks[data["callout"]] = ev
        elif ev.kind == "unreached":
            for entry in data.get("callouts") or ():
                if isinstance(entry, dict) and isinstance(entry.get("callout"), int):
                    unreached[entry["callout"]] = ev
        elif ev.kind == "applied" and isinstance(data.get("started"), int):
            started[str(data.get("warning"))] = (data["started"], ev.seq)
    closings = _closings(events)
    closed_by: dict[tuple[datetime, str], int] = defaultdict(int)  # (when, state) → call-outs closed then
    per_message: dict[str, int] = defaultdict(int)
    for c in callouts:
        per_message[c.warning_id] += 1
        who = f"call-out {c.id} ({c.person_id})"
        ack = acks.get(c.id)
        if c.state == "acknowledged":
            if ack is None:
                problems.append(f"{who} is marked acknowledged, but no event records an acknowledgement")
            else:
                recorded = {"acknowledged_by": ack.actor, "ack_via": ack.data.get("via"),
                            "ack_note": ack.data.get("note"), "acknowledged_at": ack.at, "closed_at": ack.at}
                stored = {"acknowledged_by": c.acknowledged_by, "ack_via": c.ack_via, "ack_note": c.ack_note,
                          "acknowledged_at": c.acknowledged_at, "closed_at": c.closed_at}
                changed = [name for name in recorded if recorded[name] != stored[name]]
                if changed:
                    problems.append(f"{who}: {', '.join(changed)} differ{'s' if len(changed) == 1 else ''} from "
                                    f"its acknowledgement (event {ack.seq})")
        elif ack is not None:
            problems.append(f"{who} was acknowledged (event {ack.seq}), but is marked {c.state!r}")
        elif any(v is not None for v in (c.acknowledged_at, c.acknowledged_by, c.ack_via, c.ack_note)):
            problems.append(f"{who} carries acknowledgement details that no event records")
        passed = unreached.get(c.id)
        if c.state == "unreached":
            if passed is None:
                problems.append(f"{who} is marked unreached, but no event records its last step passing")
            elif c.unreached_at != passed.at:
                problems.append(f"{who}: unreached_at differs from the event that marked it (event {passed.seq})")
        elif passed is not None and c.state != "acknowledged":
            problems.append(f"{who} passed its last step unanswered (event {passed.seq}), but is marked {c.state!r}")
        if c.closed_at is not None and (c.state == "expired" or CANCELLED_BY.match(c.closed_reason or "")):
            closed_by[(c.closed_at, c.state)] += 1
        if c.state == "cancelled":
            problems += _check_cancelled(c, who, {ev.at for ev, state, _ in closings if state == "cancelled"},
                                         supersessions)
        elif c.state == "expired":
            if c.closed_reason != EXPIRED_REASON or not any(
                    ev.at == c.closed_at for ev, state, _ in closings if state == "expired"):
                problems.append(f"{who} is marked expired, but no event records its warning running out then")
        elif c.state in _OPEN:
            if c.closed_at is not None or c.closed_reason is not None:
                problems.append(f"{who} is marked {c.state!r} but carries a closing time or reason")
            for ev, state, _ in closings:
                if c.started_at <= ev.at:
                    problems.append(f"{who} is marked {c.state!r}, but every open call-out was closed as {state} "
                                    f"after it started (event {ev.seq})")
                    break
        elif c.state not in ("acknowledged", "unreached"):
            problems.append(f"{who} has a state no event can give: {c.state!r}")
    said: dict[tuple[datetime, str], tuple[int, list[int]]] = {}  # (when, state) → (closed, events)
    for ev, state, count in closings:
        total, seqs = said.get((ev.at, state), (0, []))
        said[(ev.at, state)] = (total + (count or 0), [*seqs, ev.seq])
    for (at, state), (total, seqs) in said.items():
        if closed_by.get((at, state), 0) != total:
            problems.append(f"{_events_word(seqs)} closed {total} call-outs as {state}; "
                            f"{closed_by.get((at, state), 0)} are on file as closed then")
    for wid, (count, seq) in started.items():
        if per_message.get(wid, 0) != count:
            problems.append(f"warning {wid} started {count} call-outs (event {seq}); "
                            f"{per_message.get(wid, 0)} are on file")
    return problems


def _check_cancelled(c: CalloutFacts, who: str, closed_at: set[datetime],
                     supersessions: Mapping[str, Supersession]) -> list[str]:
    reason = c.closed_reason or ""
    if match := SUPERSEDED.match(reason):
        by, level = match.groups()
        known = supersessions.get(by)
        if known is None:
            return [f"{who} says it was superseded by {by}, which is not on file"]
        if known.level != level:
            return [f"{who} says it was superseded by {by} ({level}), but {by} is {known.level}"]
        if known.superseded is not None and c.id not in known.superseded:
            return [f"{who} says it was superseded by {by}, but {by}'s record does not list it"]
        return []
    if CANCELLED_BY.match(reason):
        if c.closed_at not in closed_at:
            return [f"{who} says its warning was cancelled, but no cancellation in the record closed it then"]
        return []
    return [f"{who} is cancelled for a reason no event records: {reason!r}"]


# -- the ledger of records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    record_id: str
    at: datetime
    key_id: str
    data: dict[str, Any]
    prev: str
    mac: str


@dataclass(frozen=True)
class LedgerHead:
    count: int
    head: str
    key_id: str | None
    seal: str | None


def entry_findings(entry: LedgerEntry, keyring: Keyring) -> Findings:
    """One entry's own MAC (not its place in the chain)."""
    found = Findings()
    key = keyring.get(entry.key_id)
    if key is None:
        found.unverified.append(other_key_text(entry.key_id, keyring, f"ledger entry {entry.seq} is"))
    elif not hmac.compare_digest(entry.mac, ledger_mac(key, entry.seq, entry.record_id, entry.at, entry.data,
                                                       entry.prev)):
        found.problems.append(f"ledger entry {entry.seq} (record {entry.record_id}) was changed after it was written")
    return found


def check_ledger(entries: Iterable[LedgerEntry], head: LedgerHead | None, keyring: Keyring) -> Findings:
    """The ledger's chain: entries 1…n in order, each linked to the one before, the head sealed."""
    found = Findings()
    prev, expected, seen = GENESIS, 1, 0
    for entry in entries:
        seen += 1
        if entry.seq != expected:
            found.problems.append(f"ledger entry {expected} is missing (next found is {entry.seq}): "
                                  f"a record's entry was deleted")
        if entry.prev != prev:
            found.problems.append(f"ledger entry {entry.seq} does not follow the entry before it")
        found.extend(entry_findings(entry, keyring))
        if "head_was" in entry.data:
            found.problems.append(f"ledger entry {entry.seq} was written after the ledger's head had been "
                                  f"rewritten (it counted {entry.data['head_was']} entries, not {entry.seq - 1})")
        prev, expected = entry.mac, entry.seq + 1
    count, top = (head.count, head.head) if head is not None else (0, GENESIS)
    if seen != count or prev != top:
        found.problems.append(f"the ledger should hold {count} entries ending in {top[:12]}…, found {seen} "
                              f"ending in {prev[:12]}…: entries were removed from its end, or it was rewritten")
    if head is not None and head.count > 0:
        key = keyring.get(head.key_id)
        if head.seal is None:
            found.problems.append("the ledger's head carries no seal: it was rewritten")
        elif key is None:
            found.unverified.append(other_key_text(str(head.key_id), keyring, "the ledger's head is"))
        elif not hmac.compare_digest(head.seal, ledger_seal(key, head.count, head.head)):
            found.problems.append(f"the ledger's head ({head.count} entries) is not the one that was sealed: "
                                  f"entries were removed from its end, or it was rewritten")
    return found
