"""Provider receipts and replies (no HTTP here): Twilio status callbacks, inbound SMS, and the
voice call's script and keypress.

Every receipt is appended to the warning's record. A status never moves an attempt backwards
(callbacks arrive out of order): queued/sending -> sent -> delivered | failed, and failed or
delivered stay. A call not answered (no-answer, busy, failed, canceled) calls the recipient's next
number in the same step; a failed call to the official's own current step on their last number
brings the plan's next step forward at once.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.record_repo import append_event
from ..db.tables import MAX_ID, AttemptRow, CalloutRow, InboundRow
from ..domain.callouts import OPEN_STATES, QUESTIONING, TELLING, AckVia, Purpose
from ..domain.channels import Channel
from ..domain.record import EventKind
from ..intake.schema import text_problem
from ..rendering import render
from . import spotchecks
from .ack import AckResult, acknowledge_callout, first_arrival
from .chain import newest
from .escalation import Unanswered, next_numbers
from .messages import message_context
from .replies import InboundOutcome, IncomingReply, take_replies
from .site import current_site

__all__ = ["InboundOutcome", "VoiceScript", "attempt_by_provider_id", "attempt_by_ref", "inbound_sms",
           "record_status", "spotcheck_key", "voice_keypress", "voice_script"]

log = logging.getLogger("jiaoying.receipts")

# Twilio message and call statuses -> our attempt statuses.
STATUS_MAP = {
    # messages
    "accepted": "sent", "scheduled": "sent", "queued": "sent", "sending": "sent", "sent": "sent",
    "delivered": "delivered", "read": "delivered", "undelivered": "failed", "failed": "failed",
    # calls
    "initiated": "sent", "ringing": "sent", "in-progress": "sent", "answered": "sent", "completed": "delivered",
    "no-answer": "failed", "busy": "failed", "canceled": "failed",
}
_RANK = {"queued": 0, "sending": 0, "sent": 1, "delivered": 2, "failed": 2, "cancelled": 2}


_KEY_LENGTH: int = AttemptRow.__table__.c.key.type.length
_REF_LENGTH: int = InboundRow.__table__.c.provider_ref.type.length
_ID_DIGITS = len(str(MAX_ID))


def attempt_by_ref(session: Session, ref: str | None) -> AttemptRow | None:
    """An attempt by its id (ASCII digits) or its unique key; None for an unknown one — and,
    without asking the database, for a ref no attempt can have: a number past the 32-bit ids
    (PostgreSQL's int4), text holding NUL (which PostgreSQL cannot compare) or longer than a key.
    Other digits (``²``, ``١٢``) are not a number here: ``int()`` takes some and not others."""
    if not ref or text_problem(ref) or len(ref) > _KEY_LENGTH:
        return None
    if ref.isascii() and ref.isdigit():
        if len(ref) > _ID_DIGITS or not 1 <= int(ref) <= MAX_ID:
            return None
        return session.get(AttemptRow, int(ref))
    return session.scalars(select(AttemptRow).where(AttemptRow.key == ref)).first()


def attempt_by_provider_id(session: Session, provider_id: str, *, for_update: bool = False) -> AttemptRow | None:
    """The attempt a provider's id names (the message or call id it gave when it took the attempt);
    ``for_update`` locks its row for the rest of the transaction (on PostgreSQL)."""
    query = select(AttemptRow).where(AttemptRow.provider_id == provider_id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def record_status(session: Session, now: datetime, provider_id: str, status: str, error_code: str | None = None,
                  *, attempt_ref: str | None = None, provider: str = "twilio") -> bool:
    """Record one status callback. ``status``: Twilio's words, or ours (sent, delivered, failed)
    from any provider's adapter. False (and logged) when no attempt has this id. ValueError,
    naming the argument, for text PostgreSQL cannot hold (NUL): such a callback is not a provider's."""
    for name, value in (("provider_id", provider_id), ("status", status), ("error_code", error_code)):
        if value and (problem := text_problem(value)):
            raise ValueError(f"{name}: {problem}")
    attempt = None
    if provider_id:
        attempt = session.scalars(select(AttemptRow).where(AttemptRow.provider_id == provider_id)
                                  .with_for_update()).first()
    if attempt is None and attempt_ref:
        attempt = attempt_by_ref(session, attempt_ref)
        if attempt is not None and attempt.provider_id not in (None, provider_id):
            attempt = None  # the key names another send of that attempt: not ours
    status = (status or "").strip().lower()
    if attempt is None:
        log.warning("%s status %r for unknown id %r (attempt %r): recorded nowhere", provider, status, provider_id,
                    attempt_ref)
        return False
    ours = STATUS_MAP.get(status)
    before = attempt.status
    changed = ours is not None and _RANK.get(ours, 0) > _RANK.get(before, 0)
    if changed:
        attempt.status, attempt.updated_at = ours, now
        if ours == "failed":
            attempt.error = f"{provider}: {status}" + (f" (error {error_code})" if error_code else "")
    append_event(session, attempt.record_id, EventKind.PROVIDER_RECEIPT, provider, now, {
        "key": attempt.key, "channel": attempt.channel, "to": attempt.recipient_id, "provider_id": provider_id,
        "provider_status": status, "error_code": error_code, "status": attempt.status if changed else before,
        "changed": changed})
    if changed and ours == "failed" and not _next_number(session, now, attempt, provider):
        _bring_next_step_forward(session, now, attempt, provider)
    return True


def _next_number(session: Session, now: datetime, attempt: AttemptRow, provider: str) -> bool:
    """A call not answered: whether the same step goes on to the recipient's next number (queued
    now, or before by a copy of this receipt) — then the step is not over yet."""
    if attempt.channel != Channel.VOICE.value:
        return False
    return bool(next_numbers(session, now, [Unanswered(
        attempt.id, attempt.key, attempt.callout_id, attempt.record_id, attempt.step_index, attempt.purpose,
        attempt.channel, attempt.recipient_id, attempt.number, attempt.error)], provider))


def _bring_next_step_forward(session: Session, now: datetime, attempt: AttemptRow, provider: str) -> None:
    """A failed attempt to the official's own current step: the next step need not wait. A voice
    call that nobody answered on the official's last number is enough; for other channels every
    attempt of the step must have failed."""
    callout = session.execute(select(CalloutRow).where(CalloutRow.id == attempt.callout_id)
                              .with_for_update()).scalar_one()
    own = attempt.recipient_id == callout.person_id and attempt.step_index >= 0
    if not own or attempt.step_index != callout.next_step - 1:
        return
    if callout.state not in OPEN_STATES or callout.next_due is None or callout.next_due <= now:
        return
    if attempt.channel != Channel.VOICE.value:
        alive = session.scalar(select(AttemptRow.id).where(
            AttemptRow.callout_id == callout.id, AttemptRow.step_index == attempt.step_index,
            AttemptRow.id != attempt.id, AttemptRow.status.in_(("queued", "sending", "sent", "delivered"))).limit(1))
        if alive is not None:
            return
    callout.next_due = now
    append_event(session, callout.record_id, EventKind.STEP_BROUGHT_FORWARD, provider, now, {
        "callout": callout.id, "person": callout.person_id, "failed": attempt.key, "next_step": callout.next_step})


def inbound_sms(session: Session, now: datetime, *, sender: str, body: str, sid: str = "") -> InboundOutcome:
    """One SMS reply (see services.replies for many at once): a confirmation (or a code)
    acknowledges; anything else is recorded only."""
    return take_replies(session, now, [IncomingReply(sender, body, sid)])[0]


@dataclass(frozen=True)
class VoiceScript:
    attempt_id: int
    callout_id: int
    text: str
    # A 六问 spot-check's call, asked one question at a time: the first question still without an
    # answer (``text`` then only introduces them). None for every other call.
    question: spotchecks.CallTurn | None = None


def voice_script(session: Session, attempt_ref: str | None, ask_each: bool = False) -> VoiceScript | None:
    """What the call says: the attempt's message, composed again from the event's newest content.
    ``ask_each``: the caller asks a spot-check's questions one by one (Twilio ``<Gather>``)."""
    attempt = attempt_by_ref(session, attempt_ref)
    if attempt is None:
        return None
    callout = session.get(CalloutRow, attempt.callout_id)
    if callout is None:
        return None
    site = current_site(session)
    content = newest(session, callout.record_id)
    questioning = Purpose(attempt.purpose) in QUESTIONING
    context = message_context(site, content, callout, site.people.get(attempt.recipient_id),
                              site.people.get(callout.person_id), step=attempt.step_index)
    if questioning and ask_each:
        context = replace(context, ask_each=True)
    text = render(Channel.VOICE, Purpose(attempt.purpose), "zh", context).text
    question = spotchecks.first_question(session, callout.id) if questioning and ask_each else None
    return VoiceScript(attempt.id, callout.id, text, question)


def spotcheck_key(session: Session, now: datetime, attempt_ref: str | None, question: int, again: bool,
                  digits: str, call_sid: str = "", provider: str = "twilio") -> spotchecks.CallTurn | None:
    """A key (or none) on question ``question`` of a spot-check call asked one question at a time:
    recorded once (a replayed webhook changes nothing) and answered with what the call asks next.
    None: unknown attempt, or not a spot-check's."""
    attempt = attempt_by_ref(session, attempt_ref)
    if attempt is None or Purpose(attempt.purpose) not in QUESTIONING:
        log.warning("spot-check keypress for unknown attempt %r", attempt_ref)
        return None
    digits = (digits or "").strip()
    ref = _keypress_ref(provider, call_sid, f"{attempt.key}:q{question}{'a' if again else ''}", digits)
    if first_arrival(session, now, AckVia.VOICE, attempt.recipient_id, digits, ref) is None:
        log.info("keypress %r on call %s (question %d) seen before", digits, call_sid, question + 1)
        return spotchecks.next_question(session, attempt.callout_id, question, again)
    return spotchecks.call_key(session, now, attempt, question, again, digits, call_sid)


def _keypress_ref(provider: str, call_sid: str, key: str, digits: str) -> str | None:
    ref = f"{provider}:gather:{call_sid}:{key}:{digits}" if call_sid else None
    if ref is not None and len(ref) > _REF_LENGTH:  # long ids and keys: a digest keeps it unique and in the column
        ref = f"{provider}:gather:{hashlib.sha256(ref.encode()).hexdigest()}"
    return ref


def voice_keypress(session: Session, now: datetime, attempt_ref: str | None, digits: str,
                   call_sid: str = "", provider: str = "twilio") -> AckResult | None:
    """A key pressed on the call: "1" acknowledges the call-out (AckVia.VOICE, by whoever was
    called); anything else is recorded and the message is repeated. None: unknown attempt."""
    attempt = attempt_by_ref(session, attempt_ref)
    if attempt is None:
        log.warning("voice keypress for unknown attempt %r", attempt_ref)
        return None
    digits = (digits or "").strip()
    ref = _keypress_ref(provider, call_sid, attempt.key, digits)
    inbound = first_arrival(session, now, AckVia.VOICE, attempt.recipient_id, digits, ref)
    if inbound is None:
        log.info("keypress %r on call %s seen before: ignored", digits, call_sid)
        return AckResult("duplicate", [attempt.callout_id])
    inbound.outcome = "keypress"
    append_event(session, attempt.record_id, EventKind.VOICE_KEYPRESS, attempt.recipient_id, now, {
        "key": attempt.key, "call_sid": call_sid, "digits": digits})
    if attempt.purpose in _QUESTIONING:
        # A spot-check's keys answer its questions: on a call asked one question at a time through
        # spotcheck_key; from an IVR that reports every key of the call at its end, through
        # spotchecks.call_keys. A key reported on its own here acknowledges nothing; from a provider
        # that reports one key only (Tencent), whose call asked for an SMS reply, it is recorded as
        # not an answer, and the questions go by SMS if they have not.
        if provider in spotchecks.ONE_KEY_PROVIDERS:
            spotchecks.one_key(session, now, attempt, digits, call_sid)
        return AckResult("not_a_confirmation", [attempt.callout_id])
    if digits != "1" or attempt.purpose in _TELLING:  # a call that only told (a missed roll-call) asks for nothing
        return AckResult("not_a_confirmation", [attempt.callout_id])
    return acknowledge_callout(session, now, attempt.callout_id, via=AckVia.VOICE, by=attempt.recipient_id)


_TELLING = frozenset(p.value for p in TELLING)
_QUESTIONING = frozenset(p.value for p in QUESTIONING)
