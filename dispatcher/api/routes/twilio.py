"""Twilio webhooks: message and call status, inbound SMS, the call's TwiML and its keypress.

Every request must carry a valid ``X-Twilio-Signature``, checked with the twilio package's
``RequestValidator`` against the auth token and the URL as the public sees it
(``JIAOYING_PUBLIC_URL`` + path + query, so it works behind proxies). Anything else — no token
configured, no signature, a forged one, one made for another URL or another body — is answered
403, logged, and changes nothing.

A signed request is then checked for what it holds (``checked_form``): a field holding NUL (no
Twilio value does; PostgreSQL cannot store or even compare it), or a sender or SID longer than its
column, is refused with 422 naming the field — the signature was fine, the content is not — and
nothing is stored. Values are refused, never stripped or cut: a changed SID or phone number would
match another attempt or person. An attempt ref in the query (``?attempt=``) that no attempt can
have (past the 32-bit ids, non-ASCII digits, NUL) is an unknown attempt, as any other unknown one.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from ...channels.twilio import VOICE_GATHER_PATH
from ...db.tables import AttemptRow, InboundRow
from ...intake.schema import text_problem
from ...services import receipts
from ...services.replies import IncomingReply
from ...services.spotchecks import CallTurn
from ..deps import ClockDep, SettingsDep, UnitOfWorkDep, kick
from ..replies import ReplyBatcher

router = APIRouter(tags=["webhooks"])
log = logging.getLogger("jiaoying.webhooks.twilio")

HELP_TEXT = "叫应系统：确认收到预警请回复“1”或“收到”，或回复短信中的4位确认码。"
THANKS_TEXT = "叫应系统：已确认收到，谢谢。"
VOICE_UNKNOWN = "这里是应急叫应系统。本次通知已失效，请查看短信或联系县应急值班室。"
VOICE_BYE = "未收到按键确认，请尽快回复短信确认。再见。"
VOICE_THANKS = "已确认，谢谢。再见。"
SPOTCHECK_THANKS_TEXT = "叫应系统：抽查答案已记录，谢谢。"
SPOTCHECK_PARTIAL_TEXT = "叫应系统：已记录，仍有问题未作答，请按顺序补充回复。"
VOICE_SPOTCHECK_THANKS = "答案已记录，谢谢。再见。"
VOICE_SPOTCHECK_BYE = "本题未作答。"
VOICE_LANG = "cmn-CN"


class Form(dict[str, list[str]]):
    """A form body as Twilio sent it (repeated names kept), readable by RequestValidator."""

    def getlist(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str, default: str = "") -> str:
        values = self.get(name)
        return values[0] if values else default


async def signed_form(request: Request, settings: SettingsDep) -> Form:
    """The request's form, once its signature is proven; 403 otherwise (never fails open)."""
    body = (await request.body()).decode("utf-8", "replace")
    form = Form()
    for name, value in parse_qsl(body, keep_blank_values=True):
        form.setdefault(name, []).append(value)
    url = settings.public_url.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    token = settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature", "")
    client = request.client.host if request.client else "?"
    if not token:
        log.warning("twilio webhook %s refused: no JIAOYING_TWILIO_AUTH_TOKEN configured (from %s)", url, client)
        raise HTTPException(403, "webhook refused: Twilio is not configured")
    if not signature:
        log.warning("twilio webhook %s refused: unsigned (from %s)", url, client)
        raise HTTPException(403, "webhook refused: X-Twilio-Signature is missing")
    if not RequestValidator(token).validate(url, form, signature):
        log.warning("twilio webhook %s refused: bad signature (from %s)", url, client)
        raise HTTPException(403, "webhook refused: the signature does not match")
    return form


# The longest value of a field that is stored or looked up (longer: refused). From is kept as the
# reply's sender; SIDs are Twilio's 34-character ids, kept in provider_id and provider refs;
# Digits (one keypress here) go into a keypress's provider ref.
_SID_LENGTH: int = AttemptRow.__table__.c.provider_id.type.length
FIELD_LENGTHS = {"From": InboundRow.__table__.c.sender.type.length, "MessageSid": _SID_LENGTH,
                 "SmsSid": _SID_LENGTH, "CallSid": _SID_LENGTH, "Digits": 32}


async def checked_form(form: Annotated[Form, Depends(signed_form)]) -> Form:
    """The signed form, once every value is one we can store: 422 naming the field otherwise.
    Async (it only reads a few short strings): a plain def would cost each webhook a trip through
    the thread pool, a quarter of the event loop's time under a burst of replies."""
    problems = []
    for name, values in form.items():
        for value in values:
            if problem := text_problem(value):
                problems.append({"type": "value_error", "loc": ("body", name), "msg": problem, "input": value})
            elif name in FIELD_LENGTHS and len(value) > FIELD_LENGTHS[name]:
                problems.append({"type": "value_error", "loc": ("body", name), "input": value,
                                 "msg": f"at most {FIELD_LENGTHS[name]} characters (got {len(value)})"})
    if problems:
        log.warning("twilio webhook refused: signed, but %s", "; ".join(
            f"{p['loc'][1]!r}: {p['msg']}" for p in problems))
        raise RequestValidationError(problems)
    return form


SignedForm = Annotated[Form, Depends(checked_form)]


def _twiml(document: object) -> Response:
    return Response(str(document), media_type="application/xml")


@router.post("/webhooks/twilio/status", summary="Message and call status callbacks")
def status_callback(form: SignedForm, request: Request, clock: ClockDep, uow: UnitOfWorkDep) -> Response:
    sid = form.first("MessageSid") or form.first("SmsSid") or form.first("CallSid")
    status = form.first("MessageStatus") or form.first("SmsStatus") or form.first("CallStatus")
    error = form.first("ErrorCode") or None
    with uow as session:
        known = receipts.record_status(session, clock(), sid, status, error,
                                       attempt_ref=request.query_params.get("attempt"))
        if known:
            uow.wake()  # a failed call may have brought the next step forward
    return _twiml(MessagingResponse())


@router.post("/webhooks/twilio/sms", summary="Inbound SMS: replies that acknowledge")
async def inbound_sms(form: SignedForm, request: Request) -> Response:
    # Taken together with the replies arriving meanwhile (one transaction per batch), answered once
    # its batch is committed: a burst of a thousand replies is a few transactions, not a thousand.
    batcher: ReplyBatcher = request.app.state.replies
    outcome = await batcher.take(IncomingReply(form.first("From"), form.first("Body"),
                                               form.first("MessageSid") or form.first("SmsSid")))
    reply = MessagingResponse()
    if outcome.spotcheck is not None:
        # A spot-check's answers are thanked; a reply that was not one is asked again by an SMS of the
        # queue (its template lists the questions), so nothing more is said here.
        if outcome.spotcheck == "answers":
            reply.message(SPOTCHECK_THANKS_TEXT if outcome.result is not None and outcome.result.acknowledged
                          else SPOTCHECK_PARTIAL_TEXT)
        elif outcome.spotcheck == "asked_again":
            kick(request)
    elif not outcome.confirms:
        reply.message(HELP_TEXT)
    elif outcome.result is not None and outcome.result.acknowledged:
        # No kick: an answer creates no work (its queued attempts are cancelled in the same batch,
        # and the hand-over guard re-checks a claimed one); waking the scheduler for each of a
        # thousand replies only made its passes compete with the replies for the database.
        reply.message(THANKS_TEXT)
    return _twiml(reply)


@router.post("/webhooks/twilio/voice", summary="The call's TwiML: the warning, twice, and press 1")
def voice(form: SignedForm, request: Request, settings: SettingsDep, uow: UnitOfWorkDep) -> Response:
    ref = request.query_params.get("attempt")
    with uow as session:
        script = receipts.voice_script(session, ref, ask_each=True)
    if script is not None and script.question is not None:  # a 六问 spot-check: one <Gather> a question
        return _twiml(_question_document(settings.public_url, ref, script.question, intro=script.text))
    return _twiml(_voice_document(settings.public_url, ref, script.text if script else None))


@router.post("/webhooks/twilio/voice/gather", summary="The call's keypress: 1 acknowledges")
def voice_gather(form: SignedForm, request: Request, settings: SettingsDep, clock: ClockDep,
                 uow: UnitOfWorkDep) -> Response:
    ref = request.query_params.get("attempt")
    question = _question_param(request)
    if question is not None:  # a key (or none, at the Gather's timeout) on a spot-check's question
        with uow as session:
            turn = receipts.spotcheck_key(session, clock(), ref, question,
                                          request.query_params.get("again") == "1", form.first("Digits"),
                                          form.first("CallSid"))
        if turn is None:
            return _twiml(_voice_document(settings.public_url, ref, None))
        return _twiml(_question_document(settings.public_url, ref, turn))
    with uow as session:
        result = receipts.voice_keypress(session, clock(), ref, form.first("Digits"), form.first("CallSid"))
        script = receipts.voice_script(session, ref) if result is not None and form.first("Digits") != "1" else None
    if result is None:
        return _twiml(_voice_document(settings.public_url, ref, None))
    if form.first("Digits") == "1":
        response = VoiceResponse()
        response.say(VOICE_THANKS, language=VOICE_LANG)
        response.hangup()
        return _twiml(response)
    return _twiml(_voice_document(settings.public_url, ref, script.text if script else None))


def _question_param(request: Request) -> int | None:
    """The spot-check question a Gather asked (0-based), from its action's signed query string."""
    value = request.query_params.get("q")
    if value is None:
        return None
    if not value.isdigit() or len(value) > 2:
        raise HTTPException(422, "q must be a question number")
    return int(value)


def _question_document(public_url: str, ref: str | None, turn: CallTurn,
                       intro: str = "") -> VoiceResponse:
    """A spot-check call: ``turn``'s question in a one-key Gather whose action says which question it
    is (and whether it is asked again); with every question answered, thanks and goodbye. No key
    before the timeout posts to the action too (actionOnEmptyResult): the question is asked once more."""
    response = VoiceResponse()
    if intro:
        response.say(intro, language=VOICE_LANG)
    if turn.question is None or ref is None:
        response.say(VOICE_SPOTCHECK_THANKS, language=VOICE_LANG)
        response.hangup()
        return response
    query = {"attempt": ref, "q": str(turn.question)} | ({"again": "1"} if turn.again else {})
    action = f"{public_url.rstrip('/')}{VOICE_GATHER_PATH}?{urlencode(query)}"
    gather = Gather(num_digits=1, action=action, method="POST", timeout=8, action_on_empty_result=True)
    gather.say(turn.text, language=VOICE_LANG)
    response.append(gather)
    response.say(VOICE_SPOTCHECK_BYE, language=VOICE_LANG)
    response.hangup()
    return response


def _voice_document(public_url: str, ref: str | None, text: str | None) -> VoiceResponse:
    response = VoiceResponse()
    if text is None or ref is None:
        response.say(VOICE_UNKNOWN, language=VOICE_LANG)
        response.hangup()
        return response
    action = f"{public_url.rstrip('/')}{VOICE_GATHER_PATH}?{urlencode({'attempt': ref})}"
    gather = Gather(num_digits=1, action=action, method="POST", timeout=8)
    gather.say(text, language=VOICE_LANG)
    gather.pause(length=1)
    gather.say(text, language=VOICE_LANG)  # said twice: the message is repeated once
    response.append(gather)
    response.say(VOICE_BYE, language=VOICE_LANG)
    response.hangup()
    return response
