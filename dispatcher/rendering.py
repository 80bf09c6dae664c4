"""Message texts from the Jinja2 templates in ``templates/<channel>/<purpose>.<lang>.j2``.

A template writes the text; a top-level ``{% set subject %}`` gives the subject (e-mail subject,
IM title). Chinese (``zh``) is the default and the fallback for a missing language file. Besides
the MessageContext fields, templates get ``title`` (暴雨红色预警), ``hazard_name``, ``level_name``,
``sent_text`` / ``sent_spoken`` (Beijing time), ``drill_prefix`` and the filters ``clip(n)``,
``places(n)``, ``squash`` (one paragraph) and ``speakable`` (no URLs).

``render_broadcast(lang, context)`` gives the rural broadcast's spoken text (read out by the
platform's TTS) from ``templates/broadcast/alert.<lang>.j2``, with the same environment, variables
and filters; that template extends ``templates/broadcast/_drill.<lang>.j2``, which wraps a drill's
text in its drill words (演练，演练。… 演练结束。). The recipient fields (``official``,
``ack_code``) are empty: a loudspeaker has no recipient. The text is one paragraph, with no URLs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound, pass_context
from jinja2.runtime import Context

from .config import project_root
from .domain.callouts import Purpose
from .domain.channels import Channel
from .domain.hazards import Hazard, Level

__all__ = ["BEIJING", "DEFAULT_LANG", "TEMPLATE_VARIABLES", "MessageContext", "Rendered", "render",
           "render_broadcast", "render_question", "sms_segments", "template_variables"]

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991
DEFAULT_LANG = "zh"


@dataclass(frozen=True)
class MessageContext:
    headline: str
    hazard: Hazard | None  # None: not a warning (a duty roll-call); its title is the headline
    level: Level
    areas: Sequence[str]
    description: str
    instruction: str
    sent: datetime  # naive values are taken as UTC
    official: str  # the recipient
    ack_code: str
    subject_official: str = ""  # whose call-out is unanswered (to_deputy … unreached); empty: official
    drill: bool = False
    link: str | None = None
    step: int = 0
    questions: Sequence[str] = ()  # a 六问 spot-check's questions, in order (else empty)
    ask_each: bool = False  # the call asks the questions one by one itself (Twilio): the text only introduces them
    # The call cannot take a key per question (Tencent reports one key): it reads the questions and
    # asks for the answers by SMS, which is sent with it (services/spotchecks.ONE_KEY_PROVIDERS).
    answer_by_sms: bool = False
    # A roll-call's call to a duty room's own phone (checks.yaml ``call: duty_phone``): the room it rings,
    # greeted instead of the person on shift, whoever picks up.
    room: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "areas", tuple(self.areas))
        object.__setattr__(self, "questions", tuple(self.questions))
        if not self.subject_official:
            object.__setattr__(self, "subject_official", self.official)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


@dataclass(frozen=True)
class _Lang:
    title: Callable[[Hazard, Level], str]
    hazard: Callable[[Hazard], str]
    level: Callable[[Level], str]
    when: Callable[[datetime], str]
    spoken_when: Callable[[datetime], str]
    space: str  # between joined lines
    ellipsis: str
    listed: Callable[[list[str], int], str]  # shown names, total count


_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LANGS: dict[str, _Lang] = {
    "zh": _Lang(
        title=lambda h, lv: f"{h.zh}{lv.zh}预警", hazard=lambda h: h.zh, level=lambda lv: lv.zh,
        when=lambda t: f"{t.month}月{t.day}日{t:%H:%M}",
        spoken_when=lambda t: f"{t.month}月{t.day}日{t.hour}时{t.minute:02d}分",
        space="", ellipsis="…",
        listed=lambda names, total: "、".join(names) + (f"等{total}地" if total > len(names) else ""),
    ),
    "en": _Lang(
        title=lambda h, lv: f"{lv.value.capitalize()} {h.value.replace('_', ' ')} warning",
        hazard=lambda h: h.value.replace("_", " "), level=lambda lv: lv.value,
        when=lambda t: f"{t.day} {_MONTHS_EN[t.month - 1]} {t:%H:%M}",
        spoken_when=lambda t: f"{t:%H:%M} on {t.day} {_MONTHS_EN[t.month - 1]}",
        space=" ", ellipsis="...",
        listed=lambda names, total: ", ".join(names) + (f" and {total - len(names)} more" if total > len(names)
                                                       else ""),
    ),
}
_NO_AREAS = {"zh": "相关区域", "en": "the affected areas"}
# A warning without an instruction (CAP's is optional) still tells the official what is asked of them:
# without it the templates read "落实：。" and "…预警。。".
_NO_INSTRUCTION = {"zh": "按预案落实防御措施", "en": "Take the measures your plan sets out"}


def _instruction(lang: str, text: str) -> str:
    return text if text.strip() else _NO_INSTRUCTION.get(lang, _NO_INSTRUCTION[DEFAULT_LANG])


def render(channel: Channel, purpose: Purpose, lang: str, context: MessageContext) -> Rendered:
    """The message for one recipient. A fan-out sends the same warning to thousands of people whose
    messages differ only in the name, the acknowledgement code and the link: the template is
    rendered once per warning content with placeholders, and each person's values put in — where
    that gives exactly what rendering for them would (checked on the first message of each kind,
    and only for plain values; anything else is rendered for the person)."""
    if not _plain(context):
        return _render(channel, purpose, lang, context)
    key = (channel, purpose, lang, context.headline, context.hazard, context.level, context.areas,
           context.description, context.instruction, context.sent, context.drill, context.step,
           context.link is None, context.questions, context.ask_each, context.answer_by_sms, context.room)
    shared = _SHARED.get(key)
    if shared is None:
        placeholders = replace(context, official=_HOLES["official"], subject_official=_HOLES["subject_official"],
                               ack_code=_HOLES["ack_code"], link=None if context.link is None else _HOLES["link"])
        shared = _render(channel, purpose, lang, placeholders)
        own = _render(channel, purpose, lang, context)
        if _fill(shared, context) != own:  # a template that transforms a personal value: never shared
            shared = _NOT_SHARED
        if len(_SHARED) >= 512:
            _SHARED.clear()
        _SHARED[key] = shared
        return own
    if shared is _NOT_SHARED:
        return _render(channel, purpose, lang, context)
    return _fill(shared, context)


def _render(channel: Channel, purpose: Purpose, lang: str, context: MessageContext) -> Rendered:
    template, lang = _template(f"{channel.value}/{purpose.value}", lang)
    module = template.make_module(_variables(lang, context))
    return Rendered(str(getattr(module, "subject", "")).strip(), str(module).strip())


def render_broadcast(lang: str, context: MessageContext) -> str:
    """The rural broadcast's spoken text for a warning (``templates/broadcast/alert.<lang>.j2``,
    falling back to Chinese). Not shared per recipient like ``render``: one text per warning."""
    template, lang = _template("broadcast/alert", lang)
    return str(template.make_module(_variables(lang, context))).strip()


_HOLES = {"official": "\x00official\x00", "subject_official": "\x00subject\x00", "ack_code": "\x00code\x00",
          "link": "\x00link\x00"}
_NOT_SHARED = Rendered("", "")
_SHARED: dict[tuple[Any, ...], Rendered] = {}


def _plain(context: MessageContext) -> bool:
    """Values the filters (squash, speakable, clip) would leave as they are."""
    return (_plain_value(context.official) and _plain_value(context.subject_official)
            and _plain_value(context.ack_code)
            and (context.link is None
                 or ("\x00" not in context.link and context.link == "".join(context.link.split()))))


def _plain_value(v: str) -> bool:
    # Letters and digits only (a Chinese name, a code) is plain at once; anything else is looked at.
    return v.isalnum() or (v == " ".join(v.split()) and "\x00" not in v and "://" not in v and "www." not in v.lower())


def _fill(shared: Rendered, context: MessageContext) -> Rendered:
    def put(text: str) -> str:
        text = text.replace(_HOLES["official"], context.official)
        text = text.replace(_HOLES["subject_official"], context.subject_official)
        text = text.replace(_HOLES["ack_code"], context.ack_code)
        return text.replace(_HOLES["link"], context.link) if context.link is not None else text

    return Rendered(put(shared.subject), put(shared.text))


def _template(stem: str, lang: str) -> tuple[Template, str]:
    env = _environment()
    if lang != DEFAULT_LANG:
        try:
            return env.get_template(f"{stem}.{lang}.j2"), lang
        except TemplateNotFound:
            pass
    return env.get_template(f"{stem}.{DEFAULT_LANG}.j2"), DEFAULT_LANG


def _variables(lang: str, ctx: MessageContext) -> dict[str, Any]:
    words = _LANGS.get(lang, _LANGS[DEFAULT_LANG])
    sent = (ctx.sent if ctx.sent.tzinfo else ctx.sent.replace(tzinfo=UTC)).astimezone(BEIJING)
    drill_prefix = _template("_drill", lang)[0].render().strip() + words.space if ctx.drill else ""
    return {
        "lang": lang, "headline": ctx.headline, "hazard": ctx.hazard, "level": ctx.level, "areas": list(ctx.areas),
        "description": ctx.description, "instruction": _instruction(lang, ctx.instruction), "sent": sent,
        "official": ctx.official,
        "subject_official": ctx.subject_official, "ack_code": ctx.ack_code, "drill": ctx.drill, "link": ctx.link,
        "step": ctx.step, "drill_prefix": drill_prefix, "ask_each": ctx.ask_each, "answer_by_sms": ctx.answer_by_sms,
        "questions": _numbered(ctx.questions), "question_count": str(len(ctx.questions)), "room": ctx.room,
        "answer_example": " ".join("1" * len(ctx.questions)),
        "title": words.title(ctx.hazard, ctx.level) if ctx.hazard else ctx.headline,
        "hazard_name": words.hazard(ctx.hazard) if ctx.hazard else "", "level_name": words.level(ctx.level),
        "sent_text": words.when(sent), "sent_spoken": words.spoken_when(sent),
    }


# The values a provider-approved template (Aliyun's ${name}, Tencent's {1}) can be given, as strings:
# the same words our own Jinja2 templates use, so an approved wording and ours say the same thing.
TEMPLATE_VARIABLES: dict[str, str] = {
    "official": "the recipient's name (王建国)",
    "subject_official": "whose call-out is unanswered (to_deputy … unreached; else the recipient)",
    "title": "the warning's title (暴雨红色预警)",
    "hazard_name": "the hazard (暴雨)",
    "level_name": "the level (红色)",
    "headline": "the warning's headline",
    "areas": "up to 4 affected places (龙潭镇、白云镇等5地)",
    "instruction": "what to do (按预案落实防御措施 when the warning gives none)",
    "sent_text": "when it was issued, Beijing time (7月16日03:10)",
    "sent_spoken": "the same, as spoken (7月16日3时10分)",
    "ack_code": "the 4-digit acknowledgement code",
    "link": "the signed confirm link (empty where the channel takes replies)",
    "drill_prefix": "【演练】 on a drill, else empty",
    "step": "the plan step (the round number)",
    "questions": "a spot-check's questions, numbered (1.是否收到预警？2.是否知晓危险区范围？…)",
    "question_count": "how many questions a spot-check asks (6)",
    "answer_example": "a spot-check's answers all 是, as an example reply (1 1 1 1 1 1)",
}


def template_variables(lang: str, ctx: MessageContext) -> dict[str, str]:
    """TEMPLATE_VARIABLES for one recipient, unshortened (each provider cuts to its own limits)."""
    return {"official": ctx.official, "subject_official": ctx.subject_official, "ack_code": ctx.ack_code,
            "link": ctx.link or "", "step": str(ctx.step),
            **_shared_variables(lang, ctx.headline, ctx.hazard, ctx.level, ctx.areas, ctx.instruction, ctx.sent,
                                ctx.drill, ctx.questions, ctx.ask_each)}


@lru_cache(maxsize=256)
def _shared_variables(lang: str, headline: str, hazard: Hazard | None, level: Level, areas: tuple[str, ...],
                      instruction: str, sent: datetime, drill: bool, questions: tuple[str, ...],
                      ask_each: bool) -> dict[str, str]:
    """The variables every recipient of one message gets alike: worked out once per warning, not per
    message of a fan-out (the caller copies them into its own dict)."""
    words = _LANGS.get(lang, _LANGS[DEFAULT_LANG])
    values = _variables(lang, MessageContext(headline, hazard, level, areas, "", instruction, sent, "", "",
                                             drill=drill, questions=questions, ask_each=ask_each))
    names = [a for a in areas if a]
    return {
        "title": values["title"], "hazard_name": values["hazard_name"], "level_name": values["level_name"],
        # without end punctuation, as our templates' clip() gives them (the template adds its own)
        "headline": " ".join(headline.split()).rstrip(_TRAILING),
        "areas": words.listed(names[:4], len(names)) if names else _NO_AREAS.get(lang, _NO_AREAS[DEFAULT_LANG]),
        "instruction": " ".join(_instruction(lang, instruction).split()).rstrip(_TRAILING),
        "sent_text": values["sent_text"], "sent_spoken": values["sent_spoken"],
        "drill_prefix": values["drill_prefix"].strip(),
        "questions": values["questions"], "question_count": values["question_count"],
        "answer_example": values["answer_example"],
    }


def _numbered(questions: Sequence[str]) -> str:
    return "".join(f"{i}.{q.rstrip('？?')}？" for i, q in enumerate(questions, 1))


def render_question(lang: str, index: int, question: str, again: bool = False) -> str:
    """One question of a 六问 spot-check as a call asks it (``templates/voice/spotcheck_question``):
    ``index`` counts from 1; ``again``: the key pressed was not an answer."""
    template, lang = _template("voice/spotcheck_question", lang)
    return _speakable(template.render(index=index, question=question, again=again))


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(project_root() / "templates"), undefined=StrictUndefined, autoescape=False,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
        auto_reload=False,  # templates are read once per process: no stat() per message in a fan-out
    )
    env.filters.update(clip=_clip, places=_places, squash=_squash, speakable=_speakable)
    return env


def _words(context: Context) -> _Lang:
    return _LANGS.get(context.get("lang", DEFAULT_LANG), _LANGS[DEFAULT_LANG])


_TRAILING = " \t\n。．.，,；;：:、！!？?"


@pass_context
def _clip(context: Context, text: str, limit: int) -> str:
    """At most ``limit`` characters, without end punctuation (the template adds its own)."""
    text = " ".join(str(text).split()).rstrip(_TRAILING)
    if len(text) <= limit:
        return text
    ellipsis = _words(context).ellipsis
    return text[:limit - len(ellipsis)].rstrip(_TRAILING) + ellipsis


@pass_context
def _places(context: Context, areas: Sequence[str], limit: int) -> str:
    names = [a for a in areas if a]
    if not names:
        return _NO_AREAS.get(context.get("lang", DEFAULT_LANG), _NO_AREAS[DEFAULT_LANG])
    return _words(context).listed(names[:limit], len(names))


@pass_context
def _squash(context: Context, text: str) -> str:
    """One paragraph: the template's lines joined (without spaces in Chinese)."""
    return _words(context).space.join(line.strip() for line in str(text).splitlines() if line.strip())


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)


def _speakable(text: str) -> str:
    return " ".join(_URL.sub("", str(text)).split())


# GSM 03.38: the basic set costs one septet, the extension set two (escape + char).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


def sms_segments(text: str) -> int:
    """How many SMS parts a carrier bills for ``text`` (an empty message still costs one)."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units = len(text) + sum(c in _GSM_EXTENDED for c in text)
        single, part = 160, 153
    else:  # UCS-2: characters outside the BMP take a surrogate pair
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
        single, part = 70, 67
    return 1 if units <= single else -(-units // part)
