"""``jiaoying drill``: drills (演练) from the terminal — schedule a blind (双盲) or announced one, start an
announced one now, list them, show a report, end a running one, call off a scheduled one. The board's
演练记录 page does the same (docs/drills.md). Whoever runs these has the database: an admin.

What the drill plays and its options come from flags, or from a file (``--file``, YAML) such as the
sample county's ``rosters/qingxi/drills/*.yaml``; flags given override the file."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_db import transaction

drill_app = typer.Typer(help="Drills (演练): schedule (blind 双盲 or announced), start now, list, show, end, cancel.",
                        no_args_is_help=True)

Opt = typer.Option


def _say(text: str) -> None:
    Console(highlight=False).print(text, markup=False, soft_wrap=True)


def _read_file(path: Path | None) -> dict[str, Any]:
    from .cli import fail

    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise fail(escape(f"{path}: cannot read the drill file: {exc}")) from None
    if not isinstance(data, dict):
        raise fail(escape(f"{path}: expected a mapping (warning: …, broadcast, without, length, at or window)"))
    return data


def _time(value: Any, tz: Any, name: str) -> datetime | None:
    from .domain.drills import DrillError

    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise DrillError(name, f"{str(value)[:40]!r} is not a time, e.g. 2026-07-20T09:30+08:00") from None
    return at if at.tzinfo else at.replace(tzinfo=tz)


def _plan(session: Any, data: dict[str, Any], flags: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """Scenario, options and the times, from the file's ``data`` with the flags over it."""
    from .services import drills

    warning = dict(data.get("warning") or {})
    for key in ("hazard", "level", "areas", "headline", "instruction", "description", "sender", "zones"):
        if flags.get(key) not in (None, "", []):
            warning[key] = flags[key]
    scenario = drills.scenario_from(session, warning)
    without = flags["without"] or data.get("without") or []
    if isinstance(without, str):
        without = [without]
    names = [n for item in without for n in str(item).replace("，", ",").split(",") if n.strip()]
    length = flags["length"] if flags["length"] is not None else data.get("length")
    options = drills.options_from(bool(flags["broadcast"] or data.get("broadcast")), names,
                                  None if length is None else float(length))
    window = data.get("window") if isinstance(data.get("window"), dict) else {}
    return scenario, options, {"at": flags["at"] or data.get("at"),
                               "from": flags["window_from"] or window.get("from"),
                               "to": flags["window_to"] or window.get("to"),
                               "note": flags["note"] or data.get("note") or ""}


FileOpt = Annotated[Path | None, Opt("--file", "-f", help="a drill file (YAML): warning, broadcast, without, "
                                                          "length, at or window (rosters/<site>/drills/)")]
HazardOpt = Annotated[str | None, Opt(help="hazard code, e.g. rainstorm")]
LevelOpt = Annotated[str | None, Opt(help="red, orange, yellow or blue")]
AreasOpt = Annotated[list[str] | None, Opt("--area", help="an area's division code (repeat for more)")]
HeadlineOpt = Annotated[str | None, Opt(help="what the drill's warning says")]
InstructionOpt = Annotated[str | None, Opt(help="what to do")]
SenderOpt = Annotated[str | None, Opt(help="the sender it plays (plans naming senders match on it)")]
BroadcastOpt = Annotated[bool, Opt("--broadcast", help="also order the rural broadcast (where the plans have one)")]
WithoutOpt = Annotated[list[str] | None, Opt("--without", help="a channel (sms, voice, im, email) or provider "
                                                              "(aliyun, tencent, twilio, smtp) to take out; repeat")]
LengthOpt = Annotated[float | None, Opt("--length", help="minutes it runs at most (default 120)")]
NoteOpt = Annotated[str | None, Opt(help="a note kept with the drill")]


@drill_app.command("schedule")
def schedule(
    file: FileOpt = None, hazard: HazardOpt = None, level: LevelOpt = None, area: AreasOpt = None,
    headline: HeadlineOpt = None, instruction: InstructionOpt = None, sender: SenderOpt = None,
    broadcast: BroadcastOpt = False, without: WithoutOpt = None, length: LengthOpt = None, note: NoteOpt = None,
    at: Annotated[str | None, Opt(help="when it starts (the site's local time unless an offset is given)")] = None,
    window_from: Annotated[str | None, Opt("--from", help="or: a window's start; the moment is drawn unseen")] = None,
    window_to: Annotated[str | None, Opt("--to", help="… and its end")] = None,
    announced: Annotated[bool, Opt("--announced", help="an announced drill (default: blind 双盲)")] = False,
) -> None:
    """Schedule a drill: blind (双盲: only admins see it is a drill until it ends) unless --announced."""
    from .cli import database_url, fail, get_settings, now
    from .domain.drills import DrillError
    from .services import drills
    from .services.errors import NotReady
    from .services.site import current_site

    flags = {"hazard": hazard, "level": level, "areas": area or [], "headline": headline, "instruction": instruction,
             "sender": sender, "broadcast": broadcast, "without": without or [], "length": length, "note": note,
             "at": at, "window_from": window_from, "window_to": window_to}
    data = _read_file(file)
    settings = get_settings()
    try:
        with transaction(database_url(settings)) as session:
            tz = current_site(session).tz
            scenario, options, when = _plan(session, data, flags)
            start, stop = _time(when["from"], tz, "from"), _time(when["to"], tz, "to")
            if (start is None) != (stop is None):
                raise DrillError("from" if start is None else "to", "a window needs both --from and --to")
            row = drills.schedule(session, scenario, options, by="cli", now=now(), at=_time(when["at"], tz, "at"),
                                  window=(start, stop) if start and stop else None, blind=not announced,
                                  key=drills.schedule_key(settings.secret_key), note=str(when["note"]))
            shown = (f"{row.window_start.astimezone(tz):%Y-%m-%d %H:%M} – {row.window_end.astimezone(tz):%H:%M} "
                     "(时刻不显示 / the moment is not shown)" if row.window_start and row.window_end
                     else f"{row.at.astimezone(tz):%Y-%m-%d %H:%M:%S}" if row.at else "")
            drill_id, kind = row.id, row.kind
    except (DrillError, NotReady, ValueError) as exc:
        raise fail(escape(str(exc))) from None
    _say(f"已安排{'双盲' if kind == 'blind' else '公开'}演练 / drill scheduled: {drill_id} · {shown}"
         + (f" · 断开 / without: {', '.join(options.without)}" if options.without else ""))
    _say(drill_id)


@drill_app.command("start")
def start(
    file: FileOpt = None, hazard: HazardOpt = None, level: LevelOpt = None, area: AreasOpt = None,
    headline: HeadlineOpt = None, instruction: InstructionOpt = None, sender: SenderOpt = None,
    broadcast: BroadcastOpt = False, without: WithoutOpt = None, length: LengthOpt = None, note: NoteOpt = None,
) -> None:
    """Start an announced drill now (the engine calls at once; labelled 演练 everywhere)."""
    from .cli import database_url, fail, now
    from .domain.drills import DrillError
    from .services import drills
    from .services.errors import NotReady

    flags = {"hazard": hazard, "level": level, "areas": area or [], "headline": headline, "instruction": instruction,
             "sender": sender, "broadcast": broadcast, "without": without or [], "length": length, "note": note,
             "at": None, "window_from": None, "window_to": None}
    data = _read_file(file)
    try:
        with transaction(database_url()) as session:
            scenario, options, when = _plan(session, data, flags)
            row = drills.start_now(session, scenario, options, by="cli", now=now(), note=str(when["note"]))
            drill_id, record = row.id, row.record_id
    except (DrillError, NotReady, ValueError) as exc:
        raise fail(escape(str(exc))) from None
    _say(f"已开始公开演练 / announced drill started: {drill_id} (事件 / record {record})")
    _say(drill_id)


@drill_app.command("list")
def list_drills(
    limit: Annotated[int, Opt(help="how many, newest first")] = 20,
    as_json: Annotated[bool, Opt("--json", help="print JSON")] = False,
) -> None:
    """Every drill (blind ones scheduled or running too: this is an admin's view)."""
    from .cli import database_url
    from .services import drills
    from .services.site import current_site

    with transaction(database_url(), write=False) as session:
        rows = drills.history(session, admin=True, limit=max(1, min(limit, 500)))
        tz = current_site(session).tz if rows else None
    if as_json:
        sys.stdout.write(json.dumps([_plain(r) for r in rows], ensure_ascii=False, indent=2) + "\n")
        return
    if not rows:
        _say("还没有演练 / no drills yet")
        return
    table = Table("编号 Id", "时间 At", "演练 Drill", "类型 Kind", "状态 State", "叫应 Called", "通知 Reached",
                  "5分钟确认 Ack 5 min", "断开 Without")
    for r in rows:
        f = r["figures"]
        when = ("window " + f"{r['window'][0].astimezone(tz):%m-%d %H:%M}–{r['window'][1].astimezone(tz):%H:%M}"
                if r["window"] and r["state"] == "scheduled" else
                f"{r['at'].astimezone(tz):%Y-%m-%d %H:%M}" if r["at"] else "")
        table.add_row(r["id"], when, escape(r["headline"]), r["kind"], r["state"], str(f.called) if f else "",
                      f"{f.reached_pct}%" if f and f.reached_pct is not None else "",
                      str(f.acked_within[-1]) if f else "", ", ".join(r["without"]))
    Console(highlight=False).print(table)


def _plain(r: dict[str, Any]) -> dict[str, Any]:
    f = r["figures"]
    return {k: v for k, v in r.items() if k not in ("figures", "at", "window")} | {
        "at": None if r["window"] and r["state"] == "scheduled" else (r["at"].isoformat() if r["at"] else None),
        "window": [w.isoformat() for w in r["window"]] if r["window"] else None,
        "without": list(r["without"]),
        "figures": None if f is None else {"called": f.called, "reached": f.reached, "acknowledged": f.acknowledged,
                                           "bars": list(f.bars), "reached_within": list(f.reached_within),
                                           "acked_within": list(f.acked_within)}}


@drill_app.command("show")
def show(
    drill_id: Annotated[str, typer.Argument(help="the drill's id (or its record's id)")],
    as_json: Annotated[bool, Opt("--json", help="print JSON")] = False,
    xlsx: Annotated[Path | None, Opt("--xlsx", help="also write the report's workbook here")] = None,
) -> None:
    """A drill's report: reach and acknowledgement against the 3- and 5-minute bars, the unreached,
    every channel failure, what took over, and the drill beside the previous ones."""
    from .cli import database_url, fail
    from .services import drills

    with transaction(database_url(), write=False) as session:
        try:
            result = drills.report(session, drill_id, admin=True)  # the CLI's user is an admin
        except drills.UnknownDrill:
            raise fail(escape(f"没有这个演练 / no drill {drill_id!r}")) from None
        if xlsx is not None:
            xlsx.write_bytes(drills.to_xlsx(session, drill_id, admin=True))
    f = result.figures
    if as_json:
        sys.stdout.write(json.dumps({
            "id": result.id, "record": result.record, "kind": result.kind, "state": result.state,
            "ending": result.ending, "headline": result.scenario.headline, "without": list(result.options.without),
            "broadcast": result.options.broadcast,
            "figures": {"called": f.called, "reached": f.reached, "acknowledged": f.acknowledged, "bars": list(f.bars),
                        "reached_within": list(f.reached_within), "acked_within": list(f.acked_within),
                        "reach_median_s": f.reach_median_s, "reach_p90_s": f.reach_p90_s,
                        "ack_median_s": f.ack_median_s, "ack_p90_s": f.ack_p90_s},
            "unreached": [{"person": p.person_id, "name": p.name, "reached": p.reached} for p in result.unreached],
            "skipped": [{"person": p.person_id, "name": p.name, "by": p.by} for p in result.skipped],
            "failures": [{"person": x.person_id, "channel": x.channel, "provider": x.provider, "step": x.step,
                          "error": x.error, "imposed": x.imposed} for x in result.failures],
            "took_over": [{"person": p.person_id, "channel": p.channel, "provider": p.provider, "step": p.step,
                           "later_s": p.later_s} for p in result.took_over],
            "beside": [{"id": c.id, "at": c.at.isoformat(), "called": c.figures.called,
                        "reached": c.figures.reached, "acked_within": list(c.figures.acked_within),
                        "unreached": c.figures.called - c.figures.acknowledged} for c in result.beside],
        }, ensure_ascii=False, indent=2) + "\n")
        return
    console = Console(highlight=False)
    console.print(f"[bold]{escape(result.scenario.headline)}[/] · {result.id} · {result.kind} · {result.state}"
                  + (f" ({result.ending})" if result.ending else ""))
    if f.called:
        for bar, reached, acked in zip(f.bars, f.reached_within, f.acked_within, strict=True):
            style = "green" if acked == f.called else "bold red"
            console.print(f"  {bar} 分钟 / min: 通知 reached {reached}/{f.called} · 确认 acknowledged "
                          f"[{style}]{acked}/{f.called}[/]")
        console.print(f"  中位数 median: 通知 {drills.minutes_text(f.reach_median_s)} · 确认 "
                      f"{drills.minutes_text(f.ack_median_s)}; P90: {drills.minutes_text(f.reach_p90_s)} · "
                      f"{drills.minutes_text(f.ack_p90_s)}")
    if result.unreached:
        console.print("未确认 / not acknowledged: " + escape("、".join(p.name for p in result.unreached)))
    if result.skipped:
        console.print("未叫应，正被其他演练叫应 / not called, already being called by another drill: " + escape(
            "、".join(f"{p.name}（{p.by}）" if p.by else p.name for p in result.skipped)))
    for p in result.took_over:
        console.print(f"  接替 / took over: {escape(p.name)} ← {p.channel} ({p.provider}), step {(p.step or 0) + 1}, "
                      f"+{drills.minutes_text(p.later_s)}")
    if result.failures:
        console.print(f"通道失败 / channel failures: {len(result.failures)}")
        for x in result.failures[:50]:
            console.print(f"  {escape(x.name)} {x.channel}/{x.provider}: {escape(x.error)}")
    if len(result.beside) > 1:
        table = Table("时间 At", "演练 Drill", "叫应 Called", "通知 Reached", *[f"{b}分钟确认" for b in f.bars],
                      "未确认 Not ack'd", title="历次演练 / beside the previous drills")
        for c in result.beside:
            table.add_row(f"{c.at:%Y-%m-%d %H:%M}", escape(c.headline), str(c.figures.called), str(c.figures.reached),
                          *map(str, c.figures.acked_within), str(c.figures.called - c.figures.acknowledged))
        console.print(table)


@drill_app.command("end")
def end(drill_id: Annotated[str, typer.Argument(help="a running drill's id")]) -> None:
    """End a running drill now: its open call-outs stop (the reached are told, as 【演练】) and it is revealed."""
    _act(drill_id, "end")


@drill_app.command("cancel")
def cancel(drill_id: Annotated[str, typer.Argument(help="a scheduled drill's id")]) -> None:
    """Call off a drill that has not started."""
    _act(drill_id, "cancel")


def _act(drill_id: str, what: str) -> None:
    from .cli import database_url, fail, now
    from .domain.drills import DrillError
    from .services import drills

    try:
        with transaction(database_url()) as session:
            if what == "end":
                drills.end(session, drill_id, by="cli", now=now())
            else:
                drills.cancel_scheduled(session, drill_id, by="cli", now=now())
    except drills.UnknownDrill:
        raise fail(escape(f"没有这个演练 / no drill {drill_id!r}")) from None
    except DrillError as exc:
        raise fail(escape(str(exc))) from None
    _say(f"{'已结束并揭晓 / ended and revealed' if what == 'end' else '已撤销 / called off'}: {drill_id}")
