"""A site's roster, responsibilities and duty rota as a workbook, for checking and printing.

Sheets: 通讯录 (the headers `jiaoying import xlsx` reads, every field of every person, so export
then import gives the same people), 包保 (one row per person and responsibility, a view that is not
read back) and 值班表 (the county duty room's weekly rota and dated shifts, then each town duty
room's). Each sheet has a title row, then a bold, frozen
header row that is repeated on every printed page (A4 landscape, fitted to the page width).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ..domain.site import DEFAULT_TZ
from ..sites import check_site
from .numbers import for_display
from .reader import Problem
from .roster_import import (
    EXPORT_ONLY_SHEETS,
    HEADER,
    IM_COLUMNS,
    PHONE_COLUMNS,
    as_list,
    clean_name,
    is_baobao,
    number_slots,
)
from .site_files import SiteFiles, plain, read_site, squeeze

ROSTER_SHEET = "通讯录"
RESPONSIBILITY_SHEET, DUTY_SHEET = EXPORT_ONLY_SHEETS
ROSTER_COLUMNS = ("name", "unit", "roles", *PHONE_COLUMNS, "email", *IM_COLUMNS, "area", "responsible", "duties",
                  "deputy", "superior")
# columns of text cells, so that Excel keeps 0572-…, long numbers and numeric ids as written
TEXT_HEADERS = {HEADER[c] for c in (*PHONE_COLUMNS, *IM_COLUMNS)} | {"值班电话"}
RESPONSIBILITY_HEADERS = ("姓名", "单位", "职务", "类别", "区域/片区")
DUTY_HEADERS = ("值班室", "日期/星期", "开始", "时长", "值班领导", "值班长", "值班员")
WEEKDAY_ZH = {"mon": "星期一", "tue": "星期二", "wed": "星期三", "thu": "星期四", "fri": "星期五", "sat": "星期六",
              "sun": "星期日"}
JOIN = "、"

_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(vertical="center", wrap_text=True)
_MAX_WIDTH = 40
# Named styles: one assignment a cell (setting border and alignment one by one is 10x slower).
_CELL, _TEXT_CELL = "jiaoying-cell", "jiaoying-text"


@dataclass
class ExportReport:
    problems: list[Problem]
    people: int = 0
    responsibilities: int = 0
    duty_rows: int = 0

    def summary(self, target: Path) -> str:
        return (f"wrote {target}: {self.people} people ({ROSTER_SHEET}), {self.responsibilities} responsibilities "
                f"({RESPONSIBILITY_SHEET}), {self.duty_rows} duty rows ({DUTY_SHEET})")


def export_workbook(site_dir: Path, target: Path) -> ExportReport:
    """Write the workbook for the site in ``site_dir`` to ``target``; a site with problems (see
    ``jiaoying validate``) is not exported, and its problems are returned."""
    _, problems = check_site(Path(site_dir))
    if problems:
        return ExportReport([Problem(f"{p.file}:{p.line}", p.message) for p in problems])
    site, read_problems = read_site(Path(site_dir))
    if site is None:
        return ExportReport(read_problems)
    book = Workbook()
    book.add_named_style(NamedStyle(_CELL, border=_BORDER, alignment=_WRAP))
    book.add_named_style(NamedStyle(_TEXT_CELL, border=_BORDER, alignment=_WRAP, number_format="@"))
    names = Names(site)
    report = ExportReport([])
    roster = book.active
    assert roster is not None
    roster.title = ROSTER_SHEET
    report.people = _roster_sheet(roster, site, names)
    report.responsibilities = _responsibility_sheet(book.create_sheet(RESPONSIBILITY_SHEET), site, names)
    report.duty_rows = _duty_sheet(book.create_sheet(DUTY_SHEET), site, names)
    _save(book, Path(target))
    return report


class Names:
    """How people and roles are written so that the import finds each one again."""

    def __init__(self, site: SiteFiles) -> None:
        self.site = site
        self.people = {plain(p.get("id")): p for p in site.people}
        names = Counter(clean_name(plain(p.get("name"))) for p in site.people)
        name_units = Counter((clean_name(plain(p.get("name"))), squeeze(plain(p.get("unit")))) for p in site.people)
        self.person_text: dict[str, str] = {}
        for pid, person in self.people.items():
            name, unit = plain(person.get("name")), plain(person.get("unit"))
            numbers = [n for slot in number_slots(person).values() for n in slot]
            if names[clean_name(name)] == 1:
                self.person_text[pid] = name
            elif unit and name_units[(clean_name(name), squeeze(unit))] == 1:
                self.person_text[pid] = f"{name}（{unit}）"
            elif numbers:
                self.person_text[pid] = f"{name}（{for_display(numbers[0])}）"
            else:
                self.person_text[pid] = pid
        display = Counter(squeeze(name) for name in site.roles.values())
        self.role_text = {rid: name if display[squeeze(name)] == 1 and not _has_separator(name) else rid
                          for rid, name in site.roles.items()}

    def person(self, pid: Any) -> str:
        text = plain(pid)
        return self.person_text.get(text, text)

    def name(self, pid: Any) -> str:
        text = plain(pid)
        return plain(self.people[text].get("name")) if text in self.people else text

    def roles(self, role_ids: Any) -> str:
        return JOIN.join(self.role_text.get(plain(r), plain(r)) for r in as_list(role_ids))

    def places(self, duty: dict[str, Any]) -> str:
        areas = [self.site.areas.label(plain(a), with_zones=True) for a in as_list(duty.get("areas"))]
        zones = [self.site.areas.zone_label(plain(z)) for z in as_list(duty.get("zones"))]
        return JOIN.join(areas + zones)

    def duty(self, duty: dict[str, Any]) -> str:
        """A responsibility as the 其他责任 column writes it: ``包村：龙潭村、潭头村``, with the roles
        it is held in: ``监测员（山洪灾害监测员）：白岩沟小流域``."""
        roles = self.roles(duty.get("roles"))
        return f"{plain(duty.get('kind')) or '包保'}{f'（{roles}）' if roles else ''}：{self.places(duty)}"


def _has_separator(text: str) -> bool:
    return any(ch in text for ch in "、，,;；\n")


# -- 通讯录 --------------------------------------------------------------------------------------

def _roster_sheet(sheet: Worksheet, site: SiteFiles, names: Names) -> int:
    rows = [[values[c] for c in ROSTER_COLUMNS] for values in (roster_values(p, site, names) for p in site.people)]
    _table(sheet, f"{site.name}{ROSTER_SHEET}", [HEADER[c] for c in ROSTER_COLUMNS], rows, freeze="B3")
    return len(rows)


def roster_values(person: dict[str, Any], site: SiteFiles, names: Names) -> dict[str, str]:
    """A person's 通讯录 cells by column (``ROSTER_COLUMNS``), as the import reads them back to the
    same person. The 包保 column holds the first responsibility when it is a 包保 held in all the
    person's roles; 其他责任 holds the others, in order, separated by ；."""
    slots = number_slots(person)
    duties = [d for d in as_list(person.get("responsibilities")) if isinstance(d, dict)]
    first = duties[:1] if duties and is_baobao(duties[0]) and not as_list(duties[0].get("roles")) else []
    im = person.get("im") if isinstance(person.get("im"), dict) else {}
    values = {
        "name": plain(person.get("name")),
        "unit": plain(person.get("unit")),
        "roles": names.roles(person.get("roles")),
        **{slot: JOIN.join(for_display(n) for n in slots[slot]) for slot in PHONE_COLUMNS},
        "email": plain(person.get("email")),
        **{key: plain(im.get(key)) for key in IM_COLUMNS},
        "area": site.areas.label(plain(person.get("area"))),
        "responsible": names.places(first[0]) if first else "",
        "duties": "；".join(names.duty(d) for d in duties[len(first):]),
        "deputy": names.person(person.get("deputy")) if plain(person.get("deputy")) else "",
        "superior": names.person(person.get("superior")) if plain(person.get("superior")) else "",
    }
    return values


# -- 包保 ----------------------------------------------------------------------------------------

def _responsibility_sheet(sheet: Worksheet, site: SiteFiles, names: Names) -> int:
    rows = []
    for person in site.people:
        for duty in as_list(person.get("responsibilities")):
            if not isinstance(duty, dict):
                continue
            held = duty.get("roles") or person.get("roles")
            rows.append([plain(person.get("name")), plain(person.get("unit")), names.roles(held),
                         plain(duty.get("kind")) or "包保", names.places(duty)])
    _table(sheet, f"{site.name}包保责任表", list(RESPONSIBILITY_HEADERS), rows)
    return len(rows)


# -- 值班表 --------------------------------------------------------------------------------------

def _duty_sheet(sheet: Worksheet, site: SiteFiles, names: Names) -> int:
    tz = _zone(site.timezone)
    rows = _room_rows(f"{site.name}值班室", site.duty, names, tz)
    for room in as_list(site.duty.get("rooms")):
        if isinstance(room, dict):
            area = plain(room.get("area"))
            title = plain(room.get("name")) or f"{site.areas.tree.name(area)}值班室"
            rows += _room_rows(title, room, names, tz)
    _table(sheet, f"{site.name}值班表", list(DUTY_HEADERS), rows)
    return len(rows)


def _room_rows(room: str, rota: dict[str, Any], names: Names, tz: tzinfo) -> list[list[str]]:
    rows = []
    for entry in as_list(rota.get("weekly")):
        if isinstance(entry, dict):
            hours = entry.get("hours")
            span = _hours(float(hours) if isinstance(hours, int | float) and not isinstance(hours, bool) else 24.0)
            rows.append([room, WEEKDAY_ZH.get(plain(entry.get("day")).lower(), plain(entry.get("day"))),
                         plain(entry.get("start")), span, *_on_duty(entry, names)])
    shifts = []
    for entry in as_list(rota.get("shifts")):
        if isinstance(entry, dict):
            start, end = _when(entry.get("start"), tz), _when(entry.get("end"), tz)
            if start and end:
                shifts.append((start, end, entry))
    for start, end, entry in sorted(shifts, key=lambda s: s[0]):
        rows.append([room, start.date().isoformat(), start.strftime("%H:%M"),
                     _hours((end - start).total_seconds() / 3600), *_on_duty(entry, names)])
    return rows


def _on_duty(entry: dict[str, Any], names: Names) -> list[str]:
    leader, chief = entry.get("leader"), entry.get("chief")
    return [names.name(leader) if leader else "", names.name(chief) if chief else "",
            JOIN.join(names.name(p) for p in as_list(entry.get("staff")))]


def _when(value: Any, tz: tzinfo) -> datetime | None:
    try:
        moment = datetime.fromisoformat(plain(value))
    except ValueError:
        return None
    return moment.astimezone(tz) if moment.tzinfo else moment


def _hours(hours: float) -> str:
    whole, minutes = int(hours), round((hours - int(hours)) * 60)
    return f"{whole}小时" + (f"{minutes}分" if minutes else "")


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name) if name else DEFAULT_TZ
    except (ZoneInfoNotFoundError, ValueError):
        return DEFAULT_TZ


# -- layout --------------------------------------------------------------------------------------

def _table(sheet: Worksheet, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
           freeze: str = "A3") -> None:
    """Title in row 1, the header row in row 2 (bold, frozen, repeated when printed), then the rows;
    phone columns are text cells, so Excel keeps 0572-… and long numbers as written."""
    width = len(headers)
    sheet.cell(1, 1, title).font = _TITLE
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    for col, header in enumerate(headers, 1):
        cell = sheet.cell(2, col, header)
        cell.font, cell.fill, cell.border, cell.alignment = _BOLD, _HEADER_FILL, _BORDER, _WRAP
    styles = [_TEXT_CELL if header in TEXT_HEADERS else _CELL for header in headers]
    for number, row in enumerate(rows, 3):
        for col, value in enumerate(row, 1):
            sheet.cell(number, col, value if value != "" else None).style = styles[col - 1]
    for col, header in enumerate(headers, 1):
        longest = max([_display_width(header)] + [_display_width(r[col - 1]) for r in rows])
        sheet.column_dimensions[get_column_letter(col)].width = min(_MAX_WIDTH, max(6, longest + 2))
    sheet.freeze_panes = freeze
    last = f"{get_column_letter(width)}{max(2, len(rows) + 2)}"
    sheet.auto_filter.ref = f"A2:{last}"
    sheet.print_title_rows = "2:2"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True


def _display_width(text: str) -> int:
    """Columns a text takes: Chinese characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def _save(book: Workbook, target: Path) -> None:
    """Saved beside the target and then moved over it: a reader never sees half a workbook."""
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".xlsx", dir=target.parent)
    os.close(fd)
    try:
        book.save(tmp)
        if target.exists():
            shutil.copymode(target, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
