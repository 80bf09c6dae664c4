"""Period assessment (考核): how the county's officials answered their call-outs over a period.

``assess(session, site, start, end)`` reads the call-outs started between two local calendar days
(inclusive, in the site's time zone) in one query and returns plain dataclasses: for real warnings
and, apart, for drills — the totals, each month, each town, each role and each person, and the
people most often unreached. ``tables`` lays them out as the tables the CLI, the board page and
the exports (``to_xlsx``, ``to_csv``) show, so the three cannot disagree.

The definitions are the board's (``board/stats.py``, ``services/callout_views.py``), so a
warning's record page and the assessment of a period holding only that warning give the same
figures:

- a cancelled call-out (the warning cancelled, or taken over by a higher level) is left out; an
  expired or still open one counts as a call-out not acknowledged;
- time to acknowledge = ``acknowledged_at - started_at``; "within 5 minutes" is at most 300 s;
- acknowledged = the call-out was acknowledged, by whomever: ``by_others`` counts those whose
  ``acknowledged_by`` is not the official (a deputy's reply, a duty officer on their behalf);
- unreached (未叫醒) = the ladder ran out unanswered and nobody answered since (a late answer
  makes it acknowledged, late);
- warnings = distinct warning events (a warning and its updates are one);
- town = the 9-digit town of the official's seat, "县级" for a seat above the towns; role = each of
  the official's roles (a call-out counts once in every role its official holds). Seat and roles
  are the official's as on the roster now; someone no longer on it counts with the seat and roles
  they last had.
"""

from __future__ import annotations

import io
import statistics
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from .. import csvsafe
from ..db.tables import AreaRow, CalloutRow, PersonRow, RoleRow
from ..domain.callouts import ACK_WINDOWS as WINDOWS
from ..domain.callouts import ROLLCALL_HAZARD, SPOTCHECK_HAZARD, CalloutState
from ..domain.site import Site
from . import drills, rollcalls, spotchecks
from .rollcalls import Attendance
from .spotchecks import PeriodFigures

COUNTY_LEVEL = "县级"
NO_ROLE = "未设岗位"
TOTAL = "合计"
MAX_YEARS = 5
MOST_UNREACHED = 10  # how many people the "most often unreached" list names
EARLIEST = date(2000, 1, 1)  # dates outside these are typing mistakes, not periods
LATEST = date(2099, 12, 31)

Translate = Callable[[str], str]


def _same(text: str) -> str:
    return text


# -- the period --------------------------------------------------------------------------------

class PeriodError(ValueError):
    """A period that cannot be assessed; ``zh`` and ``en`` say why, naming the input."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en

    def text(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh


def parse_day(value: str | None, option: str) -> date:
    """A local calendar day written ``YYYY-MM-DD``; ``option`` names the input in the message."""
    text = (value or "").strip()
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{option} 不是有效日期：{text!r}（应为 YYYY-MM-DD，如 2026-06-01）",
                          f"{option} is not a date: {text!r} (expected YYYY-MM-DD, e.g. 2026-06-01)") from None
    if not EARLIEST <= day <= LATEST:
        raise PeriodError(f"{option} 超出范围：{text}（应在 {EARLIEST} 至 {LATEST} 之间）",
                          f"{option} is out of range: {text} (expected {EARLIEST} to {LATEST})")
    return day


def check_period(start: date, end: date, from_name: str = "--from", to_name: str = "--to") -> None:
    """From must not be after to, and a period is at most five years (from 2021-06-01: to 2026-05-31)."""
    if start > end:
        raise PeriodError(f"{from_name} {start} 晚于 {to_name} {end}", f"{from_name} {start} is after {to_name} {end}")
    if end >= _add_years(start, MAX_YEARS):
        raise PeriodError(f"统计区间 {start} 至 {end} 超过 {MAX_YEARS} 年",
                          f"the period {start} to {end} is longer than {MAX_YEARS} years")


def parse_period(start: str | None, end: str | None, from_name: str = "--from",
                 to_name: str = "--to") -> tuple[date, date]:
    first, last = parse_day(start, from_name), parse_day(end, to_name)
    check_period(first, last, from_name, to_name)
    return first, last


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The start of a local calendar day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


# -- the result ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    """One row: a month, a town, a role, a person or the total."""

    key: str  # "2026-07", a town's code ("" for county level), a role id, a person id; "" for the total
    name: str
    warnings: int = 0
    callouts: int = 0
    acknowledged: int = 0
    within: tuple[int, ...] = (0,) * len(WINDOWS)  # acknowledged within each of WINDOWS minutes
    by_others: int = 0  # acknowledged, but by someone else than the official
    unreached: int = 0
    median_seconds: float | None = None  # of the acknowledged ones
    # a person's line only:
    town: str = ""
    roles: tuple[str, ...] = ()
    unit: str = ""
    on_roster: bool = True

    def rate(self, i: int) -> float | None:
        """The share acknowledged within WINDOWS[i] minutes (0..1), None when there was no call-out."""
        return self.within[i] / self.callouts if self.callouts else None


@dataclass(frozen=True)
class Section:
    """The figures of one kind of call-out: real warnings, or drills."""

    total: Line
    by_month: tuple[Line, ...]
    by_town: tuple[Line, ...]
    by_role: tuple[Line, ...]
    by_person: tuple[Line, ...]
    most_unreached: tuple[Line, ...]  # people with an unreached call-out, most first


@dataclass(frozen=True)
class Assessment:
    site: str  # the county's name
    start: date
    end: date  # inclusive
    timezone: str
    windows: tuple[int, ...]
    real: Section
    drills: Section
    generated_at: datetime
    rollcalls: tuple[Attendance, ...] = ()  # 到岗率: per duty room, per month ("") and the whole period ("")
    spotchecks: tuple[PeriodFigures, ...] = ()  # 六问抽查: all ("") and per town

    def as_json(self) -> dict[str, Any]:
        def line(x: Line) -> dict[str, Any]:
            return {"key": x.key, "name": x.name, "warnings": x.warnings, "callouts": x.callouts,
                    "acknowledged": x.acknowledged,
                    "acknowledged_within": {str(m): n for m, n in zip(self.windows, x.within, strict=True)},
                    "acknowledged_by_others": x.by_others, "unreached": x.unreached,
                    "median_seconds_to_ack": x.median_seconds,
                    **({"town": x.town, "roles": list(x.roles), "unit": x.unit, "on_roster": x.on_roster}
                       if x.town else {})}  # a person's line: the only ones with a town

        def section(s: Section) -> dict[str, Any]:
            return {"total": line(s.total), "by_month": [line(x) for x in s.by_month],
                    "by_town": [line(x) for x in s.by_town], "by_role": [line(x) for x in s.by_role],
                    "by_person": [line(x) for x in s.by_person],
                    "most_unreached": [line(x) for x in s.most_unreached]}

        return {"site": self.site, "from": self.start.isoformat(), "to": self.end.isoformat(),
                "timezone": self.timezone, "windows_minutes": list(self.windows),
                "generated_at": self.generated_at.isoformat(), "real": section(self.real),
                "drills": section(self.drills),
                "rollcalls": [{"area": a.area, "name": a.name, "month": a.month or None, "held": a.held,
                               "manned": a.manned, "unmanned": a.unmanned, "rate": a.rate} for a in self.rollcalls],
                "spotchecks": [{"town": f.town or None, "checked": f.checked, "complete": f.complete,
                                "said_no": f.said_no, "missing": f.missing, "rate": f.rate} for f in self.spotchecks]}


# -- the computation -------------------------------------------------------------------------------

class _Acc:
    """Figures being gathered for one group."""

    __slots__ = ("records", "callouts", "acknowledged", "within", "by_others", "unreached", "seconds")

    def __init__(self) -> None:
        self.records: set[str] = set()
        self.callouts = self.acknowledged = self.by_others = self.unreached = 0
        self.within = [0] * len(WINDOWS)
        self.seconds: list[float] = []

    def merge(self, other: _Acc) -> None:
        self.records |= other.records
        self.callouts += other.callouts
        self.acknowledged += other.acknowledged
        self.by_others += other.by_others
        self.unreached += other.unreached
        self.within = [a + b for a, b in zip(self.within, other.within, strict=True)]
        self.seconds.extend(other.seconds)

    def line(self, key: str, name: str, **extra: Any) -> Line:
        return Line(key, name, len(self.records), self.callouts, self.acknowledged, tuple(self.within),
                    self.by_others, self.unreached, statistics.median(self.seconds) if self.seconds else None,
                    **extra)


_LIMITS = tuple(m * 60 for m in WINDOWS)
_ACKNOWLEDGED, _UNREACHED = CalloutState.ACKNOWLEDGED.value, CalloutState.UNREACHED.value


def _months(start: date, end: date) -> list[date]:
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


@dataclass
class _Names:
    """Names for what the report shows: the loaded site first, then what the database still keeps of
    people, roles and areas that have left the site files."""

    site: Site
    people: dict[str, PersonRow] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    areas: dict[str, str] = field(default_factory=dict)

    def role(self, role_id: str) -> str:
        return self.site.roles.get(role_id) or self.roles.get(role_id) or role_id

    def area(self, code: str) -> str:
        found = self.site.areas.get(code)
        return found.name if found else self.areas.get(code, code)


def assess(session: Session, site: Site, start: date, end: date, now: datetime | None = None) -> Assessment:
    """The assessment of the call-outs started from ``start`` to ``end`` (local days, inclusive)."""
    check_period(start, end)
    tz = site.tz
    lo, hi = local_midnight(start, tz), local_midnight(end + timedelta(days=1), tz)
    months = _months(start, end)
    bounds = [local_midnight(m, tz) for m in months]  # each month's start, UTC, for bisecting
    # One query, the columns needed and nothing else (a county's year is about 100,000 rows), as plain
    # rows through the connection: no ORM row processing, no datetime column type. SQLite keeps times
    # as UTC text: parsed here (fromisoformat, in C). PostgreSQL gives the start as epoch seconds and
    # the time to acknowledge as seconds (double precision: exact to the microsecond for these values),
    # so no aware datetimes are compared row by row.
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    c = CalloutRow.__table__.c
    if sqlite:
        started_col, acked_col = type_coerce(c.started_at, String()), type_coerce(c.acknowledged_at, String())
        marks: list[Any] = [b.replace(tzinfo=None) for b in bounds]
    else:
        started_col = func.date_part("epoch", c.started_at)
        acked_col = func.date_part("epoch", c.acknowledged_at - c.started_at)
        marks = [b.timestamp() for b in bounds]
    rows = connection.execute(
        select(c.record_id, c.person_id, c.state, c.drill, started_col, acked_col, c.acknowledged_by)
        .where(c.started_at >= lo, c.started_at < hi, c.state != CalloutState.CANCELLED.value,
               c.hazard.not_in((ROLLCALL_HAZARD, SPOTCHECK_HAZARD)))).all()  # routine checks are counted apart

    # Gathered per (drill, person, month), one group a row; people and months are merged from them.
    groups: dict[tuple[bool, str, int], _Acc] = {}
    parse = datetime.fromisoformat
    hidden = drills.concealed(session)  # a blind drill still running is in no report until it is revealed
    for record, person, state, drill, started, acked, by in rows:
        if record in hidden:
            continue
        if sqlite:
            started = parse(started)
            seconds = (parse(acked) - started).total_seconds() if acked is not None else None
        else:
            seconds = acked
        key = (bool(drill), person, max(0, bisect_right(marks, started) - 1))
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = _Acc()
        acc.records.add(record)
        acc.callouts += 1
        if seconds is not None:
            acc.seconds.append(seconds)
            within = acc.within
            for i, limit in enumerate(_LIMITS):
                if seconds <= limit:
                    within[i] += 1
        if state == _ACKNOWLEDGED:
            acc.acknowledged += 1
            if by is not None and by != person:
                acc.by_others += 1
        elif state == _UNREACHED:
            acc.unreached += 1

    people: tuple[dict[str, _Acc], dict[str, _Acc]] = ({}, {})  # real, drills
    by_month: tuple[list[_Acc], list[_Acc]] = ([_Acc() for _ in months], [_Acc() for _ in months])
    for (drill, person, month), acc in groups.items():
        people[drill].setdefault(person, _Acc()).merge(acc)
        by_month[drill][month].merge(acc)

    names = _names(session, site, {p for kind in people for p in kind})
    month_names = [f"{m.year}-{m.month:02d}" for m in months]
    return Assessment(
        site=_county_name(site), start=start, end=end, timezone=str(getattr(tz, "key", tz)), windows=WINDOWS,
        real=_section(people[0], by_month[0], month_names, names),
        drills=_section(people[1], by_month[1], month_names, names),
        generated_at=now or datetime.now(UTC), rollcalls=tuple(rollcalls.attendance(session, lo, hi, tz)),
        spotchecks=tuple(spotchecks.period(session, lo, hi)))


def _county_name(site: Site) -> str:
    roots = site.areas.roots
    return site.areas.name(roots[0]) if len(roots) == 1 else site.name


def _names(session: Session, site: Site, person_ids: set[str]) -> _Names:
    names = _Names(site)
    missing = sorted(p for p in person_ids if p not in site.people)
    for i in range(0, len(missing), 500):
        names.people.update((r.id, r) for r in session.scalars(
            select(PersonRow).where(PersonRow.id.in_(missing[i:i + 500]))))
    if missing:  # someone who left may have held a role or a seat that has left too
        names.roles = dict(session.execute(select(RoleRow.id, RoleRow.name)).all())
        names.areas = dict(session.execute(select(AreaRow.code, AreaRow.name)).all())
    return names


def _section(people: dict[str, _Acc], months: list[_Acc], month_names: list[str], names: _Names) -> Section:
    site = names.site
    total = _Acc()
    for acc in months:
        total.merge(acc)
    towns: dict[str, _Acc] = {}
    roles: dict[str, _Acc] = {}
    person_lines: list[tuple[str, Line]] = []  # (town code, line)
    for pid, acc in people.items():
        person = site.people.get(pid)
        row = names.people.get(pid)
        if person is not None:
            name, seat, held, unit = person.name, person.area, tuple(person.roles), person.unit
        elif row is not None:
            name, seat, held, unit = row.name, row.area_code, tuple(row.roles or ()), row.unit
        else:  # not even in the database any more: only its id is known
            name, seat, held, unit = pid, "", (), ""
        town = seat[:9] if len(seat) >= 9 else ""
        towns.setdefault(town, _Acc()).merge(acc)
        for role in held or ("",):
            roles.setdefault(role, _Acc()).merge(acc)
        person_lines.append((town, acc.line(pid, name, town=_town_name(town, names), unit=unit,
                                            roles=tuple(names.role(r) for r in held), on_roster=person is not None)))
    role_order = {r: i for i, r in enumerate(site.roles)}
    by_town = tuple(towns[t].line(t, _town_name(t, names)) for t in sorted(towns))
    by_role = tuple(roles[r].line(r, names.role(r) if r else NO_ROLE)
                    for r in sorted(roles, key=lambda r: (role_order.get(r, len(role_order)), r)))
    by_person = tuple(line for _, line in sorted(person_lines, key=lambda p: (p[0], p[1].name, p[1].key)))
    most = sorted((line for line in by_person if line.unreached), key=lambda x: (-x.unreached, -x.callouts))
    return Section(total.line("", TOTAL), tuple(acc.line(n, n) for acc, n in zip(months, month_names, strict=True)),
                   by_town, by_role, by_person, tuple(most[:MOST_UNREACHED]))


def _town_name(town: str, names: _Names) -> str:
    return names.area(town) if town else COUNTY_LEVEL


# -- tables: what the CLI, the board and the exports show ----------------------------------------

@dataclass(frozen=True)
class Table:
    key: str  # month | town | role | person | unreached | total
    title: str
    lead: tuple[str, ...]  # the leading columns' headers: the name, and for people town, roles, unit, note
    lines: tuple[Line, ...]

    @property
    def person(self) -> bool:
        return len(self.lead) > 1


def metric_headers(t: Translate = _same, windows: Sequence[int] = WINDOWS) -> list[str]:
    """The figures' headers as the CLI and the board show them (a count with its rate)."""
    return [t("预警数"), t("叫应次数"), t("已确认"),
            *[t("{m}分钟内确认").format(m=m) for m in windows],
            t("他人代确认"), t("未叫醒"), t("确认用时中位数")]


def export_headers(t: Translate = _same, windows: Sequence[int] = WINDOWS) -> list[str]:
    """The figures' headers in the exports: counts, then rates, the median in minutes."""
    return [t("预警数"), t("叫应次数"), t("已确认"),
            *[t("{m}分钟内确认").format(m=m) for m in windows],
            *[t("{m}分钟确认率").format(m=m) for m in windows],
            t("他人代确认"), t("未叫醒"), t("确认用时中位数（分钟）")]


def person_cells(line: Line, t: Translate = _same) -> list[str]:
    return [line.town, t("、").join(line.roles), line.unit, "" if line.on_roster else t("已不在名册")]


def tables(section: Section, t: Translate = _same) -> list[Table]:
    """A section's tables, in the order they are shown."""
    person_lead = (t("姓名"), t("乡镇"), t("岗位"), t("单位"), t("备注"))
    return [
        Table("total", t("合计"), (t("统计"),), _translated((section.total,), t)),
        Table("month", t("按月份"), (t("月份"),), section.by_month),
        Table("town", t("按乡镇"), (t("乡镇"),), _translated(section.by_town, t)),
        Table("role", t("按岗位"), (t("岗位"),), _translated(section.by_role, t)),
        Table("unreached", t("未叫醒最多的人员"), person_lead, _translated(section.most_unreached, t)),
        Table("person", t("按人员"), person_lead, _translated(section.by_person, t)),
    ]


_OURS = (TOTAL, COUNTY_LEVEL, NO_ROLE)  # the names the report gives, not the roster


def _translated(lines: Iterable[Line], t: Translate) -> tuple[Line, ...]:
    return tuple(replace(x, name=t(x.name) if x.name in _OURS and not x.town else x.name,
                         town=t(x.town) if x.town == COUNTY_LEVEL else x.town) for x in lines)


def duration_text(seconds: float | None) -> str:
    """m:ss (h:mm:ss past an hour), as the board shows a time to acknowledge; "—" for none."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def percent_text(share: float | None) -> str:
    return "—" if share is None else f"{round(100 * share)}%"


def metric_cells(line: Line) -> list[str]:
    """The figures as text: counts, each window's count with its rate, the median as m:ss."""
    return [str(line.warnings), str(line.callouts), str(line.acknowledged),
            *[f"{n} ({percent_text(line.rate(i))})" for i, n in enumerate(line.within)],
            str(line.by_others), str(line.unreached), duration_text(line.median_seconds)]


def metric_values(line: Line) -> list[Any]:
    """The figures as numbers, for the exports: rates as shares (0..1), the median in minutes."""
    return [line.warnings, line.callouts, line.acknowledged, *line.within,
            *[None if line.rate(i) is None else round(line.rate(i) or 0, 4) for i in range(len(line.within))],
            line.by_others, line.unreached,
            None if line.median_seconds is None else round(line.median_seconds / 60, 1)]


def _rows(table: Table, t: Translate) -> Iterable[list[Any]]:
    for line in table.lines:
        yield [line.name, *(person_cells(line, t) if table.person else [])]


# -- exports -------------------------------------------------------------------------------------

def period_text(report: Assessment, t: Translate = _same) -> str:
    return t("{start} 至 {end}").format(start=report.start.isoformat(), end=report.end.isoformat())


def to_csv(report: Assessment, t: Translate = _same) -> str:
    """One flat CSV (UTF-8 with BOM): a row per table line, tagged with its part (real warnings or
    drills) and table, so it filters and pivots in a spreadsheet. Rates are percentages."""
    windows = report.windows
    header = [t("类别"), t("分组"), t("名称"), t("乡镇"), t("岗位"), t("单位"), t("备注"),
              *[h if i not in range(3 + len(windows), 3 + 2 * len(windows)) else f"{h}(%)"
                for i, h in enumerate(export_headers(t, windows))]]
    rows = []
    for part, section in ((t("真实预警"), report.real), (t("演练"), report.drills)):
        for table in tables(section, t):
            for line in table.lines:
                values = metric_values(line)
                for i in range(3 + len(windows), 3 + 2 * len(windows)):
                    values[i] = None if values[i] is None else round(100 * values[i], 1)
                lead = person_cells(line, t) if table.person else ["", "", "", ""]
                rows.append([part, table.title, line.name, *lead, *values])
    return csvsafe.document(header, rows) + (
        "\r\n" + csvsafe.document(*rollcall_table(report, t), bom=False) if report.rollcalls else "") + (
        "\r\n" + csvsafe.document(*spotcheck_table(report, t), bom=False) if report.spotchecks else "")


def to_xlsx(report: Assessment, t: Translate = _same) -> bytes:
    """The workbook: 汇总 (the period and both totals), 按月份, 按乡镇, 按岗位, 按人员, 未叫醒最多,
    and 演练 (every drill table in one sheet, tagged by table). Bold filled headers frozen in row 1,
    column widths to the content, numbers as numbers (rates as percentages, the median in minutes)."""
    from openpyxl import Workbook

    book = Workbook()
    windows = report.windows
    figures = export_headers(t, windows)
    first = book.active
    assert first is not None
    first.title = t("汇总")
    summary_rows: list[list[Any]] = [[t("真实预警"), *metric_values(report.real.total)],
                                     [t("演练"), *metric_values(report.drills.total)]]
    write_sheet(first, [t("类别"), *figures], summary_rows, windows)
    info = [(t("县"), report.site), (t("统计区间"), period_text(report, t)), (t("时区"), report.timezone),
            (t("生成时间"), f"{report.generated_at.astimezone(_zone(report.timezone)):%Y-%m-%d %H:%M}"),
            (t("说明"), t("真实预警与演练分开统计；已取消的叫应不计；确认用时自叫应开始计。"))]
    for offset, (label, value) in enumerate(info, start=len(summary_rows) + 3):
        _text(first.cell(offset, 1), label)
        _text(first.cell(offset, 2), value)
    names = {"month": t("按月份"), "town": t("按乡镇"), "role": t("按岗位"), "person": t("按人员"),
             "unreached": t("未叫醒最多")}
    real = {table.key: table for table in tables(report.real, t)}
    for key in ("month", "town", "role", "person", "unreached"):
        table = real[key]
        write_sheet(book.create_sheet(names[key][:31]), [*table.lead, *figures],
               [[*row, *metric_values(line)] for row, line in zip(_rows(table, t), table.lines, strict=True)],
               windows)
    drill_rows = []
    for table in tables(report.drills, t):
        if table.key == "unreached":
            continue
        for row, line in zip(_rows(table, t), table.lines, strict=True):
            lead = row[1:] if table.person else ["", "", "", ""]
            drill_rows.append([table.title, row[0], *lead, *metric_values(line)])
    write_sheet(book.create_sheet(t("演练")[:31]),
           [t("分组"), t("名称"), t("乡镇"), t("岗位"), t("单位"), t("备注"), *figures], drill_rows, windows)
    if report.rollcalls:
        header, rows = rollcall_table(report, t)
        write_sheet(book.create_sheet(t("值班点名")[:31]), header, rows, ())
    if report.spotchecks:
        header, rows = spotcheck_table(report, t)
        write_sheet(book.create_sheet(t("六问抽查")[:31]), header, rows, ())
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rollcall_table(report: Assessment, t: Translate = _same) -> tuple[list[str], list[list[Any]]]:
    """到岗率 as a table: a row per duty room and month, then the room's whole period (月份 全期)."""
    header = [t("值班室"), t("月份"), t("点名次数"), t("按时应答"), t("无人值班"), t("到岗率")]
    rows = [[a.name, a.month or t("全期"), a.held, a.manned, a.unmanned,
             None if a.rate is None else round(100 * a.rate, 1)] for a in report.rollcalls]
    return header, rows


def spotcheck_table(report: Assessment, t: Translate = _same) -> tuple[list[str], list[list[Any]]]:
    """The 六问 spot-checks as a table: the whole county (全县) first, then each town."""
    header = [t("乡镇"), t("抽查人次"), t("全部作答"), t("有“否”"), t("未答全"), t("答全率")]
    rows = [[f.town or t("全县"), f.checked, f.complete, f.said_no, f.missing,
             None if f.rate is None else round(100 * f.rate, 1)] for f in report.spotchecks]
    return header, rows


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _text(cell: Any, value: Any) -> None:
    """A text cell that stays text: openpyxl would store a string starting with "=" as a formula."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"


def write_sheet(sheet: Any, header: list[str], rows: list[list[Any]], windows: Sequence[int]) -> None:
    """A sheet as every Jiaoying workbook has it: bold filled header frozen in row 1, a filter, text kept
    text, column widths to the content, landscape; rates (the metrics' ``windows`` columns) as percentages."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    metrics_from = len(header) - len(export_headers(_same, windows))
    rates = range(metrics_from + 3 + len(windows), metrics_from + 3 + 2 * len(windows))
    median = len(header) - 1
    for col, title in enumerate(header, 1):
        cell = sheet.cell(1, col)
        _text(cell, title)
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for r, row in enumerate(rows, 2):
        for c, value in enumerate(row):
            cell = sheet.cell(r, c + 1)
            _text(cell, value if value != "" else None)
            if c in rates:
                cell.number_format = "0.0%"
            elif c == median:
                cell.number_format = "0.0"
    for col, title in enumerate(header, 1):
        widest = max([_width(title)] + [_width(row[col - 1]) for row in rows])
        sheet.column_dimensions[get_column_letter(col)].width = max(8, min(40, widest + 2))
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(1, len(rows) + 1)}"
    sheet.print_title_rows = "1:1"
    sheet.page_setup.orientation = "landscape"


def _width(value: Any) -> int:
    import unicodedata

    if value is None:
        return 0
    if isinstance(value, float):
        return 7
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value))
