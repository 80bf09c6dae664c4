"""Tencent Cloud (腾讯云) callbacks: SMS status reports, SMS replies, call results and keypresses.

Tencent signs none of its callbacks. Each URL carries the deployment's callback token in its path
(``/webhooks/tencent/<token>/…``, ``channels.carriers``; ``jiaoying carriers callbacks`` prints the
URLs to register): a wrong token is answered 404 and logged, before the body is looked at. The body
is checked against the documented shape (pydantic; anything else is a 422 naming the field), capped
in size by api.bodylimit, and then only ever matched to an attempt we sent to that very number:

- ``sms-status``: a JSON array of reports (``sid`` = the SerialNo the adapter kept as the attempt's
  provider id, ``mobile``, ``report_status`` SUCCESS/FAIL). SUCCESS -> delivered, FAIL -> failed.
- ``sms-reply``: one object (``mobile``, ``nationcode``, ``text``, ``time`` …): the reply batcher
  takes it as any SMS reply ("收到", "1", the code …). Tencent gives a reply no id: its id here is a
  digest of what arrived, so a replayed callback is the same reply and changes nothing.
- ``voice-status``: ``{"voiceprompt_callback": {result "0" answered / "1" not answered / "2"
  failed, callid, mobile …}}``: answered -> delivered; not answered or failed -> the attempt fails,
  and a failed call to the official's own step brings the next step forward.
- ``voice-keypress``: ``{"voicekey_callback": {callid, keypress, mobile …}}``: "1" acknowledges.

Both voice URLs accept both voice shapes (the console may send both to one URL). A report or a
keypress for an unknown id, for an attempt of another provider or channel, or from a number that is
not the attempt's recipient's, is logged and ignored; a replayed one changes nothing. Every
callback that passed the token is answered ``{"result": 0, "errmsg": "OK"}``, as Tencent expects
(otherwise it sends it again).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from ...channels.carriers import token_matches
from ...db.tables import AttemptRow, InboundRow
from ...domain.channels import Channel
from ...domain.roster import mask_phone
from ...intake.schema import text_problem
from ...services import receipts, rollcalls
from ...services.replies import IncomingReply
from ...services.site import current_site
from ..deps import ClockDep, SettingsDep, UnitOfWork, UnitOfWorkDep, kick
from ..replies import ReplyBatcher

__all__ = ["OK", "PREFIX", "router"]

router = APIRouter(tags=["webhooks"])
log = logging.getLogger("jiaoying.webhooks.tencent")

PROVIDER = "tencent"
PREFIX = "/webhooks/tencent/{token}"
OK = {"result": 0, "errmsg": "OK"}

_ID_LENGTH: int = AttemptRow.__table__.c.provider_id.type.length
_SENDER_LENGTH: int = InboundRow.__table__.c.sender.type.length
_REF_LENGTH: int = InboundRow.__table__.c.provider_ref.type.length


def _storable(value: str) -> str:
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


def _as_text(value: Any) -> Any:
    """Tencent sends numbers as strings; an int is taken as its digits."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_as_text), AfterValidator(_storable)]
Id = Annotated[str, BeforeValidator(_as_text), Field(min_length=1, max_length=_ID_LENGTH),
               AfterValidator(_storable)]
Mobile = Annotated[str, BeforeValidator(_as_text), Field(pattern=r"^\+?[0-9]{5,20}$")]
NationCode = Annotated[str, BeforeValidator(_as_text), Field(pattern=r"^[0-9]{0,4}$")]


class _Callback(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class SmsStatusReport(_Callback):
    """One element of the SMS status report array (短信下发状态回调, 382/59178)."""

    sid: Id  # the SerialNo SendSms answered for this number
    mobile: Mobile
    nationcode: NationCode = "86"
    report_status: Annotated[Literal["SUCCESS", "FAIL"], BeforeValidator(lambda v: str(v).strip().upper())]
    errmsg: Annotated[Text, Field(max_length=64)] = ""
    description: Annotated[Text, Field(max_length=500)] = ""
    user_receive_time: Annotated[Text, Field(max_length=32)] = ""
    ext: Any = None  # the SessionContext, when Tencent echoes it (shape undocumented: used if a string)


class SmsReply(_Callback):
    """An SMS reply (短信回复 / 上行, 382/5809)."""

    mobile: Mobile
    nationcode: NationCode = "86"
    text: Annotated[Text, Field(max_length=1000)]
    sign: Annotated[Text, Field(max_length=64)] = ""
    extend: Annotated[Text, Field(max_length=32)] = ""
    time: int = 0


class VoicePrompt(_Callback):
    """``voiceprompt_callback``: how the call ended (1128/51534)."""

    result: Annotated[Literal["0", "1", "2"], BeforeValidator(_as_text)]
    callid: Id
    mobile: Mobile
    nationcode: NationCode = "86"
    call_from: Annotated[Text, Field(max_length=32)] = ""
    accept_time: Annotated[Text, Field(max_length=32)] = ""
    start_calltime: Annotated[Text, Field(max_length=32)] = ""
    end_calltime: Annotated[Text, Field(max_length=32)] = ""
    fee: Annotated[Text, Field(max_length=16)] = ""


class VoiceKey(_Callback):
    """``voicekey_callback``: the key(s) the callee pressed (1128/51535)."""

    callid: Id
    keypress: Annotated[Text, Field(min_length=1, max_length=8)]
    mobile: Mobile
    nationcode: NationCode = "86"
    call_from: Annotated[Text, Field(max_length=32)] = ""


class VoiceCallback(_Callback):
    voiceprompt_callback: VoicePrompt | None = None
    voicekey_callback: VoiceKey | None = None

    @model_validator(mode="after")
    def _one_of_them(self) -> VoiceCallback:
        if self.voiceprompt_callback is None and self.voicekey_callback is None:
            raise ValueError("expected voiceprompt_callback or voicekey_callback")
        return self


async def callback_token(token: str, request: Request, settings: SettingsDep) -> None:  # no I/O: no thread hop
    """404 (and a warning) unless the path carries this deployment's token."""
    if not (token.isascii() and token_matches(settings, token)):
        client = request.client.host if request.client else "?"
        log.warning("tencent callback %s refused: wrong token (from %s)", request.url.path.rsplit("/", 1)[-1], client)
        raise HTTPException(404, "not found")


Checked = [Depends(callback_token)]


def e164(nationcode: str, mobile: str) -> str:
    """+8613800000001 from ("86", "13800000001"); a mobile already in E.164 is kept."""
    if mobile.startswith("+"):
        return mobile
    return f"+{nationcode or '86'}{mobile}"


# -- matching a callback to the attempt it reports on ------------------------------------------------


def _attempt(session: Session, channel: Channel, provider_id: str, number: str, what: str,
             ref: str | None = None) -> AttemptRow | None:
    """The attempt of ours this callback is about: found by the provider's id (or, for an SMS report
    Tencent echoed our SessionContext in, by that reference while the attempt has no id yet), sent
    by Tencent on this channel, to a person whose number is ``number``. None (logged) otherwise."""
    attempt = receipts.attempt_by_provider_id(session, provider_id, for_update=True)
    if attempt is None and ref:
        attempt = receipts.attempt_by_ref(session, ref)
        if attempt is not None and attempt.provider_id not in (None, provider_id):
            attempt = None
    if attempt is None:
        log.warning("tencent %s for unknown id %r: ignored", what, provider_id)
        return None
    # (a failover chain may record its members joined by "+" on an attempt none of them took yet)
    if PROVIDER not in (attempt.provider or PROVIDER).split("+") or attempt.channel != channel.value:
        log.warning("tencent %s for id %r names a %s attempt of %s: ignored", what, provider_id, attempt.channel,
                    attempt.provider)
        return None
    site = current_site(session)
    person = site.people.get(attempt.recipient_id)
    room = rollcalls.room_phone(session, site, attempt)  # a roll-call's call to its duty room's phone
    if room is not None and room in (number, number.replace("+860", "+86", 1)):
        return attempt
    # Any of the person's numbers: a call may be to their second or third (a voice step not answered
    # on the first tries the next); a landline may come back with its trunk 0 (+86 0572…).
    if person is None or not (person.has_number(number) or person.has_number(number.replace("+860", "+86", 1))):
        log.warning("tencent %s for id %r comes from %s, not from a number of the person attempt %s was for: "
                    "ignored", what, provider_id, mask_phone(number), attempt.key)
        return None
    return attempt


def _record(session: Session, now: datetime, attempt: AttemptRow, provider_id: str, word: str, ours: str,
            error: str | None, ref: str | None) -> bool:
    """Record one status; False for a replay (the attempt already has that status): nothing changes."""
    if attempt.status == ours:
        log.info("tencent status %r for %s seen before: ignored", word, provider_id)
        return False
    by_ref = ref if attempt.provider_id is None else None
    return receipts.record_status(session, now, provider_id, word, error, attempt_ref=by_ref, provider=PROVIDER)


# -- the endpoints -------------------------------------------------------------------------------------


@router.post(f"{PREFIX}/sms-status", dependencies=Checked, summary="Tencent SMS status reports (a JSON array)")
def sms_status(reports: list[SmsStatusReport], clock: ClockDep, uow: UnitOfWorkDep) -> dict[str, Any]:
    now = clock()
    with uow as session:
        for report in reports:
            number = e164(report.nationcode, report.mobile)
            ref = report.ext if isinstance(report.ext, str) and not text_problem(report.ext) else None
            attempt = _attempt(session, Channel.SMS, report.sid, number, "sms status report", ref)
            if attempt is None:
                continue
            ours = "delivered" if report.report_status == "SUCCESS" else "failed"
            error = (report.errmsg or report.description or None) if ours == "failed" else None
            if _record(session, now, attempt, report.sid, ours, ours, error, ref) and ours == "failed":
                uow.wake()  # a failed report may have brought the next step forward
    return OK


@router.post(f"{PREFIX}/sms-reply", dependencies=Checked, summary="Tencent SMS replies (上行): 收到 / 1 / the code")
async def sms_reply(reply: SmsReply, request: Request) -> dict[str, Any]:
    sender = e164(reply.nationcode, reply.mobile)
    if len(sender) > _SENDER_LENGTH:
        raise HTTPException(422, "mobile: too long")
    # No id in the callback: the digest of everything in it is the same for a replay of it.
    digest = hashlib.sha256("\x1f".join((sender, str(reply.time), reply.sign, reply.extend, reply.text))
                            .encode()).hexdigest()[:40]
    batcher: ReplyBatcher = request.app.state.replies
    outcome = await batcher.take(IncomingReply(sender=sender, body=reply.text, sid=digest, provider=PROVIDER))
    if outcome.spotcheck == "asked_again":
        kick(request)  # a spot-check asks once more by SMS: queued now
    return OK


def _call_ref(callid: str, key: str, digits: str) -> str:
    """The call id as the keypress's dedupe reference carries it: itself, or a digest of it where
    ``tencent:gather:<callid>:<key>:<digits>`` would not fit the column (a replay maps alike)."""
    if len(f"{PROVIDER}:gather:{callid}:{key}:{digits.strip()}") <= _REF_LENGTH:
        return callid
    return hashlib.sha256(callid.encode()).hexdigest()[:16]


def _voice(callback: VoiceCallback, now: datetime, uow: UnitOfWork) -> dict[str, Any]:
    with uow as session:
        if (key := callback.voicekey_callback) is not None:
            number = e164(key.nationcode, key.mobile)
            attempt = _attempt(session, Channel.VOICE, key.callid, number, "keypress")
            if attempt is not None:
                receipts.voice_keypress(session, now, attempt_ref=str(attempt.id), digits=key.keypress,
                                        call_sid=_call_ref(key.callid, attempt.key, key.keypress), provider=PROVIDER)
        if (prompt := callback.voiceprompt_callback) is not None:
            number = e164(prompt.nationcode, prompt.mobile)
            attempt = _attempt(session, Channel.VOICE, prompt.callid, number, "call result")
            if attempt is not None:
                word, ours, error = {"0": ("completed", "delivered", None),
                                     "1": ("no-answer", "failed", "result 1: not answered"),
                                     "2": ("failed", "failed", "result 2: call failed")}[prompt.result]
                if _record(session, now, attempt, prompt.callid, word, ours, error, None) and ours == "failed":
                    uow.wake()  # the next step may have been brought forward
    return OK


@router.post(f"{PREFIX}/voice-status", dependencies=Checked, summary="Tencent call results (voiceprompt_callback)")
def voice_status(callback: VoiceCallback, clock: ClockDep, uow: UnitOfWorkDep) -> dict[str, Any]:
    return _voice(callback, clock(), uow)


@router.post(f"{PREFIX}/voice-keypress", dependencies=Checked, summary="Tencent keypresses (voicekey_callback)")
def voice_keypress(callback: VoiceCallback, clock: ClockDep, uow: UnitOfWorkDep) -> dict[str, Any]:
    return _voice(callback, clock(), uow)
