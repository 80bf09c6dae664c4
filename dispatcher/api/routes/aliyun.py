"""Aliyun (阿里云) callbacks: SMS receipts (SmsReport), SMS replies (SmsUp), call results (VoiceReport) and
IVR keypresses (VoiceCallReport), pushed by Aliyun's "HTTP 批量推送" as a JSON array per POST.

Aliyun signs none of them. They are protected by (see dispatcher/channels/carriers.py):

- the unguessable token in the path (``/webhooks/aliyun/<token>/…``, printed by ``jiaoying carriers
  callbacks``): a wrong one is answered 404 and logged, before the body is read;
- matching: a receipt changes an attempt only if it names what we sent — the provider id
  (``<BizId>:<number>`` for an SMS, the CallId for a call) or our OutId (the attempt key for an SMS, the
  attempt id for a call) — AND its number is the attempt recipient's number (keypress reports carry no
  number: there the CallId must be the attempt's when it is known). Anything else is ignored and logged;
- deduplication: a receipt that would not change its attempt (a replay, Aliyun pushing again) is not
  recorded again; replies and keypresses are kept once by the provider's ids (``aliyun:sms:<sequence_id>``,
  ``aliyun:gather:<CallId>:<attempt key>:<digits>``);
- the body limit (64 KiB for /webhooks/), and validation: fields of the wrong type, NUL characters or
  values longer than their columns are refused with 422 naming the field, and nothing is stored.

Each accepted push is answered ``{"code": 0, "msg": "成功"}`` (Aliyun pushes again — after 1, 5 and 10
minutes — anything else, including 5xx when the database is down).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from sqlalchemy.orm import Session

from ...channels.aliyun import ANSWER_PURPOSES, PROVIDER, e164, national_number, sms_provider_id
from ...channels.carriers import token_matches
from ...config import Settings
from ...db.session import transaction
from ...db.tables import AttemptRow
from ...domain.callouts import QUESTIONING, Purpose
from ...domain.channels import Channel
from ...domain.roster import mask_phone
from ...domain.site import Site
from ...intake.schema import text_problem
from ...services import receipts, rollcalls, spotchecks
from ...services.replies import IncomingReply
from ...services.site import current_site
from ..deps import kick
from ..replies import ReplyBatcher

__all__ = ["ANSWERED", "OK", "SmsReport", "SmsUp", "VoiceCallReport", "VoiceReport", "router"]

router = APIRouter(tags=["webhooks"])
log = logging.getLogger("jiaoying.webhooks.aliyun")

BASE = "/webhooks/aliyun/{token}"
OK = {"code": 0, "msg": "成功"}
# VoiceReport status_code: the callee picked up (heard it all, hung up early, or gave no key in time).
# Any other final code — busy 200002, no answer 200003, invalid number 200004, unreachable 200005,
# out of service area 200007, powered off 200010, suspended 200011, refused, … — fails the attempt.
ANSWERED = frozenset({"200000", "200001", "200008"})
KEYPRESS = "300000"

_ID = AttemptRow.__table__.c.provider_id.type.length  # 64
_KEY = AttemptRow.__table__.c.key.type.length  # 128


class _Push(BaseModel):
    """One element of a pushed array. Aliyun sends numbers for some ids (sequence_id): kept as text."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if isinstance(value, str) and (problem := text_problem(value)):
            raise ValueError(problem)
        return value


class SmsReport(_Push):
    phone_number: str = Field(min_length=1, max_length=32)
    success: bool
    err_code: str = Field("", max_length=64)
    err_msg: str = Field("", max_length=500)
    biz_id: str = Field("", max_length=_ID - 13)
    out_id: str = Field("", max_length=256)
    send_time: str = Field("", max_length=32)
    report_time: str = Field("", max_length=32)
    sms_size: str = Field("", max_length=8)


class SmsUp(_Push):
    phone_number: str = Field(min_length=1, max_length=32)
    content: str = Field(max_length=4000)
    send_time: str = Field("", max_length=32)
    sign_name: str = Field("", max_length=64)
    dest_code: str = Field("", max_length=32)
    sequence_id: str = Field("", max_length=64)


class VoiceCallReport(_Push):
    call_id: str = Field(min_length=1, max_length=_ID)
    status_code: str = Field("", max_length=16)
    status_time: str = Field("", max_length=32)
    out_id: str = Field("", max_length=_KEY)
    dtmf: str = Field("", max_length=32)


class VoiceReport(_Push):
    call_id: str = Field(min_length=1, max_length=_ID)
    callee: str = Field(min_length=1, max_length=32)
    status_code: str = Field(min_length=1, max_length=16)
    status_msg: str = Field("", max_length=200)
    caller: str = Field("", max_length=32)
    out_id: str = Field("", max_length=_KEY)
    dtmf: str = Field("", max_length=32)


_M = TypeVar("_M", bound=_Push)


def _guard(request: Request, token: str) -> Settings:
    settings: Settings = request.app.state.settings
    if not token_matches(settings, token):
        client = request.client.host if request.client else "?"
        log.warning("aliyun callback %s refused: wrong token (from %s)", request.url.path.rsplit("/", 1)[-1], client)
        raise HTTPException(404, "Not Found")
    return settings


async def _pushed(request: Request, model: type[_M]) -> list[_M]:
    """The pushed array, validated (422 naming the element and field otherwise)."""
    body = await request.body()
    try:
        return TypeAdapter(list[model]).validate_json(body)  # type: ignore[valid-type]
    except ValidationError as exc:
        problems = [dict(p) | {"loc": ("body", *p["loc"])} for p in exc.errors(include_url=False)]
        log.warning("aliyun %s refused: %s", model.__name__, "; ".join(
            f"{'.'.join(str(x) for x in p['loc'])}: {p['msg']}" for p in problems[:5]))
        raise RequestValidationError(problems) from None


async def _in_transaction(settings: Settings, now: datetime, work: Callable[[Session, Site, datetime], int]) -> int:
    # Its own transaction, in the thread pool: a push of hundreds of receipts must not hold up the event loop.
    def run() -> int:
        with transaction(settings.database_url) as session:
            return work(session, current_site(session), now)

    return await run_in_threadpool(run)


def _attempt(session: Session, channel: Channel, provider_id: str, out_id: str) -> AttemptRow | None:
    """The attempt a callback names: by our provider id, else by our OutId (the callback can beat the
    engine's record of the provider id) if that attempt holds no other provider id; ours and on ``channel``."""
    attempt = None
    if provider_id:
        attempt = receipts.attempt_by_provider_id(session, provider_id)
    if attempt is None and out_id:
        candidate = receipts.attempt_by_ref(session, out_id)
        if candidate is not None and candidate.provider_id in (None, "", provider_id):
            attempt = candidate
    if attempt is None or attempt.channel != channel.value or attempt.provider not in (None, PROVIDER):
        return None
    return attempt


def _recipient_has(site: Site, attempt: AttemptRow, number: str | None, session: Session | None = None) -> bool:
    """Whether ``number`` (national, as Aliyun reports it) is one of the recipient's numbers: a call
    may be to their second or third (a voice step not answered on the first tries the next) — or, for
    a roll-call's call to its duty room's phone (``DUTY_PHONE``), that phone."""
    room = rollcalls.room_phone(session, site, attempt) if session is not None else None
    if number and room is not None and national_number(room) == number:
        return True
    person = site.people.get(attempt.recipient_id)
    return bool(number and person is not None and any(national_number(n.number) == number for n in person.numbers))


def _record(session: Session, now: datetime, attempt: AttemptRow, provider_id: str, status: str,
            error: str | None) -> bool:
    """The receipt on its attempt, unless it changes nothing (a replay): True if recorded."""
    if attempt.status == status:
        log.info("aliyun %s receipt for %s seen before (already %s): ignored", attempt.channel, attempt.key, status)
        return False
    # The attempt's own provider id when it has one (the receipt was matched to it above); else ours.
    known = attempt.provider_id if attempt.provider_id is not None else provider_id
    return receipts.record_status(session, now, known, status, error, attempt_ref=str(attempt.id), provider=PROVIDER)


def _clock(request: Request) -> datetime:
    return request.app.state.clock()


@router.post(f"{BASE}/sms-report", summary="Aliyun SMS delivery receipts (SmsReport)")
async def sms_report(token: str, request: Request) -> dict[str, Any]:
    settings = _guard(request, token)
    items = await _pushed(request, SmsReport)

    def work(session: Session, site: Site, now: datetime) -> int:
        recorded = 0
        for item in items:
            number = national_number(item.phone_number)
            provider_id = sms_provider_id(item.biz_id, number) if item.biz_id and number else ""
            attempt = _attempt(session, Channel.SMS, provider_id, item.out_id)
            if attempt is None:
                log.warning("aliyun SmsReport for unknown message (biz_id %r, out_id %r, %s): ignored", item.biz_id,
                            item.out_id, mask_phone(item.phone_number))
                continue
            if not _recipient_has(site, attempt, number):
                log.warning("aliyun SmsReport for %s names %s, not its recipient's number: ignored", attempt.key,
                            mask_phone(item.phone_number))
                continue
            status = "delivered" if item.success else "failed"
            error = None if item.success else (f"{item.err_code} {item.err_msg}".strip() or "failed")
            recorded += _record(session, now, attempt, provider_id, status, error)
        return recorded

    if await _in_transaction(settings, _clock(request), work):
        kick(request)  # a failed SMS may have brought the next step forward
    return OK


@router.post(f"{BASE}/sms-up", summary="Aliyun SMS replies (SmsUp, 上行短信): replies that acknowledge")
async def sms_up(token: str, request: Request) -> dict[str, Any]:
    _guard(request, token)
    items = await _pushed(request, SmsUp)
    replies = []
    for item in items:
        number = national_number(item.phone_number)
        if number is None:
            log.warning("aliyun SmsUp from %s, not a mainland number: ignored", mask_phone(item.phone_number))
            continue
        sid = item.sequence_id or hashlib.sha256("\x1f".join(
            (number, item.send_time, item.dest_code, item.content)).encode()).hexdigest()[:32]
        replies.append(IncomingReply(e164(number), item.content, sid, provider=PROVIDER))
    # Taken with the replies arriving meanwhile (one transaction per batch); answered once committed.
    batcher: ReplyBatcher = request.app.state.replies
    outcomes = await asyncio.gather(*(batcher.take(reply) for reply in replies))
    if any(o.spotcheck == "asked_again" for o in outcomes):
        kick(request)  # a spot-check asks once more by SMS: queued now
    return OK


@router.post(f"{BASE}/voice-report", summary="Aliyun call results (VoiceReport)")
async def voice_report(token: str, request: Request) -> dict[str, Any]:
    settings = _guard(request, token)
    items = await _pushed(request, VoiceReport)

    def work(session: Session, site: Site, now: datetime) -> int:
        recorded = 0
        for item in items:
            attempt = _attempt(session, Channel.VOICE, item.call_id, item.out_id)
            if attempt is None:
                log.warning("aliyun VoiceReport for unknown call %r (out_id %r): ignored", item.call_id, item.out_id)
                continue
            number = national_number(item.callee)
            if not _recipient_has(site, attempt, number, session):
                log.warning("aliyun VoiceReport for %s names %s, not its recipient's number: ignored", attempt.key,
                            mask_phone(item.callee))
                continue
            if Purpose(attempt.purpose) in QUESTIONING:  # a spot-check: the keys of the call answer its questions
                spotchecks.call_keys(session, now, attempt, item.dtmf, item.call_id, provider=PROVIDER)
            elif "1" in item.dtmf and Purpose(attempt.purpose) in ANSWER_PURPOSES:
                # The keypress report may have been lost: the call's record says 1 was pressed. The same
                # provider ref as the keypress report's, so the two count once.
                receipts.voice_keypress(session, now, str(attempt.id), "1", item.call_id, provider=PROVIDER)
            answered = item.status_code in ANSWERED
            error = None if answered else f"{item.status_code} {item.status_msg}".strip()
            recorded += _record(session, now, attempt, item.call_id, "delivered" if answered else "failed", error)
        return recorded

    if await _in_transaction(settings, _clock(request), work):
        kick(request)  # a call nobody answered brings the next step forward
    return OK


@router.post(f"{BASE}/voice-keypress", summary="Aliyun IVR keypresses (VoiceCallReport): 1 acknowledges")
async def voice_keypress(token: str, request: Request) -> dict[str, Any]:
    settings = _guard(request, token)
    items = await _pushed(request, VoiceCallReport)

    def work(session: Session, site: Site, now: datetime) -> int:
        taken = 0
        for item in items:
            if not item.dtmf:
                continue  # another in-call state: nothing was pressed
            attempt = _attempt(session, Channel.VOICE, item.call_id, item.out_id)
            if attempt is None:
                log.warning("aliyun keypress on unknown call %r (out_id %r): ignored", item.call_id, item.out_id)
                continue
            if receipts.voice_keypress(session, now, str(attempt.id), item.dtmf, item.call_id,
                                       provider=PROVIDER) is not None:
                taken += 1
        return taken

    await _in_transaction(settings, _clock(request), work)
    return OK
