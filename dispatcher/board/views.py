"""What the board shows, built from the read services: overview cards and per-warning rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.tables import BroadcastOrderRow, EventRow
from ..domain.callouts import AckVia, CalloutState
from ..domain.channels import Channel
from ..domain.hazards import Level
from ..rendering import BEIJING
from ..services import callout_views
from ..services import warnings as queries
from ..services.site import current_site

# Not acknowledged this long after the call-out started: shown (and filterable) as overdue.
OVERDUE_AFTER = timedelta(minutes=5)
STATE_ICON = {"pending": "◷", "notified": "✉", "acknowledged": "✔", "unreached": "✖", "cancelled": "⊘",
              "expired": "⌛"}
ATTEMPT_ICON = {"queued": "◷", "sending": "↗", "sent": "✓", "delivered": "✔✔", "failed": "✖", "cancelled": "⊘"}
ATTEMPT_ZH = {"queued": "排队", "sending": "发送中", "sent": "已发出", "delivered": "已送达", "failed": "失败",
              "cancelled": "已撤销"}
LEVEL_ICON = {"red": "▲", "orange": "◆", "yellow": "●", "blue": "■"}
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


def stamp(value: datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def level_view(level: str) -> dict[str, str]:
    lv = Level(level)
    return {"level": lv.value, "level_zh": lv.zh, "level_roman": lv.roman, "level_icon": LEVEL_ICON[lv.value]}


def overview(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Active warnings, worst first: highest level, then most unreached, then most not acknowledged."""
    site = current_site(session)
    cards = []
    for w in queries.list_warnings(session, None, active=True):
        row = queries.get_row(session, w["id"], None)
        counts = callout_views.counts(session, row.root_id or row.id)
        sent = parse_time(w["sent"])
        cards.append(w | level_view(w["level"]) | {
            "counts": counts, "since": (now - sent).total_seconds() if sent else 0,
            "sent_text": stamp(sent), "sent_iso": w["sent"],
            "area_names": [site.areas.name(a) for a in w["areas"]],
            "rank": Level(w["level"]).rank,
            "pct": {k: _pct(counts[k], counts["total"]) for k in ("acknowledged", "notified", "pending", "unreached")},
        })
    cards.sort(key=lambda c: (-c["rank"], -c["counts"]["unreached"],
                              -(c["counts"]["total"] - c["counts"]["acknowledged"]), c["sent_iso"]))
    return cards


def _pct(part: int, total: int) -> float:
    return round(100 * part / total, 1) if total else 0.0


def board_rows(session: Session, record_id: str, now: datetime, show_phones: bool) -> list[dict[str, Any]]:
    site = current_site(session)
    rows = []
    for c in callout_views.list_callouts(session, record_id, show_phones=show_phones):
        official = c["official"]
        area = official.get("area", "")
        started = parse_time(c["started_at"])
        state = c["state"]
        open_too_long = started is not None and now - started > OVERDUE_AFTER
        rows.append({
            "id": c["id"], "warning": c["warning"], "name": official["name"], "phone": official.get("phone", ""),
            "roles": official.get("roles", []), "unit": official.get("unit", ""),
            "area_name": site.areas.name(area) if area else "", "town": site.areas.name(area[:9]) if area else "",
            "state": state, "state_zh": CalloutState(state).zh, "state_icon": STATE_ICON.get(state, "?"),
            "overdue": state in ("pending", "notified", "unreached") and open_too_long,
            "channels": _channels(c["attempts"]), "to_ack": duration(c["seconds_to_ack"]),
            "seconds": c["seconds_to_ack"],
            "via": _via(c["ack_via"]),
            "ack_by": c["acknowledged_by"] or "", "note": c["ack_note"] or "",
            "ack_at": clock_text(parse_time(c["acknowledged_at"])),
            "next_step": c["next_step"], "next_due": c["next_due"] if state in ("pending", "notified") else None,
            "drill": c["drill"], "open": state in ("pending", "notified", "unreached"),
        })
    return rows


def _via(value: str | None) -> str:
    try:
        return AckVia(value).zh if value else ""
    except ValueError:
        return value or ""


def _channels(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        by_channel.setdefault(a["channel"], []).append({
            "icon": ATTEMPT_ICON.get(a["status"], "?"), "status": a["status"],
            "status_zh": ATTEMPT_ZH.get(a["status"], a["status"]), "at": clock_text(parse_time(a["sent_at"])),
            "step": a["step"], "error": a["error"] or ""})
    names = {c.value: c.zh for c in Channel}
    return [{"channel": ch, "name": names.get(ch, ch), "attempts": items} for ch, items in by_channel.items()]


def choices(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {"towns": sorted({r["town"] for r in rows if r["town"]}),
            "roles": sorted({role for r in rows for role in r["roles"]})}


_BROADCAST_ZH = {"pending": "待发送", "sent": "已下发", "failed": "下发失败", "playing": "正在播发",
                 "completed": "播发完成", "none": "未回执"}


def broadcasts(session: Session, record_id: str) -> list[dict[str, Any]]:
    """The rural broadcast orders of the event and, per village, the latest playback receipt."""
    orders = list(session.scalars(select(BroadcastOrderRow).where(BroadcastOrderRow.record_id == record_id)
                                  .order_by(BroadcastOrderRow.created_at)))
    if not orders:
        return []
    tree = current_site(session).areas
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for data in session.scalars(select(EventRow.data).where(EventRow.warning_id == record_id,
                                                            EventRow.kind == "broadcast_receipt")
                                .order_by(EventRow.seq)):
        latest[(data.get("id", ""), data.get("area", ""))] = data
    out = []
    for order in orders:
        villages = []
        for code in order.areas:
            receipt = latest.get((order.id, code), {})
            state = receipt.get("state", "none")
            villages.append({"code": code, "name": tree.label(code).split("/")[-1], "state": state,
                             "state_zh": _BROADCAST_ZH.get(state, state), "at": receipt.get("at", "")})
        out.append({"id": order.id, "state": order.state, "state_zh": _BROADCAST_ZH.get(order.state, order.state),
                    "repeat": order.repeat, "villages": villages, "error": order.error})
    return out
