"""What the board shows, built from the read services: overview cards and per-warning rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from ..domain.callouts import AckVia, CalloutState
from ..domain.channels import Channel
from ..domain.duty import DutyPosition
from ..domain.hazards import Level
from ..rendering import BEIJING
from ..services import callout_views, drills
from ..services import warnings as queries
from ..services.broadcasts import latest_receipts, orders_of
from ..services.follow_up import Outcome
from ..services.site import current_site
from .i18n import translator

# Not acknowledged this long after the call-out started: shown (and filterable) as overdue.
OVERDUE_AFTER = callout_views.OVERDUE_AFTER
# Icons are inline SVG symbols (templates/board/_layout.html), never emoji or dingbats: Debian's
# Chromium with Noto CJK draws ⏰ 📢 ✔ as empty boxes. The values name a symbol ``#i-<name>``.
STATE_ICON = {"pending": "queued", "notified": "mail", "acknowledged": "ok", "unreached": "unreached",
              "cancelled": "cancel", "expired": "hourglass"}
ATTEMPT_ICON = {"queued": "queued", "sending": "sent", "sent": "ok", "delivered": "ok2", "failed": "fail",
                "cancelled": "cancel"}
ATTEMPT_ZH = {"queued": "排队", "sending": "发送中", "sent": "已发出", "delivered": "已送达", "failed": "失败",
              "cancelled": "已撤销"}
LEVEL_ICON = {"red": "▲", "orange": "◆", "yellow": "●", "blue": "■"}  # kept for scripts; the pages draw SVG
# Who someone is to the official (services/callout_views.Relation), as the board says it.
RELATION_ZH = {"self": "本人", "deputy": "AB岗", "superior": "上级", "duty_leader": "值班领导", "duty_chief": "值班长",
               "duty_staff": "值班员", "town_duty": "乡镇值班室", "officer": "值班员", "other": "其他人员"}
POST_ZH = {p.value: p.zh for p in DutyPosition}
NUMBER_ZH = {"mobile": "手机", "backup_mobile": "备用手机", "landline": "办公电话", "satellite": "卫星电话",
             "duty_room": "值班电话"}
OUTCOME_ZH = {o.value: o.zh for o in Outcome}
OUTCOMES = tuple(OUTCOME_ZH.items())  # the follow-up form's choices, in order
STATUS_ZH = {"active": "生效中", "updated": "已更新", "cancelled": "已取消", "expired": "预警已过期"}

# The record's event kinds as a duty officer reads them (the code stays beside it, for the audit).
EVENT_ZH = {
    "received": "收到预警", "matched": "匹配预案", "applied": "启动叫应", "updated": "预警更新",
    "cancelled": "预警解除/取消", "attempts": "发送记录", "steps": "执行升级步骤", "unreached": "未叫醒",
    "provider_receipt": "运营商回执", "step_brought_forward": "提前执行下一步",
    "next_number": "改拨下一号码", "inbound_sms": "收到短信",
    "voice_keypress": "电话按键", "ack_ignored": "确认未生效", "acknowledged": "已确认", "recall": "立即重呼",
    "broadcast_ordered": "应急广播下单", "broadcast_sent": "应急广播已下发", "broadcast_failed": "应急广播下发失败",
    "broadcast_receipt": "应急广播回执", "link_used": "链接确认", "expired": "预警已过期",
    "callouts_expired": "叫应随预警过期关闭", "apply_failed": "预警处理失败（稍后重试）",
    "step_failed": "升级步骤执行失败（稍后重试）", "sent_after_lease_lost": "重复发送告警",
    "follow_up_assigned": "安排上门核实", "follow_up_result": "上门核实结果",
}


@dataclass(frozen=True)
class Filters:
    state: str = ""  # "" | unreached | overdue | open
    town: str = ""
    role: str = ""

    def keep(self, row: dict[str, Any]) -> bool:
        if self.state == "unreached" and row["state"] != "unreached":
            return False
        if self.state == "overdue" and not row["overdue"]:
            return False
        if self.town and row["town"] != self.town:
            return False
        return not (self.role and self.role not in row["roles"])


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def clock_text(value: datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%H:%M:%S") if value else ""


@lru_cache(maxsize=65536)
def _clock(iso: str | None) -> str:
    """An ISO time as Beijing time of day (21:23:40); cached: a live board formats the same attempts'
    times on every update."""
    return clock_text(datetime.fromisoformat(iso)) if iso else ""


def stamp(value: datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def level_view(level: str) -> dict[str, str]:
    lv = Level(level)
    return {"level": lv.value, "level_zh": lv.zh, "level_roman": lv.roman, "level_icon": LEVEL_ICON[lv.value],
            "level_roman_zh": _ROMAN_ZH.get(lv.roman, lv.roman) + "级"}


_ROMAN_ZH = {"I": "Ⅰ", "II": "Ⅱ", "III": "Ⅲ", "IV": "Ⅳ"}  # 红色 · Ⅰ级, as Chinese warnings write it


def hidden_drill(session: Session, record: str, admin: bool) -> bool:
    """A blind drill (双盲) still running: viewers and officers see it as a real warning until it ends
    and is revealed (services/drills.py); admins see it labelled."""
    return not admin and record in drills.concealed(session, [record])


def overview(session: Session, now: datetime, admin: bool = True) -> list[dict[str, Any]]:
    """Active warnings, worst first: highest level, then most unreached, then most not acknowledged.
    ``admin`` False: a blind drill still running shows as a real warning."""
    site = current_site(session)
    cards = []
    listed = queries.list_warnings(session, None, active=True)
    hidden = set() if admin else drills.concealed(session, [w["id"] for w in listed])
    for w in listed:
        if w["id"] in hidden:
            w = w | {"drill": False}
        row = queries.get_row(session, w["id"], None)
        counts = callout_views.counts(session, row.root_id or row.id)
        sent = parse_time(w["sent"])
        cards.append(w | level_view(w["level"]) | {
            "counts": counts, "since": (now - sent).total_seconds() if sent else 0,
            "sent_text": stamp(sent), "sent_iso": w["sent"],
            # 6分钟前 / 6 min ago: the card is rendered for either language
            "ago": {lang: ago((now - sent).total_seconds(), lang) if sent else "" for lang in ("zh", "en")},
            "area_names": [site.areas.name(a) for a in w["areas"]],
            "rank": Level(w["level"]).rank,
            "pct": {k: _pct(counts[k], counts["total"]) for k in ("acknowledged", "notified", "pending", "unreached")},
        })
    cards.sort(key=lambda c: (-c["rank"], -c["counts"]["unreached"],
                              -(c["counts"]["total"] - c["counts"]["acknowledged"]), c["sent_iso"]))
    return cards


def _pct(part: int, total: int) -> float:
    return round(100 * part / total, 1) if total else 0.0


def hm(value: datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%H:%M") if value else ""


def ago(seconds: float, lang: str = "zh") -> str:
    """A time since, as said: 刚刚, 6分钟前, 2小时前, 3天前 (just now, 6 min ago, 2 h ago, 3 days ago)."""
    s = max(0, int(seconds))
    if s < 60:
        return "just now" if lang == "en" else "刚刚"
    if s < 3600:
        return f"{s // 60} min ago" if lang == "en" else f"{s // 60}分钟前"
    if s < 86400:
        return f"{s // 3600} h ago" if lang == "en" else f"{s // 3600}小时前"
    return f"{s // 86400} days ago" if lang == "en" else f"{s // 86400}天前"


def bilingual(text: str | None, lang: str) -> str:
    """A text the engine writes as "中文 (English)" (the fallback plan's reason, readiness gaps): the
    part in the board's language."""
    if not text:
        return ""
    zh, sep, en = text.partition(" (")
    if not sep or not en.endswith(")"):
        return text
    return en[:-1] if lang == "en" else zh


_PUNCT_ZH = str.maketrans({"(": "（", ")": "）", ",": "，", ":": "：", ";": "；"})


def zh_punct(text: str) -> str:
    """Chinese punctuation in a Chinese name: 县领导(包保) → 县领导（包保）."""
    return text.translate(_PUNCT_ZH)


def relation_text(relation: str | None, room: str | None, lang: str) -> str:
    """本人, AB岗, 上级, 值班长, 青溪镇值班室 … (self, deputy, superior, duty chief, town duty room)."""
    if relation == "town_duty" and room and lang == "zh":
        return room
    return translator(lang)(RELATION_ZH.get(relation or "other", "其他人员"))


def who_text(relation: str | None, room: str | None, name: str, lang: str) -> str:
    """本人 / AB岗 李卫东 / 值班长 钱明 (the name once, for the official: 本人)."""
    if relation == "self":
        return relation_text(relation, room, lang)
    label = relation_text(relation, room, lang)
    return f"{label} {name}".strip() if label else name


_DUTY = frozenset(r.value for r in callout_views.DUTY_RELATIONS)


def told_summary(relations: set[str], lang: str) -> str:
    """已通知AB岗、上级及值班人员 (deputy, superior and duty officers told)."""
    if not relations:
        return ""
    t = translator(lang)
    parts = [t(w) for rel, w in (("deputy", "AB岗"), ("superior", "上级")) if rel in relations]
    if not relations.isdisjoint(_DUTY):
        parts.append(t("值班人员"))
    if "other" in relations:
        parts.append(t("其他人员"))
    if not parts:
        return ""
    if lang == "en":
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"{listed} told"
    listed = parts[0] if len(parts) == 1 else "、".join(parts[:-1]) + "及" + parts[-1]
    return f"已通知{listed}"


def board_rows(session: Session, record_id: str, now: datetime, show_phones: bool,
               lang: str = "zh") -> list[dict[str, Any]]:
    """The board's rows, in the board's order (services/callout_views.order: unreached first, then
    overdue, then open, then acknowledged), with everything a duty officer acts on."""
    site = current_site(session)
    t = translator(lang)
    whom: dict[tuple[Any, ...], str] = {}  # who_text, once per recipient and relation
    shown: dict[tuple[Any, ...], list[str]] = {}  # the role column's names, once per post and roles
    rows = []
    callouts = callout_views.list_callouts(session, record_id, show_phones=show_phones)
    for c in callout_views.order(callouts, now):
        chips = _chips(c["attempts"], lang, t, whom)
        official = c["official"]
        area = official.get("area", "")
        state = c["state"]
        roles = official.get("roles", [])
        duty = c.get("duty")
        post = _duty_post(duty, lang) if duty else ""
        shown_key = (post, tuple(roles))
        if shown_key not in shown:
            shown[shown_key] = ([post] if post else []) + ([zh_punct(r) for r in roles] if lang == "zh" else roles)
        unreached_at = parse_time(c["unreached_at"])
        rows.append({
            "id": c["id"], "warning": c["warning"], "name": official["name"], "phone": official.get("phone", ""),
            "roles": roles, "roles_shown": shown[shown_key],
            "unit": official.get("unit", ""),
            "area_name": site.areas.name(area) if area else "", "town": site.areas.name(area[:9]) if area else "",
            "state": state, "state_zh": CalloutState(state).zh, "state_icon": STATE_ICON.get(state, "queued"),
            "overdue": callout_views.is_overdue(c, now),
            "to_ack": duration(c["seconds_to_ack"]), "chips": chips,
            "seconds": c["seconds_to_ack"],
            "via": _via(c["ack_via"]),
            "ack_by": c["acknowledged_by"] or "", "note": c["ack_note"] or "",
            "ack_at": _clock(c["acknowledged_at"]),
            # someone else's answer is shown as theirs: 由AB岗李卫东确认 21:25
            "ack_relation": c.get("acknowledged_relation") or "",
            "ack_by_name": c.get("acknowledged_by_name") or "",
            "ack_by_text": _ack_by(c, lang),
            "next_step": c["next_step"], "next_due": c["next_due"] if state in ("pending", "notified") else None,
            "drill": c["drill"], "open": state in ("pending", "notified", "unreached"),
            "unreached_at": c["unreached_at"], "unreached_hm": hm(unreached_at),
            "unreached_clock": _clock(c["unreached_at"]),
            "told": [{"who": who_text(x["relation"], x["room"], x["name"], lang), "relation": x["relation"],
                      "at": hm(parse_time(x["at"])), "channels": [t(_CHANNEL_ZH.get(ch, ch)) for ch in x["channels"]]}
                     for x in c["told"]] if c["told"] else _EMPTY,
            "told_summary": told_summary({x["relation"] for x in c["told"]}, lang) if c["told"] else "",
            "phone_now": [{"who": who_text(p["relation"], p["room"], p["name"], lang) if p["id"] else
                           relation_text(p["relation"], p["room"], lang), "relation": p["relation"],
                           "numbers": [{"label": t(NUMBER_ZH.get(n["label"], n["label"])), "dial": n["dial"],
                                        "tel": n["number"] if show_phones else ""} for n in p["numbers"]]}
                          for p in c["phone_now"]] if c["phone_now"] else _EMPTY,
            "follow_up": _follow_up(c["follow_up"], lang) if c["follow_up"]["visits"] else _NO_FOLLOW_UP,
        })
    return rows


_CHANNEL_ZH = {c.value: c.zh for c in Channel}
# shared by the rows that have none (2,000 rows: fewer objects for the collector); never changed
_EMPTY: list[Any] = []
_NO_FOLLOW_UP: dict[str, Any] = {"state": None, "visits": _EMPTY}


def _duty_post(duty: dict[str, Any], lang: str) -> str:
    """值班长, 值班领导 — or 青溪镇值班室值班长 for a town's duty room."""
    if duty.get("relation") == "town_duty":
        post = POST_ZH.get(duty.get("post") or "", "")
        if lang == "en":
            return f"town duty room {translator(lang)(post)}".strip()
        return f"{duty.get('room') or '乡镇值班室'}{post}"
    return translator(lang)(RELATION_ZH.get(duty.get("relation") or "", ""))


def _ack_by(c: dict[str, Any], lang: str) -> str:
    """"由AB岗李卫东确认" when someone other than the official answered; "" for the official."""
    relation = c.get("acknowledged_relation")
    if not c.get("acknowledged_at") or relation in (None, "self"):
        return ""
    name = c.get("acknowledged_by_name") or ""
    if relation == "officer":
        return f"acknowledged for them by duty officer {name}" if lang == "en" else f"由值班员 {name} 代为确认"
    label = relation_text(relation, None, lang)
    if lang == "en":
        return f"acknowledged by {label} {name}".replace("  ", " ").strip()
    return f"由{label}{name}确认"


def _follow_up(data: dict[str, Any], lang: str) -> dict[str, Any]:
    """The door-to-door follow-up as the row shows it: who went when, and what they found."""
    t = translator(lang)
    visits = []
    for v in data.get("visits", []):
        visits.append({"who": v["who"], "note": v["note"], "at": hm(parse_time(v["at"])), "iso": v["at"],
                       "by": v["by"].removeprefix("user:"),
                       "results": [{"outcome": r["outcome"], "text": t(OUTCOME_ZH.get(r["outcome"], r["outcome"])),
                                    "note": r["note"], "at": hm(parse_time(r["at"])), "iso": r["at"],
                                    "by": r["by"].removeprefix("user:")} for r in v["results"]]})
    return {"state": data.get("state"), "visits": visits}


def _via(value: str | None) -> str:
    try:
        return AckVia(value).zh if value else ""
    except ValueError:
        return value or ""


def _chips(attempts: list[dict[str, Any]], lang: str, t: Any, whom: dict[tuple[Any, ...], str]) -> list[dict[str, Any]]:
    """The attempts by whom they went to — 本人 first, then in the order each was first tried — each
    chip naming its channel and, for a call, the number (办公电话 when the landline was called)."""
    groups: dict[str, dict[str, Any]] = {}
    for n, a in enumerate(attempts):
        to, channel, status = a["to"], a["channel"], a["status"]
        group = groups.get(to)
        if group is None:
            relation = a.get("relation") or "other"
            key = (relation, a.get("room"), a.get("to_name") or to)
            if key not in whom:
                whom[key] = who_text(relation, key[1], key[2], lang)
            group = groups[to] = {"who": whom[key], "relation": relation, "to": to, "attempts": []}
        label = a.get("number_label") or ""
        group["attempts"].append({
            "channel": channel, "name": t(_CHANNEL_ZH.get(channel, channel)),
            "number": t(NUMBER_ZH[label]) if label in NUMBER_ZH else "", "label": label,
            "icon": ATTEMPT_ICON.get(status, "queued"), "status": status,
            "status_zh": t(ATTEMPT_ZH.get(status, status)), "at": _clock(a["sent_at"]), "error": a["error"] or "",
            "step": a["step"], "n": n})
    chips = list(groups.values())
    if chips and chips[0]["relation"] != "self":
        chips.sort(key=lambda g: g["relation"] != "self")
    return chips


def by_channel(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A row's attempts by channel, in the order they were made within each (the exports' attempts
    column and their ``channels``): what the board showed before its chips said to whom."""
    out: dict[str, list[dict[str, Any]]] = {}
    for a in sorted((a for g in row["chips"] for a in g["attempts"]), key=lambda a: a["n"]):
        out.setdefault(a["channel"], []).append({
            "icon": a["icon"], "status": a["status"], "status_zh": ATTEMPT_ZH.get(a["status"], a["status"]),
            "at": a["at"], "step": a["step"], "error": a["error"]})
    return [{"channel": ch, "name": _CHANNEL_ZH.get(ch, ch), "attempts": items} for ch, items in out.items()]


def choices(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {"towns": sorted({r["town"] for r in rows if r["town"]}),
            "roles": sorted({role for r in rows for role in r["roles"]})}


_BROADCAST_ZH = {"pending": "待发送", "sent": "已下发", "failed": "下发失败", "playing": "正在播发",
                 "completed": "播发完成", "none": "未回执"}


def broadcasts(session: Session, record_id: str) -> list[dict[str, Any]]:
    """The rural broadcast orders of the event and, per village, the latest playback receipt."""
    orders = orders_of(session, record_id)
    if not orders:
        return []
    tree = current_site(session).areas
    latest = latest_receipts(session, record_id)
    out = []
    for order in orders:
        villages = []
        for code in order.areas:
            receipt = latest.get((order.id, code), {})
            state = receipt.get("state", "none")
            villages.append({"code": code, "name": tree.label(code).split("/")[-1], "state": state,
                             "state_zh": _BROADCAST_ZH.get(state, state),
                             "at": _receipt_time(receipt.get("at"))})
        out.append({"id": order.id, "state": order.state, "state_zh": _BROADCAST_ZH.get(order.state, order.state),
                    "repeat": order.repeat, "villages": villages, "error": order.error})
    return out


def _receipt_time(value: Any) -> str:
    """A terminal's receipt time (ISO 8601, any offset) as Beijing time of day; as given otherwise."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return clock_text(parsed) if parsed.tzinfo else value
