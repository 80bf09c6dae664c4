"""Terminal renderings (rich) shared by the CLI and the demo. Chinese first."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from .domain.channels import Channel
from .domain.hazards import Hazard, Level

LEVEL_STYLE = {"red": "bold white on red", "orange": "bold black on dark_orange", "yellow": "black on yellow",
               "blue": "white on blue"}
TO_ZH = {"self": "本人", "deputy": "副职", "superior": "上级", "duty": "值班"}


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


def preview_table(result: dict[str, Any]) -> list[RenderableType]:
    level = Level(result["level"])
    title = Text.assemble(
        (f" {Hazard(result['hazard']).zh}{level.zh}预警 ", LEVEL_STYLE[level.value]),
        f"  {'、'.join(a['name'] for a in result['areas'])}  ",
        f"方案 plans: {', '.join(result['plans']) or '无 none'}  ",
        f"叫应对象 officials: {result['officials']}",
    )
    duty = result["duty"]
    duty_line = Text(
        f"值班 on duty: 值班领导 {duty['leader']['name'] if duty['leader'] else '—'} · "
        f"值班长 {duty['chief']['name'] if duty['chief'] else '—'} · "
        f"值班员 {'、'.join(s['name'] for s in duty['staff']) or '—'}"
    )
    table = Table("姓名 name", "岗位 role", "区域 area", "方案 plan", "步骤 steps", "可用渠道 channels",
                  show_lines=True, expand=False)
    for c in result["callouts"]:
        o = c["official"]
        table.add_row(o["name"], "、".join(o["roles"]), o["area_name"], c["plan"], _steps(c["steps"]),
                      " ".join(Channel(ch).zh for ch in o["channels"]) or "[red]无[/]")
    out: list[RenderableType] = [title, duty_line, table]
    if result["gaps"]:
        gaps = Table("准备缺口 readiness gaps", "plan", style="yellow")
        for g in result["gaps"]:
            gaps.add_row(g["message"], g["plan"])
        out.append(gaps)
    else:
        out.append(Text("准备缺口 readiness gaps: 无 none", style="green"))
    return out
