"""``jiaoying rollcall``: duty roll-calls (值班点名) from the terminal — start one now, list the
latest, show one's results per duty room. The scheduled ones are started by the scheduler
(checks.yaml); the board's 值班点名 page shows the same."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_db import transaction
from .cli_lang import LangOption, checked_lang, word

rollcall_app = typer.Typer(help="Duty roll-calls (值班点名): start one now, list them, show the results.",
                           no_args_is_help=True)

_WORDS = {
    "started": ("已发起 {headline}：{id}（引擎随即呼叫各值班室在班人员）",
                "Started {headline}: {id} (the engine calls everyone on shift in each duty room now)"),
    "room": ("值班室", "Duty room"), "called": ("呼叫", "Called"), "present": ("按时应答", "On time"),
    "late": ("迟到应答", "Late"), "absent": ("未应答", "No answer"), "open": ("等待中", "Waiting"),
    "result": ("结果", "Result"), "manned": ("到岗", "manned"), "unmanned": ("无人值班", "nobody on shift"),
    "missing": ("未到岗", "not answered"), "waiting": ("点名中", "in progress"),
    "none": ("还没有值班点名", "no roll-calls yet"), "id": ("编号", "Id"), "when": ("时间", "At"),
    "what": ("点名", "Roll-call"), "people": ("呼叫人数", "Called"),
}


def _headline(session: Any, rollcall_id: str) -> str:
    """The roll-call's headline (its warning row; the tables are imported with the first transaction)."""
    from .db.tables import WarningRow

    return str(session.get(WarningRow, rollcall_id).headline)


def _w(key: str, lang: str) -> str:
    return word(_WORDS, key, lang)


def _problem(exc: Exception, lang: str, check: str | None) -> str:
    """Why a roll-call was not started, as one line in ``lang`` (the service's words in brackets)."""
    from .services.errors import NotReady

    if lang == "en":
        return str(exc)
    if isinstance(exc, NotReady):
        return f"尚未加载站点文件，请先运行 jiaoying load（{exc}）"
    return f"没有这个值班点名：{check}（{exc}）" if check else f"本县尚未配置值班点名（{exc}）"




@rollcall_app.command("start")
def start(
    check: Annotated[str | None, typer.Option("--check", help="the roll-call's id in checks.yaml (default: the first)")]
    = None,
    lang: LangOption = "zh",
) -> None:
    """Start a duty roll-call now (the engine calls everyone on shift; in production the scheduler)."""
    from .cli import database_url, fail, now
    from .services import rollcalls
    from .services.errors import NotReady

    lang = checked_lang(lang)
    url = database_url()
    try:
        with transaction(url) as session:
            started = rollcalls.start_now(session, check, now(), actor="cli")
            headline = _headline(session, started.id)
    except (rollcalls.UnknownRollCall, NotReady) as exc:
        raise fail(escape(_problem(exc, lang, check))) from None
    Console(highlight=False).print(_w("started", lang).format(headline=headline, id=started.id), markup=False,
                                   soft_wrap=True)


@rollcall_app.command("list")
def list_rollcalls(
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    lang: LangOption = "zh",
) -> None:
    """The latest duty roll-calls."""
    from .cli import database_url
    from .services import rollcalls
    from .services.site import current_site

    lang = checked_lang(lang)
    with transaction(database_url(), write=False) as session:
        rows = rollcalls.history(session, max(1, min(limit, 500)))
        tz = current_site(session).tz if rows else None
    if as_json:
        sys.stdout.write(json.dumps([r | {"at": r["at"].isoformat()} for r in rows], ensure_ascii=False, indent=2)
                         + "\n")
        return
    if not rows:
        Console(highlight=False).print(_w("none", lang), markup=False)
        return
    table = Table(_w("id", lang), _w("when", lang), _w("what", lang), _w("people", lang))
    for r in rows:
        table.add_row(r["id"], f"{r['at'].astimezone(tz):%Y-%m-%d %H:%M}", escape(r["headline"]), str(r["called"]))
    Console(highlight=False).print(table)


@rollcall_app.command("show")
def show(
    rollcall_id: Annotated[str, typer.Argument(help="the roll-call's id (from `jiaoying rollcall list`)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    lang: LangOption = "zh",
) -> None:
    """A roll-call's results per duty room: 到岗 (answered in time), late, no answer, nobody on shift."""
    from .cli import database_url, fail
    from .services import rollcalls

    lang = checked_lang(lang)
    with transaction(database_url(), write=False) as session:
        try:
            results = rollcalls.results(session, rollcall_id)
        except rollcalls.UnknownRollCall:
            message = f"no roll-call {rollcall_id!r}" if lang == "en" else f"没有值班点名 {rollcall_id}"
            raise fail(escape(message)) from None
        headline = _headline(session, rollcall_id)
    if as_json:
        sys.stdout.write(json.dumps({"id": rollcall_id, "headline": headline, "rooms": [
            {"area": r.area, "name": r.name, "called": r.called, "present": r.present, "late": r.late,
             "absent": r.absent, "open": r.open, "unmanned": r.unmanned, "manned": r.manned} for r in results]},
            ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(_w("room", lang), _w("called", lang), _w("present", lang), _w("late", lang), _w("absent", lang),
                  _w("result", lang), title=escape(headline))
    for r in results:
        outcome = "waiting" if r.verdict == "open" else r.verdict
        style = {"manned": "green", "waiting": "yellow"}.get(outcome, "bold red")
        table.add_row(escape(r.name), str(r.called), str(r.present), str(r.late), str(r.absent),
                      f"[{style}]{_w(outcome, lang)}[/]")
    Console(highlight=False).print(table)
