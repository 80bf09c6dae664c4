"""Terminal renderings (rich) shared by the CLI and the demo. Chinese first."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .domain.callouts import AckVia, CalloutState
from .domain.channels import Channel
from .domain.hazards import Hazard, Level

LEVEL_STYLE = {"red": "bold white on red", "orange": "bold black on dark_orange", "yellow": "black on yellow",
               "blue": "white on blue"}
TO_ZH = {"self": "本人", "deputy": "副职", "superior": "上级", "duty": "值班"}
# the status view's recipients and acknowledgers, as the board names them (services/callout_views.Relation)
WHO_ZH = {"self": "本人", "deputy": "AB岗", "superior": "上级", "duty_leader": "值班领导", "duty_chief": "值班长",
          "duty_staff": "值班员", "town_duty": "乡镇值班室", "officer": "值班员 ", "other": ""}


def _steps(steps: list[dict[str, Any]]) -> str:
    parts = []
    for s in steps:
        minutes = s["after_seconds"] // 60
        channels = "+".join(Channel(c).zh for c in s["channels"])
        to = "/".join(TO_ZH.get(t, t) for t in s["to"])
        who = "" if s["to"] == ["self"] else f"→{'、'.join(r['name'] for r in s['recipients']) or '无人'}"
        held = f"(夜间暂缓{'+'.join(Channel(c).zh for c in s['held'])})" if s["held"] else ""
        mark = "未叫醒→" if s["final"] else ""
        parts.append(f"{minutes}分 {mark}{to}{who} {channels}{held}")
    return "\n".join(parts)


def preview_table(result: dict[str, Any], lang: str = "zh") -> list[RenderableType]:
    """The preview as a table: per official the plan, the target (its number in the plan) and why
    (``lang`` en: the reasons in English; the rest stays as it is)."""
    level = Level(result["level"])
    title = Text.assemble(
        (f" {Hazard(result['hazard']).zh}{level.zh}预警 ", LEVEL_STYLE[level.value]),
        f"  {'、'.join([a['name'] for a in result['areas']] + [z['name'] for z in result.get('zones', [])])}  ",
        f"方案 plans: {', '.join(result['plans']) or '无 none'}  ",
        f"叫应对象 officials: {result['officials']}",
    )
    duty = result["duty"]
    duty_line = Text(
        f"值班 on duty: 值班领导 {duty['leader']['name'] if duty['leader'] else '—'} · "
        f"值班长 {duty['chief']['name'] if duty['chief'] else '—'} · "
        f"值班员 {'、'.join(s['name'] for s in duty['staff']) or '—'}"
    )
    table = Table("姓名 name", "岗位 role", "区域 area", "方案 plan", "目标 target", "为何叫应 why", "步骤 steps",
                  "可用渠道 channels", show_lines=True, expand=False)
    for c in result["callouts"]:
        o = c["official"]
        why = (c.get("reason_en") or c["reason"]) if lang == "en" else c["reason"]
        table.add_row(escape(o["name"]), escape("、".join(o["roles"])), escape(o["area_name"]), escape(c["plan"]),
                      str(c["target"]) if c.get("target") else "—", escape(why), escape(_steps(c["steps"])),
                      " ".join(Channel(ch).zh for ch in o["channels"]) or "[red]无[/]")
    out: list[RenderableType] = [title, duty_line, table]
    if result["gaps"]:
        gaps = Table("准备缺口 readiness gaps", "plan", style="yellow")
        for g in result["gaps"]:
            gaps.add_row(g["message"], g["plan"])
        out.append(gaps)
    else:
        out.append(Text("准备缺口 readiness gaps: 无 none", style="green"))
    if result.get("capacity") is not None:
        out.extend(_capacity(result["capacity"]))
    return out


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}秒" if value < 60 else f"{round(value / 60, 1):g}分"


def _capacity(cap: dict[str, Any]) -> list[RenderableType]:
    """The capacity section of a preview: how long each step takes under the rate limits."""
    limits = "  ".join(f"{Channel(ch).zh} {rate}" for ch, rate in cap["limits"].items()) or "无限制 unlimited"
    table = Table("方案 plan", "步骤 step", "开始 starts", "发送量 messages", "用时 takes", "时限 until next", "",
                  title=f"容量 capacity  限速 limits: {limits}", expand=False)
    for s in cap["steps"]:
        sends = "\n".join(f"{Channel(ch).zh} {c['messages']}" + (f" @{c['limit']} {_seconds(c['seconds'])}"
                                                                  if c["limit"] else "")
                          for ch, c in s["channels"].items()) or "—"
        table.add_row(s["plan"], "未叫醒" if s["final"] else str(s["step"]), _seconds(s["after_seconds"]),
                      sends, _seconds(s["seconds"]), _seconds(s["deadline_seconds"]),
                      "[green]✔[/]" if s["fits"] else "[bold red]✖[/]")
    out: list[RenderableType] = [
        table, Text(f"首轮发完 first round sent after {_seconds(cap['first_round_seconds'])}"),
    ]
    if cap["warnings"]:
        warnings = Table("容量不足 over capacity", style="yellow")
        for w in cap["warnings"]:
            warnings.add_row(w)
        out.append(warnings)
    else:
        out.append(Text("容量 capacity: 各步骤均能按时发完 every step fits", style="green"))
    return out


STATE_STYLE = {"pending": ("…", "dim"), "notified": ("☎", "yellow"), "acknowledged": ("✔", "green"),
               "unreached": ("✖", "bold red"), "cancelled": ("–", "dim"), "expired": ("⌛", "dim")}
ATTEMPT_MARK = {"queued": "·", "sending": "→", "sent": "✓", "delivered": "✓✓", "failed": "✗", "cancelled": "−"}


def _whom(attempt: dict[str, Any]) -> str:
    """AB岗李书记, 上级赵局长, 值班长钱明: the recipient by name, with who they are to the official."""
    return f"{WHO_ZH.get(attempt.get('relation') or '', '')}{attempt.get('to_name') or attempt['to']}"


def status_view(url: str, warning: str | None, now: datetime) -> RenderableType:
    """The live call-out view of ``jiaoying status``: one row per official."""
    from rich.console import Group

    from .db.session import transaction
    from .services import callout_views
    from .services import warnings as queries
    from .services.errors import NotFound, NotReady

    try:
        with transaction(url) as session:
            if warning is None:
                active = queries.list_warnings(session, None, active=True, limit=1)
                if not active:
                    return Text("没有生效中的预警 no active warning")
                warning = active[0]["id"]
            row = queries.get_row(session, warning, None)
            record = row.root_id or row.id
            counts = callout_views.counts(session, record)
            callouts = callout_views.list_callouts(session, record, show_phones=False)
    except (NotFound, NotReady) as exc:
        return Text(str(exc), style="red")
    level = Level(row.level)
    done = counts["acknowledged"]
    total = counts["total"] or 1
    bar = "█" * round(30 * done / total) + "░" * (30 - round(30 * done / total))
    header = Text.assemble(
        (f" {Hazard(row.hazard).zh}{level.zh}预警 ", LEVEL_STYLE[level.value]),
        f" {row.headline}  {warning}  ",
        ("[演练 DRILL] " if row.drill else "", "bold magenta"),
        f"\n已确认 acknowledged {done}/{counts['total']} {bar}  已通知 notified {counts['notified']}  "
        f"待发送 pending {counts['pending']}  ",
        (f"未叫醒 unreached {counts['unreached']}", "bold red" if counts["unreached"] else ""),
        f"  {now.astimezone(ZoneInfo('Asia/Shanghai')):%H:%M:%S}",
    )
    table = Table("姓名 official", "岗位 role", "区域 area", "状态 state", "尝试 attempts", "确认用时 to ack",
                  "下一步 next", expand=False)
    # the board's order (unreached first, then overdue, open, acknowledged); names, never roster ids
    for c in callout_views.order(callouts, now):
        mark, style = STATE_STYLE.get(c["state"], ("?", ""))
        attempts = " ".join(f"{Channel(a['channel']).zh[:2]}{ATTEMPT_MARK.get(a['status'], '?')}"
                            + ("" if a["to"] == c["official"]["id"] else f"→{_whom(a)}") for a in c["attempts"])
        to_ack = f"{c['seconds_to_ack']:.0f}秒" if c["seconds_to_ack"] is not None else ""
        if c["ack_via"]:
            by = c.get("acknowledged_relation")
            who = "" if by in (None, "self") else f"，{WHO_ZH.get(by, '')}{c.get('acknowledged_by_name') or ''}"
            to_ack += f"（{AckVia(c['ack_via']).zh}{who}）"
        nxt = ""
        if c["next_due"] and c["state"] in ("pending", "notified"):
            left = (datetime.fromisoformat(c["next_due"]) - now).total_seconds()
            nxt = f"步骤{c['next_step']} {max(0, left):.0f}秒"
        table.add_row(c["official"]["name"], "、".join(c["official"].get("roles", []))[:16],
                      c["official"].get("area_name", "").split("/")[-1], Text(f"{mark} {CalloutState(c['state']).zh}",
                                                                              style=style),
                      attempts, to_ack, nxt)
    return Group(header, table)
