"""``jiaoying report``: the period assessment (考核) — how the officials answered their call-outs
between two local days, per town, role, person and month, drills apart; as tables, JSON, .xlsx or CSV.

The figures come from ``services/assessment.py`` (the board's ``/board/report`` shows the same).
Bad input (a date that is not one, --from after --to, a period over five years, an output folder
that does not exist) is one line on stderr, exit 1, and nothing is written.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from .cli_lang import LangOption, checked_lang

if TYPE_CHECKING:
    from .services.assessment import Assessment, Translate


def report(
    start: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD (the county's calendar)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD, included")] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="also write the workbook (.xlsx) here")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="also write a CSV (UTF-8 with BOM) here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    lang: LangOption = "zh",
) -> None:
    """Period assessment (考核): per town, role and person — warnings, call-outs, acknowledged within
    5/15/30 minutes, by someone else, unreached, median time to acknowledge; by month; the people most
    often unreached. Real warnings only; drills in their own section."""
    from .board.i18n import translator
    from .cli import database_url, fail
    from .db.session import transaction
    from .services.assessment import PeriodError, assess, parse_period, to_csv, to_xlsx
    from .services.errors import NotReady
    from .services.site import current_site

    checked_lang(lang)
    missing = [name for name, value in (("--from", start), ("--to", end)) if value is None]
    if missing:
        raise fail(("缺少 " if lang == "zh" else "missing ") + " ".join(missing)
                   + (" (如 --from 2026-06-01 --to 2026-09-30)" if lang == "zh" else
                      " (e.g. --from 2026-06-01 --to 2026-09-30)"))
    try:
        first, last = parse_period(start, end)
    except PeriodError as exc:
        raise fail(escape(exc.text(lang))) from None
    targets = [(opt, path) for opt, path in (("--xlsx", xlsx), ("--csv", csv_file)) if path is not None]
    for option, path in targets:
        if path.is_dir():
            raise fail(escape(f"{option} {path}: " + ("是一个文件夹" if lang == "zh" else "is a folder")))
        if not path.parent.is_dir():
            raise fail(escape(f"{option} {path}: " + (f"文件夹 {path.parent} 不存在" if lang == "zh"
                                                       else f"no such folder: {path.parent}")))
    if xlsx is not None and csv_file is not None and xlsx.resolve() == csv_file.resolve():
        raise fail("--xlsx 与 --csv 不能是同一个文件" if lang == "zh" else "--xlsx and --csv name the same file")

    t = translator(lang)
    url = database_url()  # a database never upgraded, behind or unreachable: one line, nothing created
    try:
        with transaction(url, write=False) as session:
            result = assess(session, current_site(session), first, last)
    except NotReady as exc:
        raise fail(escape(str(exc))) from None

    written = []
    if xlsx is not None:
        _write(xlsx, to_xlsx(result, t))
        written.append(xlsx)
    if csv_file is not None:
        _write(csv_file, to_csv(result, t).encode("utf-8"))
        written.append(csv_file)
    if as_json:
        sys.stdout.write(json.dumps(result.as_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        _print(result, t)
    note = Console(stderr=as_json, highlight=False)
    for path in written:
        note.print(t("已写入 {file}").format(file=path), markup=False, soft_wrap=True)


def _write(path: Path, body: bytes) -> None:
    """Written beside the target and moved over it: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _print(result: Assessment, t: Translate) -> None:
    from .services.assessment import metric_cells, metric_headers, period_text, person_cells, tables

    # Wide tables: a pipe or a file gets them whole; a terminal, as wide as it is.
    console = Console(width=None if sys.stdout.isatty() else 220, highlight=False)
    console.print(Text(f"{t('叫应考核')} {result.site}  {period_text(result, t)}  ({result.timezone})",
                       style="bold"), soft_wrap=True)
    headers = metric_headers(t, result.windows)
    for part, section in ((t("真实预警"), result.real), (t("演练"), result.drills)):
        console.print()
        console.rule(f"[bold]{part}[/]")
        if not section.total.callouts:
            console.print(Text(t("本期无叫应记录") if section is result.real else t("本期无演练")))
            continue
        for table in tables(section, t):
            if not table.lines:
                continue
            rich = RichTable(title=f"{part} · {table.title}", title_justify="left", show_lines=False)
            for i, label in enumerate(table.lead):
                rich.add_column(label, no_wrap=i == 0)
            for label in headers:
                rich.add_column(label, justify="right", no_wrap=True)
            for line in table.lines:
                cells = [line.name, *(person_cells(line, t) if table.person else []), *metric_cells(line)]
                rich.add_row(*(Text(cell) for cell in cells))  # names are text, never rich markup
            console.print(rich)
    from .services.assessment import rollcall_table, spotcheck_table

    if result.rollcalls:  # 到岗率 per duty room and month
        _rate_table(console, t("值班点名"), t("到岗率"), *rollcall_table(result, t), words=2)
    if result.spotchecks:  # 答全率 per town
        _rate_table(console, t("六问抽查"), t("答全率"), *spotcheck_table(result, t), words=1)


def _rate_table(console: Console, part: str, title: str, header: list[str], rows: list[list[object]],
                words: int) -> None:
    """A routine check's table: ``words`` columns of names, then counts, the last a rate in %."""
    console.print()
    console.rule(f"[bold]{escape(part)}[/]")
    rich = RichTable(title=title, title_justify="left")
    for i, label in enumerate(header):
        rich.add_column(label, justify="left" if i < words else "right", no_wrap=True)
    last = len(header) - 1
    for row in rows:
        rich.add_row(*(Text("—" if v is None else f"{v}%" if i == last else str(v)) for i, v in enumerate(row)))
    console.print(rich)
