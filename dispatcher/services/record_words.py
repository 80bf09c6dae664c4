"""The record in words: what a duty officer reads at 3 a.m. instead of the record's raw data.

Each record event (``dispatcher.domain.record.EventKind``) becomes one sentence, in Chinese or
English, with people's names instead of ids and the site's local time (``Site.tz``):

    21:17:27  第1步：短信、即时通讯发出 34 人
    21:25:02  李卫东（AB岗）短信回复"收到"，代邵林峰确认，用时 7:35

An event about many people (a step to 500 officials) is one sentence with a count; the names
come with it (``Said.people``) for the page to fold away. Actors are named in words too
(``engine`` → 系统, ``worker`` → 发送进程, ``user:liu`` → liu, an agency's key → the agency).

``document`` builds the printable 一事一档 from the same words: the warning, its plans, the
counts against the 3/5/30-minute bars, one line per official with each call (叫) and the answer
(应), the unreached and what followed, the broadcast's receipts and the record itself.

Pure: no HTTP, no database. The raw data stays where it was (the JSON export, the API).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..domain.callouts import CalloutState
from ..domain.hazards import Hazard, Level
from ..domain.record import EventKind
from ..domain.roster import mask_phone
from ..domain.rules import DEFAULT_FALLBACK
from ..domain.site import Site
from ..domain.zones import ZoneKind
from ..privacy import looks_like_phone

# Names listed in the sentence itself up to this many; more are counted, and listed folded.
INLINE = 6

# The 叫应 time bars the printed record measures against (docs/board.md): every official's first
# message handed to a provider within 3 minutes of the start, acknowledged within 5 (the board's
# "overdue" mark, board/views.py OVERDUE_AFTER), and within 30 (the last of the board's windows).
REACH_BAR = timedelta(minutes=3)
ACK_BAR = timedelta(minutes=5)
LATE_BAR = timedelta(minutes=30)

_REACHED = ("sent", "delivered")


# -- what is said ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """One record event in words."""

    seq: int
    kind: str
    at: datetime  # in the site's time zone
    date: str  # 2026-07-16
    time: str  # 21:17:27
    actor: str  # who, in words
    text: str  # the sentence
    people: tuple[str, ...] = ()  # the names behind a count in the sentence (shown folded)
    tone: str = ""  # "ack" | "alarm" | "minor" | ""


@dataclass(frozen=True)
class Frozen:
    """A call-out as the record's sentences need it: whose it is and its frozen steps (the
    ``steps`` column: index, channels, to, recipients, final)."""

    person: str
    steps: Sequence[Mapping[str, Any]] = ()


@dataclass
class _Words:
    text: str
    people: tuple[str, ...] = ()
    tone: str = ""


class _Ctx:
    """What the sentences look things up in: the site, the language, and what the whole record
    tells about each call-out (whose it is, its steps, the SMS that answered it)."""

    def __init__(self, events: Sequence[Mapping[str, Any]], site: Site, lang: str, show_phones: bool,
                 callouts: Mapping[int, Frozen] | None) -> None:
        self.site, self.lang, self.show_phones = site, lang, show_phones
        self.callouts: dict[int, Frozen] = dict(callouts or {})
        self.owner: dict[int, str] = {k: v.person for k, v in self.callouts.items()}
        self.sms_body: dict[int, str] = {}
        self.attempts: dict[tuple[int, int], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.duty: set[str] = set()
        # a 六问 spot-check's record: its unanswered are listed for follow-up, not "unreached"
        self.spotcheck = any(ev["kind"] == EventKind.SPOTCHECK_STARTED for ev in events[:1])
        for ev in events:
            data = ev["data"] if isinstance(ev.get("data"), Mapping) else {}
            for entry in _entries(data):
                if isinstance(entry.get("callout"), int) and isinstance(entry.get("person"), str):
                    self.owner.setdefault(entry["callout"], entry["person"])
            if ev["kind"] == EventKind.MATCHED:
                self.duty.update(p for p in data.get("duty") or () if isinstance(p, str))
            elif ev["kind"] == EventKind.INBOUND_SMS and isinstance(data.get("body"), str):
                for callout in data.get("callouts") or ():
                    if isinstance(callout, int):
                        self.sms_body.setdefault(callout, data["body"])
            elif ev["kind"] == EventKind.ATTEMPTS:
                for a in data.get("attempts") or ():
                    parsed = _key(a.get("key"))
                    if parsed:
                        callout, step, channel, _ = parsed
                        self.attempts[(callout, step)]["channels"].add(channel)
                        self.attempts[(callout, step)]["purposes"].add(str(a.get("purpose") or ""))

    def w(self, zh: str, en: str) -> str:
        return zh if self.lang == "zh" else en

    def subject(self, words: str) -> str:
        """Who, at the head of a Chinese sentence: a login (liu) is set off by a space."""
        return f"{words} " if self.lang == "zh" and words[-1:].isascii() and words[-1:].isalnum() else words

    @property
    def sep(self) -> str:  # between names
        return "、" if self.lang == "zh" else ", "

    def name(self, person_id: Any) -> str:
        if not isinstance(person_id, str):
            return str(person_id)
        person = self.site.people.get(person_id)
        return person.name if person else person_id

    def names(self, ids: Iterable[Any]) -> list[str]:
        return list(dict.fromkeys(self.name(p) for p in ids))

    def phone(self, number: Any) -> str:
        text = str(number or "")
        return text if self.show_phones else mask_phone(text)

    def official_of(self, callout: Any) -> str | None:
        return self.owner.get(callout) if isinstance(callout, int) else None

    def channel(self, value: Any) -> str:
        return _CHANNEL.get(str(value), (str(value), str(value)))[0 if self.lang == "zh" else 1]

    def channels(self, values: Iterable[Any]) -> str:
        return self.sep.join(self.channel(c) for c in dict.fromkeys(values))

    def area(self, code: Any) -> str:
        return self.site.areas.name(str(code))

    def clock(self, value: Any) -> str:
        at = _utc(value)
        return at.astimezone(self.site.tz).strftime("%H:%M:%S") if at else ""

    def stamp(self, value: Any) -> str:
        at = _utc(value)
        return at.astimezone(self.site.tz).strftime("%Y-%m-%d %H:%M") if at else ""

    def who(self, names: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        """``34 人`` (and the names, to fold) or ``2 人（周村长、郑防汛员）``."""
        count = f"{len(names)} 人" if self.lang == "zh" else f"{len(names)} {'person' if len(names) == 1 else 'people'}"
        if len(names) <= INLINE:
            return f"{count}{self.w('（', ' (')}{self.sep.join(names)}{self.w('）', ')')}", ()
        return count, tuple(names)

    def relation(self, actor: str, official: str | None, callout: Any = None) -> str:
        """How ``actor`` stands to the official: AB岗, 上级, 值班人员 — or "" (nobody we know of)."""
        if official is None or actor == official:
            return ""
        person = self.site.people.get(official)
        if person is not None and actor == person.deputy:
            return self.w("AB岗", "deputy")
        if person is not None and actor == person.superior:
            return self.w("上级", "superior")
        frozen = self.callouts.get(callout) if isinstance(callout, int) else None
        for step in frozen.steps if frozen else ():
            if actor in (step.get("recipients") or ()) and not step.get("final"):
                to = [t for t in step.get("to") or () if t != "self"]
                if to:
                    return self.recipient(to[0])
        if actor in self.duty:
            return self.w("值班人员", "duty officer")
        return ""

    def recipient(self, to: str) -> str:
        return _RECIPIENT.get(to, (to, to))[0 if self.lang == "zh" else 1]


_CHANNEL = {"sms": ("短信", "SMS"), "voice": ("语音电话", "voice call"), "im": ("即时通讯", "IM"),
            "email": ("电子邮件", "e-mail"), "broadcast": ("应急广播", "broadcast")}
_RECIPIENT = {"self": ("本人", "the official"), "deputy": ("AB岗", "deputy"), "superior": ("上级", "superior"),
              "duty": ("值班人员", "duty officers"), "town_duty": ("乡镇值班人员", "town duty room")}
_PURPOSE_TO = {"alert": "self", "reminder": "self", "to_deputy": "deputy", "to_superior": "superior",
               "to_duty": "duty", "unreached": "unreached", "update": "self", "cancel": "self",
               "rollcall": "self", "rollcall_missed": "duty", "spotcheck": "self", "spotcheck_again": "self"}
_SYSTEM = {"engine": ("系统", "system"), "rules": ("系统（预案匹配）", "system (plan matching)"),
           "worker": ("发送进程", "sender process"), "local": ("本机命令行", "local command line"),
           "broadcast": ("应急广播平台", "broadcast platform"), "anonymous": ("匿名", "anonymous")}
_PROVIDERS = {"twilio": ("Twilio", "Twilio"), "aliyun": ("阿里云", "Aliyun"), "tencent": ("腾讯云", "Tencent Cloud"),
              "simulator": ("模拟器", "simulator")}
_ATTEMPT = {"queued": ("排队", "queued"), "sending": ("发送中", "sending"), "sent": ("已发出", "sent"),
            "delivered": ("已送达", "delivered"), "failed": ("失败", "failed"), "cancelled": ("已撤销", "withdrawn"),
            "retrying": ("稍后重试", "retrying")}
_PROVIDER_STATUS = {"delivered": ("已送达", "delivered"), "read": ("已读", "read"),
                    "undelivered": ("未送达", "undelivered"), "failed": ("失败", "failed"),
                    "sent": ("已发出", "sent"), "no-answer": ("无人接听", "no answer"),
                    "busy": ("占线", "busy"), "canceled": ("未接通", "not connected"),
                    "completed": ("已接听", "answered"), "answered": ("已接听", "answered"),
                    "in-progress": ("通话中", "in progress"), "ringing": ("振铃", "ringing"),
                    "initiated": ("已拨出", "dialled"), "queued": ("排队", "queued"),
                    "accepted": ("已受理", "accepted")}
_VIA = {"sms": ("短信回复", "replied by SMS"), "voice": ("电话按键", "pressed a key on the call"),
        "link": ("点击确认链接", "used the confirm link"), "manual": ("人工代确认", "acknowledged on behalf")}
_STATE = {s.value: (s.zh, s.value) for s in CalloutState} | {"unreached": ("未叫醒", "unreached")}
_BROADCAST = {"pending": ("待发送", "pending"), "sent": ("已下发", "handed over"), "failed": ("下发失败", "failed"),
              "playing": ("正在播发", "playing"), "completed": ("播发完成", "played"), "none": ("未回执", "no receipt")}
_LEVEL_EN = {"red": "red", "orange": "orange", "yellow": "yellow", "blue": "blue"}
_WORKER_NAME = re.compile(r"^[\w.-]+:\d+$")


def _pick(table: Mapping[str, tuple[str, str]], key: Any, lang: str) -> str:
    pair = table.get(str(key))
    return (pair[0] if lang == "zh" else pair[1]) if pair else str(key)


def _entries(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The per-call-out entries an event's data holds (steps, callouts, calls) — or the data itself."""
    for name in ("steps", "callouts", "calls"):
        value = data.get(name)
        if isinstance(value, list):
            return [e for e in value if isinstance(e, Mapping)]
    return [data]


def _key(key: Any) -> tuple[int, int, str, str] | None:
    """An attempt key ``<callout>:<step>:<channel>:<recipient>[#n]`` → its parts (None for others:
    notices, re-calls)."""
    if not isinstance(key, str):
        return None
    parts = key.split("#", 1)[0].split(":")
    if len(parts) != 4 or not parts[0].isdigit():
        return None
    try:
        return int(parts[0]), int(parts[1]), parts[2], parts[3]
    except ValueError:
        return None


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _event(ev: Any) -> dict[str, Any]:
    """An event row (a mapping as the record's reader gives it, or an object with attributes)."""
    if isinstance(ev, Mapping):
        return {"seq": ev.get("seq"), "at": ev.get("at"), "actor": ev.get("actor") or "", "kind": ev.get("kind"),
                "data": ev.get("data") or {}}
    return {"seq": ev.seq, "at": ev.at, "actor": ev.actor or "", "kind": ev.kind, "data": ev.data or {}}


# -- actors ---------------------------------------------------------------------------------------


def actor_words(actor: str, site: Site, lang: str = "zh", *, show_phones: bool = True, kind: str = "") -> str:
    """Who did it, in words: 系统, 发送进程, 阿里云, liu (a board user), the agency, a person's name."""
    w = 0 if lang == "zh" else 1
    if actor in _SYSTEM:
        return _SYSTEM[actor][w]
    if actor in _PROVIDERS:
        return _PROVIDERS[actor][w]
    if actor.startswith("user:"):
        return actor[5:]
    if actor.startswith("agency:"):
        return actor.split()[0][7:] or actor
    person = site.people.get(actor)
    if person is not None:
        return person.name
    if looks_like_phone(actor):  # an SMS reply's sender: whoever has the number, and the number
        number = actor.strip() if show_phones else mask_phone(actor.strip())
        names = [site.people[p].name for p in site.people_with_phone(actor.strip()) if p in site.people]
        if names:
            joined = ("、" if w == 0 else ", ").join(names)
            return f"{joined}（{number}）" if w == 0 else f"{joined} ({number})"
        return number
    if _WORKER_NAME.match(actor) or kind in (EventKind.NEXT_NUMBER, EventKind.SENT_AFTER_LEASE_LOST):
        return f"{_SYSTEM['worker'][w]}{'（' if w == 0 else ' ('}{actor}{'）' if w == 0 else ')'}"
    return actor


def _actor_id(actor: str, site: Site) -> str:
    """The person an actor is (an SMS sender's number → whoever has it), else the actor itself."""
    if looks_like_phone(actor):
        found = site.people_with_phone(actor.strip())
        if found:
            return found[0]
    return actor


# -- one sentence per kind --------------------------------------------------------------------------

Sentence = Callable[[Mapping[str, Any], _Ctx, Mapping[str, Any]], _Words]
SENTENCES: dict[str, Sentence] = {}


def _says(kind: EventKind) -> Callable[[Sentence], Sentence]:
    def register(fn: Sentence) -> Sentence:
        SENTENCES[kind.value] = fn
        return fn
    return register


def _warning_words(data: Mapping[str, Any], c: _Ctx) -> str:
    try:
        hazard = Hazard(data.get("hazard"))
        level = Level(data.get("level"))
        what = (f"{hazard.zh}{level.zh}预警" if c.lang == "zh"
                else f"{hazard.value.replace('_', ' ')} {_LEVEL_EN[level.value]} warning")
    except ValueError:
        what = c.w("预警", "warning")
    return what


@_says(EventKind.RECEIVED)
def _received(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    kind = data.get("msg_type")
    verbs = {"update": c.w("收到预警更新", "Update received"),
             "cancel": c.w("收到解除通知", "Cancellation received")}
    verb = verbs.get(str(kind), c.w("收到预警", "Warning received"))
    where = c.sep.join(c.area(a) for a in data.get("areas") or ())
    zones = [c.site.zones[z].name if z in c.site.zones else str(z) for z in data.get("zones") or ()]
    if zones:
        where += c.w("；危险区：", "; zones: ") + c.sep.join(zones)
    sender = str(data.get("sender") or "")
    if data.get("via"):  # forwarded to us by another Jiaoying (services/forwarding.py)
        chain = " → ".join(map(str, data["via"]))
        sender += c.w(f"（经 {chain} 转发）", f" (forwarded via {chain})")
    drill = c.w("【演练】", "[DRILL] ") if data.get("drill") else ""
    text = (f"{drill}{verb}：{sender}发布{_warning_words(data, c)}（{where}）：{data.get('headline') or ''}"
            if c.lang == "zh" else
            f"{drill}{verb}: {sender} issued a {_warning_words(data, c)} ({where}): {data.get('headline') or ''}")
    return _Words(text)


@_says(EventKind.ROLLCALL_STARTED)
def _rollcall_started(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    actor = str(ev.get("actor") or "")
    minutes = f"{float(data.get('answer_within') or 0) / 60:g}"
    channels = c.channels(data.get("channels") or ())
    if actor == "schedule":
        who = c.w("按计划", "As scheduled, ")
    else:
        by = actor_words(actor, c.site, c.lang)
        who = c.w(f"{c.subject(by)}发起", f"{by} started ")
    return _Words(c.w(f"{who}{data.get('headline') or data.get('name') or ''}：各值班室在班人员须在 {minutes} 分钟内"
                      f"应答（{channels}）",
                      f"{who}the duty roll-call {data.get('rollcall') or ''}: everyone on shift in each duty room "
                      f"answers within {minutes} min ({channels})"))


_DRILL_KIND = {"blind": ("双盲演练", "blind drill"), "announced": ("公开演练", "announced drill")}
_DRILL_ENDING = {"settled": ("全部叫应已结束", "every call-out settled"),
                 "ended": ("管理员结束演练", "ended by an admin"), "expired": ("演练时限已到", "its time ran out"),
                 "cancelled": ("演练预警已取消", "its warning was cancelled")}


def _drill_without(data: Mapping[str, Any], c: _Ctx) -> str:
    names = [str(n) for n in data.get("without") or ()]
    if not names:
        return ""
    shown = c.sep.join(c.channel(n) if n in ("sms", "voice", "im", "email") else
                       _PROVIDERS.get(n, (n, n))[0 if c.lang == "zh" else 1] for n in names)
    return c.w(f"；断开：{shown}（这些通道不发送，检验备用路径）", f"; taken out: {shown} (nothing sent on them: the "
                                                         "fallback path is tested)")


@_says(EventKind.DRILL_STARTED)
def _drill_started(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    zh, en = _DRILL_KIND.get(str(data.get("kind")), ("演练", "drill"))
    by = actor_words(str(data.get("by") or ev.get("actor") or ""), c.site, c.lang)
    broadcast = c.w("；下发农村应急广播" if data.get("broadcast") else "；不下发农村应急广播",
                    "; with the rural broadcast" if data.get("broadcast") else "; without the rural broadcast")
    minutes = f"{float(data.get('length') or 0) / 60:g}"
    return _Words(c.w(f"{zh}开始（{c.subject(by)}安排，编号 {data.get('drill') or ''}，时限 {minutes} 分钟）"
                      f"{broadcast}{_drill_without(data, c)}",
                      f"The {en} started (arranged by {by}, {data.get('drill') or ''}, at most {minutes} min)"
                      f"{broadcast}{_drill_without(data, c)}"), tone="drill")


@_says(EventKind.DRILL_ENDED)
def _drill_ended(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    zh, en = _DRILL_ENDING.get(str(data.get("ending")), ("演练结束", "ended"))
    reveal = c.w("，双盲演练揭晓：此事件为演练", "; the blind drill is revealed: this was a drill") \
        if data.get("kind") == "blind" else ""
    counts = c.w(f"叫应 {data.get('called', 0)} 人，已通知 {data.get('reached', 0)} 人，已确认 "
                 f"{data.get('acknowledged', 0)} 人，未叫醒 {data.get('unreached', 0)} 人",
                 f"{data.get('called', 0)} called, {data.get('reached', 0)} reached, "
                 f"{data.get('acknowledged', 0)} acknowledged, {data.get('unreached', 0)} unreached")
    return _Words(c.w(f"演练结束（{zh}）{reveal}：{counts}", f"Drill over ({en}){reveal}: {counts}"), tone="drill")


def _plan_name(plan_id: str, site: Site, lang: str = "zh") -> str:
    """A plan's name (the site's own words, in Chinese); in English its id."""
    if plan_id.startswith("rollcall:"):  # a duty roll-call's (checks.yaml)
        rollcall = next((r for r in site.rollcalls if r.id == plan_id.partition(":")[2]), None)
        return rollcall.name if rollcall and lang == "zh" else plan_id
    if plan_id.startswith("spotcheck:"):  # a 六问 spot-check's (checks.yaml)
        spotcheck = next((s for s in site.spotchecks if s.id == plan_id.partition(":")[2]), None)
        return spotcheck.name if spotcheck and lang == "zh" else plan_id
    if lang != "zh":
        return plan_id
    for plan in (*site.plans, *(p for p in (site.fallback, DEFAULT_FALLBACK) if p is not None)):
        if plan.id == plan_id:
            return plan.name
    return plan_id


@_says(EventKind.MATCHED)
def _matched(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    plans = c.sep.join(_plan_name(str(p), c.site, c.lang) for p in data.get("plans") or ()) or c.w("无", "none")
    officials = data.get("officials", 0)
    duty = c.sep.join(c.names(data.get("duty") or ())) or c.w("无", "none")
    text = c.w(f"匹配叫应方案：{plans}；叫应 {officials} 名责任人；值班：{duty}",
               f"Plans matched: {plans}; {officials} officials to call; on duty: {duty}")
    if data.get("fallback"):
        why = str(data["fallback"])  # "无匹配方案，已通知值班领导 (no plan for heat × red)"
        zh, _, en = why.partition(" (")
        text += c.w(f"。{zh}", f". Fallback: {en.rstrip(')') or why}")
    gaps = [str(g) for g in data.get("gaps") or ()]
    if gaps:  # listed by `jiaoying preview` and validate; counted here
        text += c.w(f"；准备缺口 {len(gaps)} 处", f"; {len(gaps)} readiness gap(s)")
    return _Words(text)


@_says(EventKind.APPLIED)
def _applied(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    msg_type = data.get("msg_type")
    parts: list[str] = []
    if msg_type == "cancel":
        closed = data.get("cancelled", 0)
        parts.append(c.w(f"执行解除：关闭 {closed} 条叫应", f"Cancellation carried out: {closed} call-outs closed"))
    else:
        parts.append(c.w(f"开始叫应 {data.get('started', 0)} 人", f"Call-outs started for {data.get('started', 0)} "
                                                                  f"officials"))
    superseded = data.get("superseded") or []
    if superseded:
        parts.append(c.w(f"接替较低级别预警的 {len(superseded)} 条叫应",
                         f"took over {len(superseded)} call-outs of a lower warning"))
    muted = data.get("muted") or []
    if muted:
        parts.append(c.w(f"{len(muted)} 人已在更高级别预警中叫应，本次不再叫",
                         f"{len(muted)} already called for a higher warning are not called again"))
    if data.get("notices"):
        parts.append(c.w(f"向已通知的人发出 {data['notices']} 条{'解除' if msg_type == 'cancel' else '更新'}通知",
                         f"{data['notices']} notice(s) of the {'cancellation' if msg_type == 'cancel' else 'update'} "
                         f"to those already reached"))
    if data.get("stopped"):
        parts.append(c.w("启动中预警已被更新或取消，其余未再启动",
                         "the warning was updated or cancelled while starting"))
    return _Words(c.w("，", ", ").join(parts))


@_says(EventKind.UPDATED)
def _updated(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    ended = c.sep.join(str(w) for w in data.get("warnings") or ())
    return _Words(c.w(f"预警更新：新消息 {data.get('by')} 取代 {ended}",
                      f"Warning updated: message {data.get('by')} replaces {ended}"))


@_says(EventKind.CANCELLED)
def _cancelled(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    if "callouts_cancelled" in data:
        return _Words(c.w(f"取消整个预警事件：关闭 {data.get('callouts_cancelled', 0)} 条叫应，"
                          f"向已通知的人发出 {data.get('notices', 0)} 条解除通知",
                          f"The whole warning event cancelled: {data.get('callouts_cancelled', 0)} call-outs "
                          f"closed, {data.get('notices', 0)} cancellation notice(s) sent"), tone="alarm")
    ended = c.sep.join(str(w) for w in data.get("warnings") or ())
    return _Words(c.w(f"预警解除：{data.get('by')} 解除 {ended}",
                      f"Warning cancelled: {data.get('by')} ends {ended}"), tone="alarm")


@_says(EventKind.APPLY_FAILED)
def _apply_failed(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    return _Words(c.w(f"系统未能处理预警 {data.get('warning')}（1 分钟后重试，其他预警照常）：{data.get('error')}",
                      f"The engine could not apply {data.get('warning')} (trying again in a minute; other "
                      f"warnings carry on): {data.get('error')}"), tone="alarm")


@_says(EventKind.STEP_FAILED)
def _step_failed(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    entries = _entries(data)
    names = c.names(e.get("person") for e in entries)
    who, people = c.who(names)
    errors = c.sep.join(dict.fromkeys(str(e.get("error")) for e in entries))
    return _Words(c.w(f"叫应步骤未能执行（1 分钟后重试）：{who}：{errors}",
                      f"A step could not be run (trying again in a minute): {who}: {errors}"), people, "alarm")


def _in_order(channels: Iterable[str]) -> tuple[str, ...]:
    order = list(_CHANNEL)
    return tuple(sorted(channels, key=lambda ch: (order.index(ch) if ch in order else len(order), ch)))


def _step_of(entry: Mapping[str, Any], c: _Ctx) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """A step entry's channels, to whom (self, deputy, …) and recipients: from the call-out's frozen
    steps, else from the attempts the record shows for it."""
    callout, index = entry.get("callout"), entry.get("step")
    frozen = c.callouts.get(callout) if isinstance(callout, int) else None
    for step in frozen.steps if frozen else ():
        if step.get("index") == index:
            to = [t for t in step.get("to") or ()]
            return (tuple(step.get("channels") or ()), "self" if not to or to == ["self"] else
                    next(t for t in to if t != "self"), tuple(step.get("recipients") or ()))
    seen = c.attempts.get((callout, index)) if isinstance(callout, int) and isinstance(index, int) else None
    if seen:
        purposes = [_PURPOSE_TO.get(p, "self") for p in seen["purposes"]]
        return _in_order(seen["channels"]), (purposes[0] if purposes else "self"), ()
    return (), "self", ()


@_says(EventKind.STEPS)
def _steps(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    groups: dict[tuple[int, tuple[str, ...], str], list[Mapping[str, Any]]] = defaultdict(list)
    for entry in _entries(data):
        channels, to, _ = _step_of(entry, c)
        groups[(int(entry.get("step") or 0), channels, to)].append(entry)
    clauses: list[str] = []
    people: list[str] = []
    for (index, channels, to), entries in sorted(groups.items(), key=lambda g: g[0][0]):
        how = c.channels(channels) if channels else c.w("消息", "messages")
        if to == "self":
            names = c.names(e.get("person") for e in entries)
            who, folded = c.who(names)
            clauses.append(c.w(f"第{index + 1}步：{how}发出 {who}", f"Step {index + 1}: {how} to {who}"))
        elif all(_step_of(e, c)[2] == (e.get("person"),) for e in entries):
            # a roll-call's call to the duty room's own phone, for the person on shift there
            who, folded = c.who(c.names(e.get("person") for e in entries))
            clauses.append(c.w(f"第{index + 1}步：{how}拨打值班室值班电话，找 {who}",
                               f"Step {index + 1}: {how} to the duty rooms' phones for {who}"))
        else:
            pairs = []
            for e in entries:
                recipients = _step_of(e, c)[2]
                official = c.name(e.get("person"))
                if recipients:
                    pairs.append(f"{official}→{c.sep.join(c.names(recipients))}")
                else:
                    pairs.append(f"{official}→{c.w('（无）', '(nobody)')}")
            folded = tuple(pairs) if len(pairs) > INLINE else ()
            listed = "" if folded else c.w("：", ": ") + c.sep.join(pairs)
            clauses.append(c.w(f"第{index + 1}步：{len(entries)} 人未确认，{how}通知{c.recipient(to)}{listed}",
                               f"Step {index + 1}: {len(entries)} not acknowledged; {how} to the "
                               f"{c.recipient(to)}{listed}"))
        people += folded
        unreachable = c.names(p for e in entries for p in e.get("unreachable") or ())
        if unreachable:
            clauses.append(c.w(f"{c.sep.join(unreachable)}在这些渠道上没有联系方式",
                               f"{c.sep.join(unreachable)}: no address on these channels"))
    return _Words(c.w("；", "; ").join(clauses), tuple(people))


@_says(EventKind.ATTEMPTS)
def _attempts(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    attempts = [a for a in data.get("attempts") or () if isinstance(a, Mapping)]
    by_status: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for a in attempts:
        by_status[str(a.get("status"))].append(a)
    parts: list[str] = []
    went = by_status.get("sent", []) + by_status.get("delivered", [])
    if went:
        per_channel: dict[str, int] = defaultdict(int)
        for a in went:
            per_channel[str(a.get("channel"))] += 1
        detail = c.sep.join(f"{c.channel(ch)} {n}" for ch, n in per_channel.items())
        parts.append(c.w(f"已交服务商发出 {len(went)} 条（{detail}）",
                         f"{len(went)} handed to the providers ({detail})"))
    failed = by_status.get("failed", [])
    if failed:
        detail = c.sep.join(f"{c.name(a.get('to'))} {c.channel(a.get('channel'))}"
                            + (f"{c.w('（', ' (')}{a.get('error')}{c.w('）', ')')}" if a.get("error") else "")
                            for a in failed[:INLINE])
        more = c.w(f" 等 {len(failed)} 条", f" and more ({len(failed)})") if len(failed) > INLINE else ""
        parts.append(c.w(f"失败：{detail}{more}", f"failed: {detail}{more}"))
    retrying = by_status.get("retrying", []) + by_status.get("queued", [])
    if retrying:
        parts.append(c.w(f"{len(retrying)} 条稍后重试", f"{len(retrying)} to be tried again"))
    withdrawn = by_status.get("cancelled", [])
    if withdrawn:
        parts.append(c.w(f"{len(withdrawn)} 条因已确认或已取消而未发", f"{len(withdrawn)} not sent: answered or "
                                                                    f"cancelled meanwhile"))
    if not parts:
        parts.append(c.w(f"{len(attempts)} 条消息", f"{len(attempts)} messages"))
    names = c.names(a.get("to") for a in attempts)
    return _Words(c.w("；", "; ").join(parts), tuple(names) if len(names) > INLINE else (),
                  "alarm" if failed else "minor")


@_says(EventKind.UNREACHED)
def _unreached(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    entries = _entries(data)
    names = c.names(e.get("person") for e in entries)
    who, people = c.who(names)
    sent_to = ""
    if entries:
        frozen = c.callouts.get(entries[0].get("callout"))
        final = next((s for s in frozen.steps if s.get("final")), None) if frozen else None
        if final is not None:
            words = c.sep.join(c.recipient(t) for t in final.get("to") or ())
            sent_to = c.w(f"，名单已以{c.channels(final.get('channels') or ())}通报{words}",
                          f"; the list goes by {c.channels(final.get('channels') or ())} to the {words}")
    if c.spotcheck:
        return _Words(c.w(f"作答时限已到：{who}未答全，列入跟进名单",
                          f"Time to answer is up: {who} did not answer every question; listed for follow-up"),
                      people, "alarm")
    return _Words(c.w(f"未叫醒：{who}经各步叫应仍未确认{sent_to}，请组织上门或电话核实",
                      f"Unreached: {who} did not acknowledge after every step{sent_to}; "
                      f"arrange a visit or a call to check"), people, "alarm")


@_says(EventKind.STEP_BROUGHT_FORWARD)
def _brought_forward(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    parsed = _key(data.get("failed"))
    how = c.channel(parsed[2]) if parsed else c.w("消息", "message")
    step = data.get("next_step")
    n = step + 1 if isinstance(step, int) else "?"
    return _Words(c.w(f"发给{c.name(data.get('person'))}的{how}未送达，提前执行第{n}步",
                      f"The {how} to {c.name(data.get('person'))} failed: step {n} runs now"), tone="alarm")


@_says(EventKind.NEXT_NUMBER)
def _next_number(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    clauses = []
    for call in _entries(data):
        why = f"{c.w('（', ' (')}{call.get('why')}{c.w('）', ')')}" if call.get("why") else ""
        clauses.append(c.w(f"{c.name(call.get('to'))}的电话 {c.phone(call.get('failed_number'))} 未接通{why}，"
                           f"改拨 {c.phone(call.get('number'))}",
                           f"{c.name(call.get('to'))} did not answer on {c.phone(call.get('failed_number'))}{why}: "
                           f"calling {c.phone(call.get('number'))}"))
    return _Words(c.w("；", "; ").join(clauses))


@_says(EventKind.PROVIDER_RECEIPT)
def _receipt(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    provider = actor_words(str(ev.get("actor") or ""), c.site, c.lang)
    status = _pick(_PROVIDER_STATUS, data.get("provider_status"), c.lang)
    code = f"{c.w('（错误码 ', ' (error ')}{data.get('error_code')}{c.w('）', ')')}" if data.get("error_code") else ""
    text = c.w(f"{provider}回执：发给{c.name(data.get('to'))}的{c.channel(data.get('channel'))}{status}{code}",
               f"{provider} receipt: the {c.channel(data.get('channel'))} to {c.name(data.get('to'))}: {status}{code}")
    if data.get("changed") is False:
        text += c.w("（状态未变）", " (no change)")
    return _Words(text, tone="alarm" if data.get("status") == "failed" and data.get("changed") else "minor")


_INBOUND_OUTCOME = {
    "not_a_confirmation": ("不是确认回复，仅记录", "not a confirmation: recorded only"),
    "already_acknowledged": ("叫应已确认过，未作更改", "already acknowledged: nothing changed"),
    "cancelled": ("预警已取消，未作更改", "the warning was cancelled: nothing changed"),
    "expired": ("预警已过期，未作更改", "the warning expired: nothing changed"),
    "unknown_sender": ("发件号码不在通讯录中", "the number is not in the roster"),
    "nothing_open": ("没有待确认的叫应", "nothing open to acknowledge"),
    "duplicate": ("重复的回复，未作更改", "a duplicate: nothing changed"),
}


@_says(EventKind.INBOUND_SMS)
def _inbound_sms(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    who = actor_words(str(ev.get("actor") or ""), c.site, c.lang, show_phones=c.show_phones)
    body = str(data.get("body") or "")
    outcome = str(data.get("outcome") or "")
    if outcome == "acknowledged":
        n = len(data.get("callouts") or ())
        said = c.w(f"确认 {n} 条叫应", f"acknowledged {n} call-out{'s' if n != 1 else ''}")
    else:
        said = _pick(_INBOUND_OUTCOME, outcome, c.lang)
    return _Words(c.w(f"{who}短信回复“{body}”：{said}", f"{who} replied by SMS \u201c{body}\u201d: {said}"),
                  tone="minor" if outcome == "acknowledged" else "")


@_says(EventKind.VOICE_KEYPRESS)
def _keypress(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    who = actor_words(str(ev.get("actor") or ""), c.site, c.lang)
    digits = str(data.get("digits") or "")
    meaning = c.w("（确认键）", " (the confirm key)") if digits == "1" else c.w("（不是确认键，重播）",
                                                                               " (not the confirm key: repeated)")
    return _Words(c.w(f"{who}在电话中按了 {digits or '—'}{meaning}", f"{who} pressed {digits or '—'} on the call"
                                                                     f"{meaning}"), tone="minor")


@_says(EventKind.SPOTCHECK_STARTED)
def _spotcheck_started(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    by = actor_words(str(ev.get("actor") or ""), c.site, c.lang)
    drawn, size = len(data.get("drawn") or ()), data.get("size")
    minutes = f"{float(data.get('answer_within') or 0) / 60:g}"
    questions = len(data.get("questions") or ())
    skipped = len(data.get("skipped") or ())
    available = data.get("available")
    short = c.w(f"（只有 {available} 人可抽，不足 {size} 人）",
                f" (only {available} could be drawn, fewer than {size})") if data.get("short") else ""
    return _Words(c.w(
        f"{c.subject(by)}发起{data.get('name') or ''}：随机种子 {data.get('seed')}，抽取 {drawn} 人{short}"
        f"（近期已抽查 {skipped} 人不再抽取），{questions} 个问题，须在 {minutes} 分钟内作答"
        f"（{c.channels(data.get('channels') or ())}）",
        f"{by} started the spot-check {data.get('spotcheck') or ''}: seed {data.get('seed')}, {drawn} drawn{short} "
        f"({skipped} checked lately left out), {questions} questions to answer within {minutes} min "
        f"({c.channels(data.get('channels') or ())})"))


@_says(EventKind.ANSWERED)
def _answered(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    person = c.name(str(data.get("person") or ""))
    answers = data.get("answers") or {}
    marks = c.sep.join(f"{int(q) + 1}{c.w('问', '.')}{c.w('是', 'yes') if a == 'yes' else c.w('否', 'no')}"
                       for q, a in sorted(answers.items(), key=lambda kv: int(kv[0])))
    how = _pick(_VIA, str(data.get("via") or ""), c.lang)
    said = c.w(f"，原文“{data['body']}”", f", “{data['body']}”") if data.get("body") else ""
    done = c.w("，已全部作答", ", every question answered") if data.get("complete") else ""
    kept = c.w("（先前已答的以先答为准）", " (earlier answers stand)") if data.get("ignored") else ""
    return _Words(c.w(f"{person}作答（{how}{said}）：{marks or '无新答案'}{kept}{done}",
                      f"{person} answered ({how}{said}): {marks or 'nothing new'}{kept}{done}"),
                  tone="" if "no" not in answers.values() else "alarm")


@_says(EventKind.NOT_AN_ANSWER)
def _not_an_answer(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    person = c.name(str(data.get("person") or ""))
    if data.get("body") is not None:
        what = c.w(f"短信回复“{data.get('body')}”", f"the SMS reply “{data.get('body')}”")
    elif data.get("question") is not None:
        what = c.w(f"第{int(data['question']) + 1}问按键“{data.get('digits') or '无'}”",
                   f"key {data.get('digits') or '—'} on question {int(data['question']) + 1}")
    else:
        what = c.w(f"电话按键“{data.get('digits') or '无'}”", f"the keys {data.get('digits') or '—'} of the call")
    then = c.w("，已短信请其重新作答", ": asked once more by SMS") if data.get("asked_again") else ""
    if data.get("answer_by") == "sms":  # a call that reports one key only (Tencent) asked for an SMS reply
        then = c.w("（此电话只能回传一个按键，须短信作答", " (this call reports one key only: answers come by SMS") + (
            c.w("，问题已短信发送）", "; the questions were texted)") if data.get("asked_again") else c.w("）", ")"))
    return _Words(c.w(f"{person}的{what}不是有效答案{then}", f"{person}: {what} is not an answer{then}"),
                  tone="minor")


_ROOM_VERDICT = {"manned": ("到岗", "manned"), "missing": ("未到岗", "not manned"),
                 "unmanned": ("无人值班", "nobody on shift"), "open": ("点名中", "still being called")}


@_says(EventKind.ROLLCALL_RESULT)
def _rollcall_result(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    rooms = [r for r in data.get("rooms") or () if isinstance(r, Mapping)]
    clauses = []
    for room in rooms:
        verdict = _pick(_ROOM_VERDICT, room.get("verdict"), c.lang)
        counts = []
        if room.get("verdict") != "unmanned":
            counts = [c.w(f"呼叫 {room.get('called', 0)} 人", f"{room.get('called', 0)} called"),
                      c.w(f"按时应答 {room.get('present', 0)}", f"{room.get('present', 0)} in time")]
            counts += [c.w(f"迟到应答 {room['late']}", f"{room['late']} late")] if room.get("late") else []
            counts += [c.w(f"未应答 {room['absent']}", f"{room['absent']} no answer")] if room.get("absent") else []
        detail = f"{c.w('（', ' (')}{c.w('，', ', ').join(counts)}{c.w('）', ')')}" if counts else ""
        name = str(room.get("name") or "") if c.lang == "zh" else f"{c.area(room.get('area'))} duty room"
        clauses.append(f"{name}{c.w('', ': ')}{verdict}{detail}")
    head = c.w(f"点名结果：{len(rooms)} 个值班室，到岗 {data.get('manned', 0)} 个，未到岗 {data.get('missing', 0)} 个，"
               f"无人值班 {data.get('unmanned', 0)} 个",
               f"Roll-call result: {len(rooms)} duty rooms, {data.get('manned', 0)} manned, "
               f"{data.get('missing', 0)} not manned, {data.get('unmanned', 0)} with nobody on shift")
    body = c.w("；", "; ").join(clauses)
    alarm = bool(data.get("missing") or data.get("unmanned"))
    return _Words(f"{head}{c.w('。', '. ')}{body}" if body else head, tone="alarm" if alarm else "ack")


@_says(EventKind.SPOTCHECK_RESULT)
def _spotcheck_result(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    head = c.w(f"抽查结果：抽查 {data.get('checked', 0)} 人，全部为是 {data.get('ok', 0)} 人，"
               f"有“否” {data.get('no', 0)} 人，未答全 {data.get('missing', 0)} 人",
               f"Spot-check result: {data.get('checked', 0)} checked, {data.get('ok', 0)} said yes to everything, "
               f"{data.get('no', 0)} said no to a question, {data.get('missing', 0)} did not answer everything")
    said_no = [(q, t.get("no", 0)) for q, t in enumerate(data.get("questions") or ()) if isinstance(t, Mapping)
               and t.get("no")]
    if said_no:
        head += c.w("；答“否”：", "; no to ") + c.sep.join(
            c.w(f"第{q + 1}问 {n} 人", f"question {q + 1} ({n})") for q, n in said_no)

    def questions(indexes: Any) -> str:
        return c.w("、", ", ").join(c.w(f"第{int(q) + 1}问", f"q{int(q) + 1}") for q in indexes or ())

    entries = []
    for p in data.get("follow_up") or ():
        if not isinstance(p, Mapping):
            continue
        what = [c.w(f"{questions(p['no'])}否", f"no to {questions(p['no'])}")] if p.get("no") else []
        what += [c.w(f"{questions(p['missing'])}未答", f"{questions(p['missing'])} unanswered")] if p.get(
            "missing") else []
        person = p.get("person")
        name = c.name(person) if person in c.site.people else str(p.get("name") or person)
        entries.append(f"{name}{c.w('（', ' (')}{c.w('，', '; ').join(what)}{c.w('）', ')')}")
    if not entries:
        return _Words(head + c.w("；无需跟进", "; nobody to follow up"), tone="ack")
    who, people = c.who(entries)
    return _Words(head + c.w(f"；需跟进 {who}", f"; to follow up: {who}"), people, "alarm")


@_says(EventKind.LINK_USED)
def _link(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    who, official = str(data.get("recipient") or ev.get("actor") or ""), str(data.get("person") or "")
    whom = "" if who == official else c.w(f"，为{c.name(official)}", f" for {c.name(official)}")
    return _Words(c.w(f"{c.name(who)}打开确认链接确认{whom}", f"{c.name(who)} confirmed with the link{whom}"),
                  tone="minor")


def _ack_how(via: str, callout: Any, c: _Ctx) -> str:
    if via == "sms" and isinstance(callout, int) and callout in c.sms_body:
        return c.w(f"短信回复“{c.sms_body[callout]}”", f"replied \u201c{c.sms_body[callout]}\u201d by SMS")
    return _pick(_VIA, via, c.lang)


def _minutes(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def by_whom(actor: str, official: str | None, c: _Ctx, callout: Any = None) -> tuple[str, bool]:
    """Who answered, as the official's line reads it (本人, AB岗李卫东, 值班员 liu), and whether it
    was someone other than the official."""
    if actor.startswith("user:"):
        return c.w(f"值班员 {actor[5:]} ", f"duty officer {actor[5:]}"), True
    person = _actor_id(actor, c.site)
    if official is not None and person == official:
        return c.w("本人", "the official"), False
    relation = c.relation(person, official, callout)
    name = c.name(person) if person in c.site.people else actor_words(actor, c.site, c.lang,
                                                                       show_phones=c.show_phones)
    return (f"{relation}{name}" if c.lang == "zh" else f"{relation} {name}".strip()), True


@_says(EventKind.ACKNOWLEDGED)
def _acknowledged(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    actor, official = str(ev.get("actor") or ""), data.get("person")
    official = official if isinstance(official, str) else c.official_of(data.get("callout"))
    via, callout = str(data.get("via") or ""), data.get("callout")
    took = _minutes(data.get("seconds"))
    took = c.w(f"，用时 {took}", f", after {took}") if took else ""
    late = c.w("（此前已列入未叫醒）", " (after being listed unreached)") if data.get("after_unreached") else ""
    note = data.get("note")
    if actor.startswith("user:"):
        text = c.w(f"{actor[5:]} 代{c.name(official)}确认", f"{actor[5:]} acknowledged for {c.name(official)}")
        if note:
            text += c.w(f"（说明：{note}）", f" (note: {note})")
        return _Words(text + took + late, tone="ack")
    person = _actor_id(actor, c.site)
    name = c.name(person) if person in c.site.people else actor_words(actor, c.site, c.lang,
                                                                       show_phones=c.show_phones)
    how = _ack_how(via, callout, c)
    if official is None or person == official:
        return _Words(c.w(f"{name}{how}，本人确认", f"{name} {how}: acknowledged") + took + late, tone="ack")
    relation = c.relation(person, official, callout)
    named = f"{name}{c.w('（', ' (')}{relation}{c.w('）', ')')}" if relation else name
    return _Words(c.w(f"{named}{how}，代{c.name(official)}确认", f"{named} {how}, acknowledging for "
                                                                  f"{c.name(official)}") + took + late, tone="ack")


@_says(EventKind.ACK_IGNORED)
def _ack_ignored(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    name = actor_words(str(ev.get("actor") or ""), c.site, c.lang, show_phones=c.show_phones)
    state = _pick(_STATE, data.get("state"), c.lang)
    via, person = _pick(_VIA, data.get("via"), c.lang), c.name(data.get("person"))
    return _Words(c.w(f"{name}{via}，但{person}的叫应状态为“{state}”，未作更改",
                      f"{name} {via}, but {person}'s call-out was already {state}: nothing changed"), tone="minor")


_RECALL_DONE = (re.compile(r"^step (\d+) runs now$"), re.compile(r"^called again on (\d+) channel\(s\)$"))


@_says(EventKind.RECALL)
def _recall(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    actor = actor_words(str(ev.get("actor") or ""), c.site, c.lang)
    done = str(data.get("done") or "")
    if m := _RECALL_DONE[0].match(done):
        what = c.w(f"第{int(m.group(1)) + 1}步立即执行", f"step {int(m.group(1)) + 1} runs now")
    elif m := _RECALL_DONE[1].match(done):
        what = c.w(f"按最后一步的 {m.group(1)} 个渠道再次呼叫", f"called again on {m.group(1)} channel(s)")
    else:
        what = done
    return _Words(c.w(f"{c.subject(actor)}立即重呼{c.name(data.get('person'))}：{what}",
                      f"{actor} re-called {c.name(data.get('person'))}: {what}"))


@_says(EventKind.EXPIRED)
def _expired(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    return _Words(c.w(f"预警 {data.get('warning')} 已到失效时间（{c.stamp(data.get('expires'))}）",
                      f"Warning {data.get('warning')} expired ({c.stamp(data.get('expires'))})"))


@_says(EventKind.CALLOUTS_EXPIRED)
def _callouts_expired(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    names = c.names(data.get("people") or ())
    count = data.get("callouts", len(names))
    _, people = c.who(names)
    inline = f"{c.w('（', ' (')}{c.sep.join(names)}{c.w('）', ')')}" if names and not people else ""
    return _Words(c.w(f"预警失效，{count} 条未完成的叫应随之关闭{inline}",
                      f"The warning ran out: {count} open call-out(s) closed{inline}"), people)


@_says(EventKind.SENT_AFTER_LEASE_LOST)
def _lease_lost(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    attempts = [a for a in data.get("attempts") or () if isinstance(a, Mapping)]
    names = c.names(p[3] for a in attempts if (p := _key(a.get("key"))))
    who, people = c.who(names)
    return _Words(c.w(f"警告：{len(attempts)} 条消息在另一发送进程接手后仍被发出，可能重复：{who}",
                      f"Warning: {len(attempts)} message(s) sent after another sender process took them over — "
                      f"possibly twice: {who}"), people, "alarm")


@_says(EventKind.BROADCAST_ORDERED)
def _broadcast_ordered(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    villages = [c.area(a) for a in data.get("areas") or ()]
    who, people = c.who(villages)
    who = who.replace(" 人", " 个村") if c.lang == "zh" else who.replace("people", "villages").replace("person",
                                                                                                        "village")
    return _Words(c.w(f"下单农村应急广播：{who}，每次重复 {data.get('repeat')} 遍",
                      f"Rural broadcast ordered: {who}, repeated {data.get('repeat')} times"), people)


@_says(EventKind.BROADCAST_SENT)
def _broadcast_sent(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    return _Words(c.w(f"应急广播平台已接单（{data.get('platform_id')}）",
                      f"The broadcast platform took the order ({data.get('platform_id')})"))


@_says(EventKind.BROADCAST_FAILED)
def _broadcast_failed(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    retry = c.w("，稍后重试", "; trying again") if data.get("retry") else ""
    return _Words(c.w(f"应急广播下发失败：{data.get('error')}{retry}",
                      f"The broadcast order failed: {data.get('error')}{retry}"), tone="alarm")


@_says(EventKind.BROADCAST_RECEIPT)
def _broadcast_receipt(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    state = _pick(_BROADCAST, data.get("state"), c.lang)
    when = c.clock(data.get("at"))
    detail = f"{c.w('（', ' (')}{data.get('detail')}{c.w('）', ')')}" if data.get("detail") else ""
    return _Words(c.w(f"{c.area(data.get('area'))}广播{state}（终端时间 {when}）{detail}",
                      f"{c.area(data.get('area'))}: broadcast {state} (terminal time {when}){detail}"),
                  tone="alarm" if data.get("state") == "failed" else "")


_FOLLOW_UP = {"reached": ("已当面告知本人", "told in person"),
              "relayed": ("本人不在，已告知家属或村组干部", "not there: family or village cadres told"),
              "not_found": ("未找到本人，继续寻找", "not found yet: still looking")}


@_says(EventKind.FOLLOW_UP_ASSIGNED)
def _follow_up_assigned(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    actor = actor_words(str(ev.get("actor") or ""), c.site, c.lang)
    official = c.name(data.get("person") or c.official_of(data.get("callout")))
    note = c.w(f"（说明：{data['note']}）", f" (note: {data['note']})") if data.get("note") else ""
    return _Words(c.w(f"{c.subject(actor)}安排{data.get('who')}上门核实{official}{note}",
                      f"{actor} sent {data.get('who')} to find {official}{note}"))


@_says(EventKind.FOLLOW_UP_RESULT)
def _follow_up_result(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    official = c.name(data.get("person") or c.official_of(data.get("callout")))
    outcome = str(data.get("outcome") or "")
    note = c.w(f"（{data['note']}）", f" ({data['note']})") if data.get("note") else ""
    return _Words(c.w(f"上门核实{official}：{_pick(_FOLLOW_UP, outcome, c.lang)}{note}",
                      f"Follow-up on {official}: {_pick(_FOLLOW_UP, outcome, c.lang)}{note}"),
                  tone="alarm" if outcome == "not_found" else "ack")


_FORWARDED_WHAT = {"alert": ("预警", "the warning"), "update": ("预警更新", "the update"),
                   "cancel": ("解除通知", "the cancellation")}
_REPORT_VIA = {"report": ("网络接口", "webhook"), "report_email": ("电子邮件", "e-mail")}


def _target_name(data: Mapping[str, Any]) -> str:
    return str(data.get("name") or data.get("target") or "")


def _what_failed(data: Mapping[str, Any], c: _Ctx) -> str:
    """转发至 X / 结果上报 X (forwarding to X / the result report to X)."""
    name = _target_name(data)
    if str(data.get("kind") or "forward") == "forward":
        return c.w(f"转发至{name}", f"Forwarding to {name}")
    how = _pick(_REPORT_VIA, data.get("kind"), c.lang)
    return c.w(f"向{name}上报叫应结果（{how}）", f"The result report to {name} ({how})")


def _code(data: Mapping[str, Any], c: _Ctx) -> str:
    code = data.get("code")
    return f"HTTP {code}" if isinstance(code, int) else c.w("无应答", "no answer")


@_says(EventKind.FORWARDED)
def _forwarded(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    what = _pick(_FORWARDED_WHAT, data.get("msg_type"), c.lang)
    tries = data.get("tries")
    again = c.w(f"，第 {tries} 次尝试", f", on try {tries}") if isinstance(tries, int) and tries > 1 else ""
    return _Words(c.w(f"{what}已转发至{_target_name(data)}（{_code(data, c)}，标识 {data.get('identifier')}{again}）",
                      f"Forwarded {what} to {_target_name(data)} ({_code(data, c)}, identifier "
                      f"{data.get('identifier')}{again})"), tone="minor")


@_says(EventKind.FORWARD_FAILED)
def _forward_failed(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    when = c.clock(data.get("retry_at"))
    retry = c.w(f"，{when} 重试", f"; trying again at {when}") if when else c.w("，稍后重试", "; trying again")
    return _Words(c.w(f"{_what_failed(data, c)}未成功（{_code(data, c)}：{data.get('error')}）{retry}",
                      f"{_what_failed(data, c)} failed ({_code(data, c)}: {data.get('error')}){retry}"),
                  tone="alarm")


@_says(EventKind.FORWARD_REFUSED)
def _forward_refused(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    name = _target_name(data)
    if data.get("key"):
        return _Words(c.w(f"{name}拒绝了我方密钥（{_code(data, c)}）：{_what_failed(data, c)}未送达，不再自动重试，"
                          f"请核对密钥后执行 jiaoying forwarding retry",
                          f"{name} refused our key ({_code(data, c)}): {_what_failed(data, c).lower()} did not go "
                          f"through and is not retried; check the key, then run jiaoying forwarding retry"),
                      tone="alarm")
    return _Words(c.w(f"{name}拒收（{_code(data, c)}：{data.get('error')}）：{_what_failed(data, c)}未送达，"
                      "不再自动重试",
                      f"{name} refused it ({_code(data, c)}: {data.get('error')}): {_what_failed(data, c).lower()} "
                      f"did not go through and is not retried"), tone="alarm")


@_says(EventKind.REPORT_SENT)
def _report_sent(data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    how = _pick(_REPORT_VIA, data.get("kind"), c.lang)
    return _Words(c.w(f"叫应结果已上报{_target_name(data)}（{how} {data.get('to')}）：叫应 {data.get('called')} 人，"
                      f"确认 {data.get('acknowledged')} 人，未叫醒 {data.get('unreached')} 人",
                      f"Result reported to {_target_name(data)} ({how} {data.get('to')}): {data.get('called')} "
                      f"called, {data.get('acknowledged')} acknowledged, {data.get('unreached')} unreached"))


def _generic(kind: str, data: Mapping[str, Any], c: _Ctx, ev: Mapping[str, Any]) -> _Words:
    """A kind this module has no sentence for (one added later, e.g. a follow-up visit): its name and
    its data, with people, call-outs, areas and times in words."""
    parts = []
    for key, value in data.items():
        if key in ("person", "to", "recipient", "by") and isinstance(value, str):
            shown = c.name(value)
        elif key == "callout" and isinstance(value, int):
            shown = c.name(c.official_of(value)) if c.official_of(value) else str(value)
        elif key in ("people", "persons") and isinstance(value, list):
            shown = c.sep.join(c.names(value))
        elif key in ("area", "village") and isinstance(value, str):
            shown = c.area(value)
        elif isinstance(value, str) and _utc(value) is not None and len(value) >= 16:
            shown = c.stamp(value)
        elif isinstance(value, str) and looks_like_phone(value):
            shown = c.phone(value)
        elif isinstance(value, list | dict):
            continue
        else:
            shown = str(value)
        parts.append(f"{key}{c.w('：', ': ')}{shown}")
    title = kind.replace("_", " ")
    return _Words(f"{title}{c.w('：', ': ')}{c.w('；', '; ').join(parts)}" if parts else title)


# -- the record ---------------------------------------------------------------------------------------


def say(events: Iterable[Any], site: Site, lang: str = "zh", *, show_phones: bool = True,
        callouts: Mapping[int, Frozen] | None = None) -> list[Said]:
    """The record's events in words, in their order. ``events``: the record's rows (mappings with
    seq, at, actor, kind, data — as ``services.warnings.record`` gives them — or objects with those
    attributes). ``show_phones``: numbers in full (officers) or masked (viewers). ``callouts``: each
    call-out's official and frozen steps, for the steps' channels and recipients (else read from
    the attempts the record holds)."""
    rows = [_event(e) for e in events]
    c = _Ctx(rows, site, lang, show_phones, callouts)
    out = []
    for ev in rows:
        data = ev["data"] if isinstance(ev["data"], Mapping) else {}
        kind = str(ev["kind"])
        sentence = SENTENCES.get(kind)
        try:
            words = sentence(data, c, ev) if sentence else _generic(kind, data, c, ev)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            words = _generic(kind, data, c, ev)  # an event of an older shape: shown, never an error page
        at = _utc(ev["at"]) or datetime(1970, 1, 1, tzinfo=UTC)
        local = at.astimezone(site.tz)
        out.append(Said(int(ev["seq"] or 0), kind, local, local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S"),
                        actor_words(str(ev["actor"]), site, lang, show_phones=show_phones, kind=kind),
                        words.text, words.people, words.tone))
    return out


# -- the printed 一事一档 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    minutes: int
    met: int
    total: int

    @property
    def pct(self) -> int:
        return round(100 * self.met / self.total) if self.total else 0


@dataclass(frozen=True)
class Call:
    """One 叫: a message to someone about an official."""

    time: str
    channel: str
    to: str  # 本人, AB岗 李卫东 …
    status: str
    ok: bool


@dataclass(frozen=True)
class OfficialLine:
    id: int
    name: str
    roles: str
    unit: str
    area: str
    state: str  # in words
    state_code: str
    calls: tuple[Call, ...]
    answer: str  # 应: "21:25:02 短信回复，由AB岗李卫东确认" or ""
    to_ack: str
    bars: tuple[bool, bool, bool]  # reached ≤3, acknowledged ≤5, ≤30


@dataclass(frozen=True)
class UnreachedLine:
    name: str
    area: str
    at: str
    told: tuple[str, ...]  # who the 未叫醒 list went to, and how
    after: tuple[str, ...]  # what followed: a late acknowledgement, follow-up events


@dataclass(frozen=True)
class Village:
    name: str
    state: str
    at: str
    ok: bool


@dataclass(frozen=True)
class BroadcastLine:
    id: str
    ordered: str
    handed_over: str
    repeat: int
    villages: tuple[Village, ...]


@dataclass
class Document:
    title: str
    facts: list[tuple[str, str]]
    plans: list[str]
    duty: list[str]
    counts: dict[str, int]
    bars: list[Bar]
    officials: list[OfficialLine]
    unreached: list[UnreachedLine]
    broadcasts: list[BroadcastLine]
    said: list[Said]
    generated: str
    drill: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# The event kinds of the record: the follow-up ones (安排上门/现场核实, services/follow_up.py) and any
# kind added later that names a call-out or its official are listed under that official in the
# unreached list.
_KNOWN = {k.value for k in EventKind}


def document(warning: Mapping[str, Any], events: Sequence[Any], callouts: Sequence[Mapping[str, Any]], site: Site,
             lang: str = "zh", *, show_phones: bool = True, frozen: Mapping[int, Frozen] | None = None,
             now: datetime | None = None) -> Document:
    """The printable 一事一档 of one warning event. ``warning``: the warning message's facts (id,
    sender, hazard, level, areas, zones, headline, sent, expires, received_at, status, drill);
    ``callouts``: the call-outs as ``services.callout_views.list_callouts`` gives them (with their
    attempts)."""
    rows = [_event(e) for e in events]
    frozen = dict(frozen or {})
    said = say(rows, site, lang, show_phones=show_phones, callouts=frozen)
    c = _Ctx(rows, site, lang, show_phones, frozen)
    w = c.w

    facts = _facts(warning, rows, c)
    matched = [e for e in rows if e["kind"] == EventKind.MATCHED]
    plans = list(dict.fromkeys(_plan_name(str(p), site, lang) for e in matched for p in e["data"].get("plans") or ()))
    duty = c.names(p for e in matched for p in e["data"].get("duty") or ())

    counts = {s.value: 0 for s in CalloutState} | {"total": len(callouts)}
    for co in callouts:
        counts[co["state"]] = counts.get(co["state"], 0) + 1

    lines = [_official_line(co, c) for co in callouts]
    live = [line for line in lines if line.state_code != "cancelled"]
    bars = [Bar(w("3 分钟内叫到（首条消息已发出）", "Reached within 3 min (first message handed over)"), 3,
                sum(1 for line in live if line.bars[0]), len(live)),
            Bar(w("5 分钟内确认", "Acknowledged within 5 min"), 5, sum(1 for line in live if line.bars[1]), len(live)),
            Bar(w("30 分钟内确认", "Acknowledged within 30 min"), 30, sum(1 for line in live if line.bars[2]),
                len(live))]

    unreached = [_unreached_line(co, rows, c) for co in callouts if co.get("unreached_at")]
    broadcasts = _broadcasts(rows, c)
    headline = str(warning.get("headline") or "")
    generated = c.stamp(now) if now else ""
    return Document(f"{w('一事一档', 'Event file')}{w('：', ': ')}{headline}", facts, plans, duty, counts, bars, lines,
                    unreached, broadcasts, said, generated, bool(warning.get("drill")))


def _facts(warning: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], c: _Ctx) -> list[tuple[str, str]]:
    w = c.w
    try:
        level = Level(str(warning.get("level")))
        level_text = w(f"{level.zh}（{level.roman}级）", f"{_LEVEL_EN[level.value]} ({level.roman})")
    except ValueError:
        level_text = str(warning.get("level"))
    try:
        hazard = Hazard(str(warning.get("hazard")))
        hazard_text = hazard.zh if c.lang == "zh" else hazard.value.replace("_", " ")
    except ValueError:
        hazard_text = str(warning.get("hazard"))
    areas = [c.site.areas.label(a) for a in warning.get("areas") or ()]
    zones = []
    for z in warning.get("zones") or ():
        zone = c.site.zones.get(z)
        if zone is None:
            zones.append(str(z))
        else:
            kind = (zone.kind.zh if c.lang == "zh" else zone.kind.value.replace("_", " ")) if isinstance(
                zone.kind, ZoneKind) else str(zone.kind)
            zones.append(f"{zone.name}{w('（', ' (')}{kind}{w('）', ')')}")
    received = [e for e in rows if e["kind"] == EventKind.RECEIVED]
    agency = next((actor_words(str(e["actor"]), c.site, c.lang) for e in received
                   if str(e["actor"]).startswith("agency:")), "")
    sender = str(warning.get("sender") or "")
    facts = [
        (w("预警编号", "Warning"), str(warning.get("id") or "")),
        (w("发布单位", "Sender"), sender + (f"{w('（接入：', ' (key of ')}{agency}{w('）', ')')}"
                                           if agency and agency != sender else "")),
        (w("灾种", "Hazard"), hazard_text),
        (w("预警等级", "Level"), level_text),
        (w("预警区域", "Areas"), c.sep.join(areas) or w("无", "none")),
    ]
    if zones:
        facts.append((w("危险区", "Hazard zones"), c.sep.join(zones)))
    facts += [
        (w("发布时间", "Issued"), c.stamp(warning.get("sent"))),
        (w("收到时间", "Received"), c.stamp(warning.get("received_at"))),
        (w("失效时间", "Expires"), c.stamp(warning.get("expires")) or w("未设定", "not set")),
        (w("当前状态", "Status"), _pick({"active": ("生效中", "active"), "updated": ("已被更新", "updated"),
                                        "cancelled": ("已解除/取消", "cancelled"), "expired": ("已失效", "expired")},
                                       warning.get("status"), c.lang)),
    ]
    if len(received) > 1:
        types = {"alert": ("首发", "alert"), "update": ("更新", "update"), "cancel": ("解除", "cancel")}
        messages = [f"{c.stamp(e['at'])} {_pick(types, e['data'].get('msg_type'), c.lang)}" for e in received]
        facts.append((w("本事件消息", "Messages of the event"), c.sep.join(messages)))
    return facts


def _official_line(co: Mapping[str, Any], c: _Ctx) -> OfficialLine:
    official = co.get("official") or {}
    person_id = str(official.get("id") or "")
    started = _utc(co.get("started_at"))
    calls = []
    first_reached: datetime | None = None
    for a in co.get("attempts") or ():
        sent = _utc(a.get("sent_at"))
        status = str(a.get("status") or "")
        to_kind = _PURPOSE_TO.get(str(a.get("purpose")), "self")
        recipient = str(a.get("to") or "")
        if recipient == person_id:
            to = c.w("本人", "the official")
            if sent and status in _REACHED and (first_reached is None or sent < first_reached):
                first_reached = sent
        elif to_kind == "unreached":
            to = f"{c.w('未叫醒通报 ', 'unreached list to ')}{c.name(recipient)}"
        else:
            to = f"{c.recipient(to_kind)}{'' if c.lang == 'zh' else ' '}{c.name(recipient)}"
        if a.get("purpose") in ("update", "cancel"):
            to += c.w("（更新通知）", " (update notice)") if a.get("purpose") == "update" else c.w("（解除通知）",
                                                                                             " (cancel notice)")
        call = Call(c.clock(sent) if sent else "—", c.channel(a.get("channel")), to, _pick(_ATTEMPT, status, c.lang),
                    status in _REACHED)
        last = calls[-1] if calls else None
        if last is not None and (last.time, last.to, last.status) == (call.time, call.to, call.status):
            calls[-1] = Call(last.time, f"{last.channel}{c.sep}{call.channel}", last.to, last.status, last.ok)
        else:  # the SMS and the call of one step at one time, to one person: one line
            calls.append(call)
    acked = _utc(co.get("acknowledged_at"))
    answer = ""
    if acked is not None:
        who, other = by_whom(str(co.get("acknowledged_by") or ""), person_id, c, co.get("id"))
        how = _ack_how(str(co.get("ack_via") or ""), co.get("id"), c)
        answer = (c.w(f"{c.clock(acked)} {how}，由{who}确认", f"{c.clock(acked)} {how}, acknowledged by {who}")
                  if other else c.w(f"{c.clock(acked)} {how}，本人确认", f"{c.clock(acked)} {how}, by the official"))
        if co.get("ack_note"):
            answer += c.w(f"（说明：{co['ack_note']}）", f" (note: {co['ack_note']})")
    seconds = co.get("seconds_to_ack")
    reached = started is not None and first_reached is not None and first_reached - started <= REACH_BAR
    within = [isinstance(seconds, int | float) and seconds <= bar.total_seconds() for bar in (ACK_BAR, LATE_BAR)]
    area = str(official.get("area_name") or "")
    return OfficialLine(int(co.get("id") or 0), str(official.get("name") or person_id), c.sep.join(
        official.get("roles") or ()), str(official.get("unit") or ""), area.split("/")[-1] if area else "",
        _pick(_STATE, co.get("state"), c.lang), str(co.get("state") or ""), tuple(calls), answer,
        _minutes(seconds), (reached, within[0], within[1]))


def _mentions(data: Mapping[str, Any], callout: int, person: str) -> bool:
    if data.get("callout") == callout or data.get("person") == person:
        return True
    for value in data.values():
        if isinstance(value, list) and (callout in value or person in value or any(
                isinstance(v, Mapping) and (v.get("callout") == callout or v.get("person") == person)
                for v in value)):
            return True
    return False


def _unreached_line(co: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], c: _Ctx) -> UnreachedLine:
    official = co.get("official") or {}
    person_id, callout = str(official.get("id") or ""), int(co.get("id") or 0)
    told: dict[tuple[str, str, str], list[str]] = {}  # (whom, how it went, when) -> channels
    for a in co.get("attempts") or ():
        if a.get("purpose") == "unreached":
            sent = _utc(a.get("sent_at"))
            key = (c.name(a.get("to")), _pick(_ATTEMPT, a.get("status"), c.lang), c.clock(sent) if sent else "")
            told.setdefault(key, []).append(c.channel(a.get("channel")))
    after = []
    unreached_at = _utc(co.get("unreached_at"))
    acked = _utc(co.get("acknowledged_at"))
    if acked is not None:
        who, _ = by_whom(str(co.get("acknowledged_by") or ""), person_id, c, callout)
        after.append(c.w(f"{c.clock(acked)} 由{who}确认（{_pick(_VIA, co.get('ack_via'), c.lang)}）",
                         f"{c.clock(acked)} acknowledged by {who} ({_pick(_VIA, co.get('ack_via'), c.lang)})")
                     + (c.w(f"：{co['ack_note']}", f": {co['ack_note']}") if co.get("ack_note") else ""))
    follow = [e for e in rows if (str(e["kind"]).startswith("follow_up") or str(e["kind"]) not in _KNOWN)
              and isinstance(e["data"], Mapping) and _mentions(e["data"], callout, person_id)]
    for ev in say(follow, c.site, c.lang, show_phones=c.show_phones, callouts=c.callouts):
        after.append(f"{ev.time} {ev.actor}{c.w('：', ': ')}{ev.text}")
    if not after:
        after.append(c.w("尚无跟进记录", "no follow-up on record yet"))
    lines = tuple(f"{whom}{c.w('：', ': ')}{c.sep.join(channels)} {status}{' ' + at if at else ''}"
                  for (whom, status, at), channels in told.items())
    return UnreachedLine(str(official.get("name") or person_id), str(official.get("area_name") or ""),
                         c.clock(unreached_at), lines, tuple(after))


def _broadcasts(rows: Sequence[Mapping[str, Any]], c: _Ctx) -> list[BroadcastLine]:
    orders: dict[str, dict[str, Any]] = {}
    for ev in rows:
        data = ev["data"]
        if ev["kind"] == EventKind.BROADCAST_ORDERED and isinstance(data.get("id"), str):
            orders.setdefault(data["id"], {"at": ev["at"], "areas": list(data.get("areas") or ()),
                                           "repeat": data.get("repeat") or 0, "sent": "", "receipts": {}})
        elif ev["kind"] in (EventKind.BROADCAST_SENT, EventKind.BROADCAST_FAILED) and data.get("id") in orders:
            orders[data["id"]]["sent"] = (c.clock(ev["at"]) + " " + c.w("已下发", "handed over")
                                          if ev["kind"] == EventKind.BROADCAST_SENT
                                          else c.w(f"下发失败：{data.get('error')}", f"failed: {data.get('error')}"))
        elif ev["kind"] == EventKind.BROADCAST_RECEIPT and data.get("id") in orders:
            orders[data["id"]]["receipts"][data.get("area")] = data
    out = []
    for broadcast_id, order in orders.items():
        villages = []
        for code in order["areas"]:
            receipt = order["receipts"].get(code, {})
            state = str(receipt.get("state") or "none")
            villages.append(Village(c.area(code), _pick(_BROADCAST, state, c.lang), c.clock(receipt.get("at")),
                                    state in ("completed", "playing")))
        out.append(BroadcastLine(broadcast_id, c.clock(order["at"]), order["sent"] or c.w("待下发", "pending"),
                                 int(order["repeat"] or 0), tuple(villages)))
    return out
