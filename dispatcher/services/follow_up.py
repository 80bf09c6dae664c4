"""The door-to-door follow-up of an unreached official (安排上门/现场核实), on the record.

The 未叫醒 list exists so that someone goes and finds the official: a duty officer names who goes
(a village cadre, a grid worker, the town's duty staff) and, later, what they found — the official
reached and told in person, someone else told for them, or nobody found yet. Both are events on the
warning's record (``follow_up_assigned``, ``follow_up_result``), with the duty officer as actor, so
the 一事一档 shows who was sent when and what came of it; nothing else changes (an official found
at home still answers, or is acknowledged on their behalf, the usual way).

Refusals say why in Chinese and English and change nothing: an unknown call-out (NotFound), a
call-out that is not unreached (acknowledged, still open, cancelled), a result with no one sent, an
empty or over-long name, an over-long note, text that cannot be stored.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.record_repo import append_event
from ..db.tables import CalloutRow, EventRow
from ..domain.callouts import CalloutState
from ..domain.record import EventKind
from .errors import NotFound

MAX_WHO = 60  # who goes: a name or two and their post ("村支书吴主任、网格员王芳")
MAX_NOTE = 500


class Outcome(StrEnum):
    REACHED = "reached"  # 已当面告知本人
    RELAYED = "relayed"  # 本人不在，已告知家属或村组干部
    NOT_FOUND = "not_found"  # 未找到本人（继续寻找）

    @property
    def zh(self) -> str:
        return {"reached": "已当面告知本人", "relayed": "本人不在，已告知家属或村组干部",
                "not_found": "未找到本人，继续寻找"}[self.value]


class FollowUpRefused(ValueError):  # noqa: N818 - a refusal with its reason in both languages
    """A follow-up not recorded, and why (``zh``, ``en``); ``status``: 422 for the input, 409 for
    the call-out's state."""

    def __init__(self, zh: str, en: str, status: int = 409) -> None:
        super().__init__(en)
        self.zh, self.en, self.status = zh, en, status

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True)
class Recorded:
    callout: int
    record: str
    seq: int


def clean(value: str | None, *, limit: int, field_zh: str, field_en: str, required: bool) -> str:
    """``value`` stripped; FollowUpRefused (422) when it is empty but required, longer than ``limit``
    characters, or holds a control character (NUL, which no database column takes, among them)."""
    text = (value or "").strip()
    if required and not text:
        raise FollowUpRefused(f"请填写{field_zh}。", f"{field_en.capitalize()} is required.", 422)
    if len(text) > limit:
        raise FollowUpRefused(f"{field_zh}过长：最多 {limit} 个字，现有 {len(text)} 个。",
                              f"{field_en.capitalize()} is too long: at most {limit} characters, "
                              f"not {len(text)}.", 422)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise FollowUpRefused(f"{field_zh}不能包含控制字符（如 \\u0000）。",
                              f"{field_en.capitalize()} must not contain control characters (like \\u0000).", 422)
    return text


def _lock(session: Session, callout_id: int) -> tuple[str, str, str]:
    """(record, official, state) of the call-out, locked for the transaction; NotFound."""
    row = session.execute(select(CalloutRow.record_id, CalloutRow.person_id, CalloutRow.state)
                          .where(CalloutRow.id == callout_id).with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"no call-out {callout_id}")
    return row.record_id, row.person_id, row.state


_STATE_ZH = {"pending": "待发送", "notified": "已通知", "acknowledged": "已确认", "cancelled": "已取消",
             "expired": "预警已过期", "unreached": "未叫醒"}


def assign(session: Session, now: datetime, callout_id: int, *, who: str, note: str = "", by: str) -> Recorded:
    """Send ``who`` to find an unreached official (安排上门/现场核实): a ``follow_up_assigned`` event.
    Another assignment later (someone else goes) is another event."""
    who = clean(who, limit=MAX_WHO, field_zh="上门核实人员", field_en="who goes", required=True)
    note = clean(note, limit=MAX_NOTE, field_zh="说明", field_en="the note", required=False)
    record, person, state = _lock(session, callout_id)
    if state == CalloutState.ACKNOWLEDGED:
        raise FollowUpRefused("该叫应已确认，无需上门核实，未作更改。",
                              "This call-out is acknowledged: no follow-up is needed; nothing changed.")
    if state != CalloutState.UNREACHED:
        raise FollowUpRefused(f"只有未叫醒的叫应才能安排上门核实（当前：{_STATE_ZH.get(state, state)}），未作更改。",
                              f"Only an unreached call-out can be followed up door to door (this one is "
                              f"{state}); nothing changed.")
    event = append_event(session, record, EventKind.FOLLOW_UP_ASSIGNED, by, now,
                         {"callout": callout_id, "person": person, "who": who, "note": note})
    return Recorded(callout_id, record, event.seq)


def record_result(session: Session, now: datetime, callout_id: int, *, outcome: str, note: str = "",
                  by: str) -> Recorded:
    """What the follow-up found (``follow_up_result``), for the latest assignment of the call-out.
    The official may have answered meanwhile: what the visit found is still recorded."""
    try:
        found = Outcome(outcome)
    except ValueError:
        raise FollowUpRefused("请选择核实结果。", "Choose what the follow-up found "
                              f"({', '.join(o.value for o in Outcome)}).", 422) from None
    note = clean(note, limit=MAX_NOTE, field_zh="说明", field_en="the note", required=False)
    record, person, _ = _lock(session, callout_id)
    visits = follow_ups(session, record).get(callout_id, {}).get("visits") or []
    if not visits:
        raise FollowUpRefused("尚未安排上门核实，无法记录结果，未作更改。",
                              "Nobody was sent to follow this call-out up: there is no result to record; "
                              "nothing changed.")
    event = append_event(session, record, EventKind.FOLLOW_UP_RESULT, by, now,
                         {"callout": callout_id, "person": person, "outcome": found.value, "note": note,
                          "assigned": visits[-1]["seq"]})
    return Recorded(callout_id, record, event.seq)


def follow_ups(session: Session, record_id: str) -> dict[int, dict[str, Any]]:
    """Per call-out of the record: its visits (who went, when, by whom, with their results, in
    order) and ``state``: the latest visit's last outcome, or "assigned" while nobody reported."""
    out: dict[int, dict[str, Any]] = {}
    rows = session.execute(select(EventRow.seq, EventRow.at, EventRow.actor, EventRow.kind, EventRow.data).where(
        EventRow.warning_id == record_id,
        EventRow.kind.in_((EventKind.FOLLOW_UP_ASSIGNED.value, EventKind.FOLLOW_UP_RESULT.value)))
        .order_by(EventRow.seq))
    for seq, at, actor, kind, data in rows:
        callout = data.get("callout") if isinstance(data, dict) else None
        if not isinstance(callout, int):
            continue
        entry = out.setdefault(callout, {"state": None, "visits": []})
        if kind == EventKind.FOLLOW_UP_ASSIGNED:
            entry["visits"].append({"seq": seq, "at": at.isoformat(), "by": actor, "who": data.get("who", ""),
                                    "note": data.get("note", ""), "results": []})
            entry["state"] = "assigned"
        elif entry["visits"]:
            visit = next((v for v in entry["visits"] if v["seq"] == data.get("assigned")), entry["visits"][-1])
            visit["results"].append({"seq": seq, "at": at.isoformat(), "by": actor,
                                     "outcome": data.get("outcome", ""), "note": data.get("note", "")})
            if visit is entry["visits"][-1]:
                entry["state"] = data.get("outcome") or "assigned"
    return out
