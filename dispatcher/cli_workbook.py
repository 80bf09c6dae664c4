"""``jiaoying import xlsx`` and ``jiaoying export xlsx``: the county's roster workbook (通讯录).

The import reads the workbook as counties keep it and writes the site's people.yaml; every problem
is printed as ``FILE.xlsx!Sheet!C12: message`` and nothing is written when there is any. The export
writes the roster, responsibilities and duty rota to a workbook for checking and printing. See
docs/workbook.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import_app = typer.Typer(help="Import a county's files into a site folder.", no_args_is_help=True)
export_app = typer.Typer(help="Export a site folder to files for checking and printing.", no_args_is_help=True)


def _say(text: str) -> None:
    from .cli import out

    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _problem(text: str) -> None:
    from .cli import err

    err.print(text, markup=False, highlight=False, soft_wrap=True)


@import_app.command("xlsx")
def import_xlsx(
    file: Annotated[Path, typer.Argument(help="the roster workbook (通讯录.xlsx)")],
    site: Annotated[Path, typer.Option("--site", help="the site folder (rosters/<site>) whose people.yaml is written")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would change; write nothing")] = False,
) -> None:
    """Read a roster workbook (姓名, 手机, 备用电话, 办公电话, 卫星电话, 职务, 单位, 区域, AB岗, 上级, 包保,
    其他责任, 邮箱, 钉钉, 企业微信, 飞书) and write the site's people.yaml; print who is added, changed
    and removed. Nothing is written if any row has a problem."""
    from .cli import fail
    from .workbook import apply, plan_import

    if not file.is_file():
        raise fail(f"no such workbook: {file}")
    if not site.is_dir():
        raise fail(f"no such site folder: {site}")
    plan = plan_import(file, site)
    for problem in plan.problems:
        _problem(str(problem))
    if plan.problems:
        for why in plan.skipped:
            _problem(f"note: skipped sheet {why}")
        raise fail(f"{len(plan.problems)} problem(s) in {file.name}; nothing was written")
    for line in plan.summary():
        _say(line)
    if dry_run:
        _say(f"dry run: nothing written ({plan.target} unchanged)")
    elif apply(plan):
        _say(f"wrote {plan.target}")
    else:
        _say(f"{plan.target} is already up to date; not rewritten")


@export_app.command("xlsx")
def export_xlsx(
    file: Annotated[Path, typer.Argument(help="the workbook to write (e.g. 通讯录.xlsx)")],
    site: Annotated[Path, typer.Option("--site", help="the site folder (rosters/<site>)")],
) -> None:
    """Write the site's roster (通讯录), responsibilities (包保) and duty rota (值班表) to a workbook;
    `jiaoying import xlsx` reads its 通讯录 sheet back."""
    from .cli import fail
    from .workbook import export_workbook

    if not site.is_dir():
        raise fail(f"no such site folder: {site}")
    if not file.parent.is_dir():
        raise fail(f"no such folder: {file.parent}")
    report = export_workbook(site, file)
    for problem in report.problems:
        _problem(str(problem))
    if report.problems:
        raise fail(f"{len(report.problems)} problem(s) in {site} (see `jiaoying validate`); nothing was written")
    _say(report.summary(file))
