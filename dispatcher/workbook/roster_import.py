"""A county's roster workbook (通讯录) -> the site's people.yaml.

``plan_import`` reads the workbook against the site folder and returns the new people.yaml text
with what changes, or the problems (each at a workbook cell) and no text: nothing is written when
any row is invalid. ``apply`` writes the text. The rules (headers, the id rule, phone numbers) are
described in docs/workbook.md.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..sites import FILES, check_site
from . import ids
from .numbers import (
    LANDLINE,
    MOBILE,
    SATELLITE,
    is_satellite,
    numbers_of,
    split_numbers,
    to_e164,
    worked_out_kind,
)
from .reader import Book, Problem, Row, read_book
from .site_files import SiteFiles, plain, read_site, squeeze
from .yamlwrite import Written, write_people

# field -> the header texts accepted for it (the first is the one the export writes)
HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("姓名",),
    "mobile": ("手机", "手机号", "手机号码", "移动电话"),
    "roles": ("职务", "岗位"),
    "unit": ("单位", "工作单位", "所在单位", "单位名称"),
    "area": ("区域", "所在区域", "行政区划"),
    "deputy": ("AB岗", "AB角", "B岗"),
    "superior": ("上级", "直接上级"),
    "responsible": ("包保", "包保区域"),
    "office": ("办公电话", "固定电话", "座机"),
    "backup": ("备用电话", "备用手机"),
    "satellite": ("卫星电话", "卫星手机"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "Email"),
    "dingtalk": ("钉钉", "钉钉号", "钉钉账号", "钉钉ID", "钉钉UserID"),
    "wecom": ("企业微信", "企业微信号", "企业微信账号", "企业微信ID", "企微", "企微账号"),
    "feishu": ("飞书", "飞书号", "飞书账号", "飞书ID", "飞书OpenID"),
    "duties": ("其他责任", "其他责任区域"),
}
HEADER = {key: texts[0] for key, texts in HEADERS.items()}
# Sheets `jiaoying export xlsx` writes for checking and printing; the import reads only the roster.
EXPORT_ONLY_SHEETS = ("包保", "值班表")
PHONE_COLUMNS = ("mobile", "backup", "office", "satellite")
IM_COLUMNS = ("dingtalk", "wecom", "feishu")  # the columns are the keys of people.yaml ``im``
BAOBAO = "包保"
# Kinds of responsibility the 其他责任 column accepts (besides any kind the current people.yaml uses).
KINDS = ("包保", "包乡", "包镇", "包村", "包组", "包片", "联村", "联系", "驻村", "第一书记", "分片", "网格", "监测员",
         "预警员", "巡查员", "信息员", "负责人", "责任人", "转移责任人")
# Fields the workbook sets (when it has their column); any other field of a person is kept.
MANAGED = ("id", "name", "unit", "phone", "phones", "email", "im", "area", "roles", "deputy", "superior",
           "responsibilities")
# people.yaml field -> the columns a problem with it points at (the first the row has)
FIELD_COLUMNS = {"name": ("name",), "unit": ("unit",), "phone": ("mobile", "office", "backup"),
                 "phones": ("backup", "office", "satellite"), "email": ("email",), "im": IM_COLUMNS,
                 "area": ("area",), "roles": ("roles",), "deputy": ("deputy",), "superior": ("superior",),
                 "responsibilities": ("responsible", "duties")}
# what changed, by its workbook header ("changed 周敏 (zhou-min): 手机, 钉钉")
FIELD_ZH = {"name": "姓名", "unit": "单位", "phone": "手机", "phones": "备用电话/办公电话", "satellite": "卫星电话",
            "email": "邮箱", "im.dingtalk": "钉钉", "im.wecom": "企业微信", "im.feishu": "飞书", "area": "区域",
            "roles": "职务", "deputy": "AB岗", "superior": "上级", "responsibilities": "包保", "duties": "其他责任"}

_LIST = re.compile(r"[、，,;；\n\r]+")
# A 其他责任 cell: items separated by these (outside brackets); 类别： starts a responsibility.
_DUTY_SEPARATORS = frozenset("、，,;；\n\r")
_DUTY_HEAD = re.compile(r"\s*([^（(]*?)\s*(?:[（(](.*)[）)])?\s*")
# An IM account id (钉钉 userid, 企业微信 UserID, 飞书 open_id): letters, digits and _ - . @ +.
_IM_ID = re.compile(r"[A-Za-z0-9_.@+\-]{1,64}")
IM_NAMES = {"dingtalk": "DingTalk", "wecom": "WeCom", "feishu": "Feishu"}
_NOT_A_PERSON = re.compile(r"^(合计|小计|总计|共计|备注|注[:：]|说明|填表|制表|审核)")
_QUALIFIED = re.compile(r"(.+?)[(（]\s*(.+?)\s*[)）]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def split_list(text: str) -> list[str]:
    """Items of a cell separated by 、，,;； or line breaks."""
    return [part.strip() for part in _LIST.split(text) if part.strip()]


@dataclass
class DutyText:
    """One responsibility as a 其他责任 cell writes it: ``包村：龙潭村、潭头村`` or, held in some
    of the person's roles, ``监测员（山洪灾害监测员）：白岩沟小流域``."""

    head: str  # before the colon: the kind, and the roles in brackets
    places: list[str] = field(default_factory=list)


def split_duties(text: str) -> tuple[list[DutyText], list[str]]:
    """The responsibilities a 其他责任 cell writes, and the items written before any ``类别：``.
    Items are separated by 、，,;； or line breaks (not inside brackets); an item holding a colon
    starts a responsibility, and the items after it belong to it until the next one."""
    cuts = [i for i, ch in _top_level(text) if ch in _DUTY_SEPARATORS]
    items = [text[a + 1:b] for a, b in zip([-1, *cuts], [*cuts, len(text)], strict=True)]
    duties: list[DutyText] = []
    orphans: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        colon = _top_level_colon(item)
        if colon >= 0:
            place = item[colon + 1:].strip()
            duties.append(DutyText(item[:colon].strip(), [place] if place else []))
        elif duties:
            duties[-1].places.append(item)
        else:
            orphans.append(item)
    return duties, orphans


def _top_level_colon(text: str) -> int:
    """The index of the first ：or : outside brackets, or -1."""
    return next((i for i, ch in _top_level(text) if ch in ":："), -1)


def _top_level(text: str) -> Iterator[tuple[int, str]]:
    """Each character outside brackets (（…） or (…)), with its index; the brackets are not given."""
    depth = 0
    for index, ch in enumerate(text):
        if ch in "(（":
            depth += 1
        elif ch in ")）":
            depth = max(0, depth - 1)
        elif depth == 0:
            yield index, ch


def clean_name(text: str) -> str:
    """A name as compared and written: blanks dropped from Chinese names ("王  伟" is 王伟)."""
    words = text.split()
    if all(not ch.isascii() for ch in "".join(words)):
        return "".join(words)
    return " ".join(words)


def is_person_row(row: Row) -> bool:
    """False for rows without a name, subtotals (合计, 小计), notes (备注：…) and repeated headers."""
    name = squeeze(row.text("name"))
    return bool(name) and name != HEADER["name"] and not _NOT_A_PERSON.match(name)


@dataclass
class Entry:
    """One person's row, read."""

    row: Row
    name: str
    unit: str = ""
    slots: dict[str, list[str]] = field(default_factory=dict)  # column -> numbers (E.164) it gives
    email: str = ""
    area: str = ""
    roles: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)  # 包保 areas
    zones: list[str] = field(default_factory=list)  # 包保 zones
    duties: list[dict[str, Any]] = field(default_factory=list)  # from 其他责任, as people.yaml writes them
    im: dict[str, str] = field(default_factory=dict)  # IM column -> account id ("" for an empty cell)
    id: str = ""
    old: dict[str, Any] | None = None  # the person in the current people.yaml, if any
    duty_columns: list[str] = field(default_factory=list)  # each written responsibility: its column ("" kept)

    @property
    def numbers(self) -> list[str]:
        return [n for slot in PHONE_COLUMNS for n in self.slots.get(slot, [])]

    @property
    def first_number(self) -> str:
        mobile = self.slots.get("mobile") or []
        return mobile[0] if mobile else next(iter(self.numbers), "")


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)  # "王建国 (wang-jianguo)"
    changed: list[tuple[str, list[str]]] = field(default_factory=list)  # (who, fields)
    removed: list[str] = field(default_factory=list)
    new_roles: list[tuple[str, str]] = field(default_factory=list)  # (id, display name)
    unchanged: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.new_roles)


@dataclass
class ImportPlan:
    workbook: str  # its file name
    site_dir: Path
    problems: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # sheets not read, with why
    sheets: list[str] = field(default_factory=list)  # sheets read
    people: int = 0
    rows_skipped: int = 0  # blank, subtotal and note rows
    changes: Changes = field(default_factory=Changes)
    text: str | None = None  # the new people.yaml; None when there are problems
    comments_dropped: int = 0  # comment lines of the current people.yaml the new text does not keep

    @property
    def target(self) -> Path:
        return self.site_dir / "people.yaml"

    def summary(self) -> list[str]:
        """What the import does, one line each: sheets, roles and people added, changed, removed."""
        skipped = f" ({self.rows_skipped} rows without a person skipped: 合计, 备注, no 姓名)" * bool(self.rows_skipped)
        lines = [f"{self.workbook}: {self.people} people from sheet(s) {', '.join(self.sheets) or '-'}{skipped}"]
        lines += [f"skipped sheet {why}" for why in self.skipped]
        c = self.changes
        lines += [f"new role {rid}: {name}" for rid, name in c.new_roles]
        lines += [f"added {who}" for who in c.added]
        lines += [f"changed {who}: {', '.join(fields)}" for who, fields in c.changed]
        lines += [f"removed {who}" for who in c.removed]
        if n := self.comments_dropped:
            lines.append(f"注意：people.yaml 开头注释以外的 {n} 行注释不会保留 / {n} comment line(s) in people.yaml "
                         "below its opening comment are not kept")
        lines.append(f"{len(c.added)} added, {len(c.changed)} changed, {len(c.removed)} removed, "
                     f"{c.unchanged} unchanged, {len(c.new_roles)} new role(s)")
        return lines


def plan_import(workbook: Path, site_dir: Path) -> ImportPlan:
    """Read ``workbook`` against the site in ``site_dir``: the new people.yaml, or the problems."""
    plan = ImportPlan(Path(workbook).name, Path(site_dir))
    site, problems = read_site(site_dir)
    if site is None:
        plan.problems = problems
        return plan
    book = read_book(workbook, HEADERS, "name", EXPORT_ONLY_SHEETS)
    plan.skipped, plan.sheets = book.skipped, [t.sheet for t in book.tables]
    try:
        current = plan.target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # read_site has said so if the file is there but unreadable
        current = ""
    opening, comments = opening_comment(current)
    _RosterImport(site, book, plan, opening).run()
    if plan.text is not None and plan.text != current:
        plan.comments_dropped = comments
    return plan


GENERATED = ("Generated by `jiaoying import xlsx` from ", "(hand edits here are replaced by the next import")


def opening_comment(text: str) -> tuple[list[str], int]:
    """The comment lines a people.yaml opens with (without the ``#``; not the import's own ones,
    which it writes anew), and how many lines below them hold a comment (the import drops those)."""
    lines = text.splitlines()
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip().startswith("#")):
        start += 1
    opening = []
    for line in lines[:start]:
        comment = line.strip()[1:]
        comment = comment[1:] if comment.startswith(" ") else comment
        if line.strip() and not comment.startswith(GENERATED):
            opening.append(comment.rstrip())
    return opening, sum(_has_comment(line) for line in lines[start:])


def _has_comment(line: str) -> bool:
    """Whether a YAML line holds a comment: a ``#`` after a blank, outside a quoted scalar."""
    quote, before = "", " "
    for ch in line:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'" and before in " \t[{,:-":
            quote = ch
        elif ch == "#" and before in " \t":
            return True
        before = ch
    return False


def apply(plan: ImportPlan) -> bool:
    """Write the planned people.yaml (atomically); False when it is already exactly that."""
    assert plan.text is not None and not plan.problems
    target = plan.target
    if target.is_file() and target.read_text(encoding="utf-8") == plan.text:
        return False
    fd, tmp = tempfile.mkstemp(prefix=".people.", suffix=".yaml", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(plan.text)
        if target.exists():
            shutil.copymode(target, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


class _RosterImport:
    def __init__(self, site: SiteFiles, book: Book, plan: ImportPlan, opening: list[str]) -> None:
        self.site, self.book, self.plan, self.opening = site, book, plan, opening
        self.problems = plan.problems
        self.problems.extend(book.problems)
        self.roles = dict(site.roles)
        self.new_roles: dict[str, Row] = {}  # role id -> the row that brought it in
        self._role_names: dict[str, list[str]] = {}
        for rid, name in site.roles.items():
            self._role_names.setdefault(squeeze(name), []).append(rid)
        self.entries: list[Entry] = []
        self._by_name: dict[str, list[Entry]] = {}
        self._reported: set[Problem] = set(self.problems)
        self.kinds = {squeeze(k) for k in KINDS} | {
            squeeze(plain(r.get("kind"))) for p in site.people for r in as_list(p.get("responsibilities"))
            if isinstance(r, dict) and plain(r.get("kind"))}

    # -- problems ---------------------------------------------------------------------------

    def problem(self, row: Row, key: str, message: str) -> None:
        """A problem at the row's cell for ``key`` (its 姓名 cell when the sheet has no such column)."""
        cell = row.cells.get(key) or row.cells["name"]
        found = Problem(self.book.where(row.sheet, cell.ref), message)
        if found not in self._reported:  # a merged cell's problem is reported once
            self._reported.add(found)
            self.problems.append(found)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> None:
        if not self.book.tables and not self.book.problems:
            self.problems.append(Problem(self.book.file, "no sheet has a header row with 姓名 and another known "
                                         f"header ({', '.join(HEADER.values())})"))
        rows = [row for table in self.book.tables for row in table.rows]
        people_rows = [row for row in rows if is_person_row(row)]
        self.plan.rows_skipped = len(rows) - len(people_rows)
        self.entries = [self._entry(row) for row in people_rows]
        self.plan.people = len(self.entries)
        self._duplicates()
        self._match_existing()
        self._assign_ids()
        people = [self._person(entry) for entry in self.entries]
        if self.problems:
            return
        written = write_people(self._header(), self.roles, people)
        self.problems.extend(self._check(written))
        if self.problems:
            return
        self.plan.text = written.text
        self.plan.changes = self._changes(people)

    def _header(self) -> list[str]:
        """The import's own comment, then the former file's opening comment lines."""
        return [f"{GENERATED[0]}{self.book.file}: edit the workbook and import it again",
                f"{GENERATED[1]}; `jiaoying export xlsx` writes the workbook).", *self.opening]

    # -- reading a row ----------------------------------------------------------------------

    def _entry(self, row: Row) -> Entry:
        entry = Entry(row, clean_name(row.text("name")), unit=" ".join(row.text("unit").split()))
        entry.slots = {key: self._numbers(row, key) for key in PHONE_COLUMNS if row.has(key)}
        entry.email = self._email(row)
        entry.area = self._area(row)
        entry.roles = self._roles(row)
        entry.areas, entry.zones = self._responsible(row)
        entry.duties = self._duties(row)
        entry.im = {key: self._im(row, key) for key in IM_COLUMNS if row.has(key)}
        return entry

    def _numbers(self, row: Row, key: str) -> list[str]:
        out: list[str] = []
        for text in split_numbers(row.text(key)):
            e164 = to_e164(text)
            if e164 is None:
                self.problem(row, key, f"{HEADER[key]}号码无效 / invalid phone number '{text}' "
                                       "(e.g. 13905720001 or 0572-5012345)")
            elif key == "mobile" and worked_out_kind(e164) != MOBILE:
                self.problem(row, key, f"手机 '{text}' 不是手机号码 / is not a mobile number: put landlines under "
                                       "办公电话")
            elif key == "satellite" and not is_satellite(e164):
                self.problem(row, key, f"卫星电话 '{text}' 不是卫星电话号码 / is not a satellite phone number "
                                       "(天通 1740…, 1349…, +870, +881, +88216…): put mobiles under 手机 or 备用电话, "
                                       "landlines under 办公电话")
            elif e164 not in out:
                out.append(e164)
        return out

    def _im(self, row: Row, key: str) -> str:
        text = row.text(key)
        if text and not _IM_ID.fullmatch(text):
            self.problem(row, key, f"{HEADER[key]}账号无效 / '{text}' is not a {IM_NAMES[key]} account id: write the "
                                   "user id (letters, digits, _ - . @ +), one per cell, not a name")
            return ""
        return text

    def _email(self, row: Row) -> str:
        email = row.text("email")
        if email and not _EMAIL.match(email):
            self.problem(row, "email", f"邮箱无效 / '{email}' is not an email address")
            return ""
        return email

    def _area(self, row: Row) -> str:
        text = row.text("area")
        if not row.has("area"):
            return ""
        if not text:
            self.problem(row, "area", "区域为空 / 区域 is empty: write the area (e.g. 龙潭镇/潭头村) or its code")
            return ""
        codes = self.site.areas.areas(text)
        if len(codes) == 1:
            return codes[0]
        self._area_problem(row, "area", text, codes)
        return ""

    def _area_problem(self, row: Row, key: str, text: str, codes: list[str]) -> None:
        if not codes:
            self.problem(row, key, f"未知区域 / unknown area '{text}' (not in areas.yaml; write a name, a path "
                                   "like 龙潭镇/潭头村, or a code)")
            return
        shown = "、".join(f"{self.site.areas.label(c)} ({c})" for c in codes[:5])
        self.problem(row, key, f"区域名称不唯一 / ambiguous area '{text}': {shown}; write the path (镇/村) "
                               "or the code")

    def _roles(self, row: Row) -> list[str]:
        out: list[str] = []
        for text in split_list(row.text("roles")):
            rid = self._role(row, text)
            if rid and rid not in out:
                out.append(rid)
        return out

    def _role(self, row: Row, text: str) -> str | None:
        """The role a 职务 names: by display name, else by role id, else a new role."""
        matches = self._role_names.get(squeeze(text), [])
        if len(matches) > 1:
            self.problem(row, "roles", f"职务 '{text}' 对应多个岗位 / matches roles {', '.join(matches)}: "
                                       "write the role id instead")
            return None
        if matches:
            return matches[0]
        if text in self.roles:
            return text
        rid = ids.unique(ids.role_id(text), self.roles)
        self.roles[rid] = text
        self.new_roles[rid] = row
        self._role_names[squeeze(text)] = [rid]
        return rid

    def _responsible(self, row: Row) -> tuple[list[str], list[str]]:
        return self._places(row, "responsible", split_list(row.text("responsible")))

    def _places(self, row: Row, key: str, texts: Iterable[str]) -> tuple[list[str], list[str]]:
        """The areas (codes) and zones (ids) a responsibility names: each text an area's name, path
        or code, or a zone's name or id."""
        areas: list[str] = []
        zones: list[str] = []
        for text in texts:
            codes = self.site.areas.areas(text)
            named = self.site.areas.zones_named(text)
            if len(codes) + len(named) == 1:
                target = areas if codes else zones
                value = (codes or named)[0]
                if value not in target:
                    target.append(value)
            elif named and codes:
                self.problem(row, key, f"{HEADER[key]} '{text}' 既是区域也是片区 / names an area and a zone: "
                                       "write the area's code or the zone's id")
            elif codes:
                self._area_problem(row, key, text, codes)
            else:
                self.problem(row, key, f"未知区域或片区 / unknown area or zone '{text}' (not in areas.yaml; write an "
                                       "area's name, a path like 龙潭镇/潭头村 or a code, or a zone's name or id)")
        return areas, zones

    def _duties(self, row: Row) -> list[dict[str, Any]]:
        """The responsibilities a 其他责任 cell writes (``包村：龙潭村、潭头村；监测员：白岩沟小流域``),
        as people.yaml writes them."""
        duties, orphans = split_duties(row.text("duties"))
        for text in orphans:
            self.problem(row, "duties", f"其他责任 '{text}' 缺少类别 / has no kind: write 类别：区域, e.g. "
                                        f"包村：{text}")
        out: list[dict[str, Any]] = []
        for duty in duties:
            head = _DUTY_HEAD.fullmatch(duty.head)
            kind = squeeze(head[1]) if head else ""
            if not kind:
                self.problem(row, "duties", f"其他责任 '{duty.head}：' 缺少类别 / has no kind: write 类别：区域, e.g. "
                                            "包村：潭头村")
                continue
            if kind not in self.kinds:
                self.problem(row, "duties", f"未知责任类别 / unknown kind of responsibility '{kind}' (known: "
                                            f"{'、'.join(KINDS)}, and the kinds people.yaml uses)")
                continue
            roles = [rid for text in split_list(head[2] or "") if (rid := self._held_role(row, text))]
            if not duty.places:
                self.problem(row, "duties", f"其他责任 '{kind}' 没有区域或片区 / names no area or zone: write "
                                            f"{kind}：区域、…")
                continue
            areas, zones = self._places(row, "duties", duty.places)
            new: dict[str, Any] = {"kind": kind}
            if areas:
                new["areas"] = areas
            if zones:
                new["zones"] = zones
            if roles:
                new["roles"] = roles
            out.append(new)
        return out

    def _held_role(self, row: Row, text: str) -> str | None:
        """A role a responsibility is held in (``监测员（山洪灾害监测员）：…``): by display name or id;
        unlike a 职务, never a new role."""
        matches = self._role_names.get(squeeze(text), [])
        if len(matches) == 1:
            return matches[0]
        if text in self.roles:
            return text
        if matches:
            self.problem(row, "duties", f"其他责任的职务 '{text}' 对应多个岗位 / matches roles {', '.join(matches)}: "
                                        "write the role id instead")
        else:
            self.problem(row, "duties", f"其他责任的职务 '{text}' 未知 / unknown role '{text}': write one of the "
                                        "person's 职务 in the brackets")
        return None

    # -- the roster as a whole --------------------------------------------------------------

    def _duplicates(self) -> None:
        seen: dict[tuple[str, str], Entry] = {}
        for entry in self.entries:
            number = entry.first_number
            if not number:
                continue
            first = seen.setdefault((entry.name, number), entry)
            if first is not entry:
                self.problem(entry.row, "name", f"重复人员 / duplicate person: {entry.name} with the same 手机 is "
                                                f"already at {first.row.sheet}!{first.row.cells['name'].ref}")

    def _match_existing(self) -> None:
        """Who each row is in the current people.yaml. First: the same name and a number in common
        (their 手机 or any other number). Then, for rows still unmatched: the same name and the same
        单位 (a changed 手机); then, for a row without numbers, a person without numbers of the same
        name and 区域 — each only when exactly one such row and one such unmatched person remain."""
        by_name: dict[str, list[dict[str, Any]]] = {}
        for person in self.site.people:
            if plain(person.get("id")) and plain(person.get("name")):
                by_name.setdefault(clean_name(plain(person.get("name"))), []).append(person)
        matched: set[int] = set()
        for entry in self.entries:
            mine = set(entry.numbers)
            entry.old = next((p for p in by_name.get(entry.name, []) if id(p) not in matched
                              and mine & {n.e164 for n in numbers_of(p)}), None)
            if entry.old is not None:
                matched.add(id(entry.old))
        if self.book.tables and all("unit" in t.columns for t in self.book.tables):
            self._match_on(by_name, matched, lambda e: e.unit, _unit)
        if self.book.tables and all("area" in t.columns for t in self.book.tables):
            self._match_on(by_name, matched, lambda e: None if e.numbers else e.area,
                           lambda p: None if numbers_of(p) else plain(p.get("area")))

    def _match_on(self, by_name: dict[str, list[dict[str, Any]]], matched: set[int],
                  mine: Callable[[Entry], str | None], theirs: Callable[[dict[str, Any]], str | None]) -> None:
        """Unmatched rows to unmatched people of the same name and the same ``mine``/``theirs``
        value (None: not to be matched), where exactly one of each has them."""
        rows: dict[tuple[str, str], list[Entry]] = {}
        for entry in self.entries:
            value = mine(entry)
            if entry.old is None and value is not None:
                rows.setdefault((entry.name, value), []).append(entry)
        for (name, value), entries in rows.items():
            people = [p for p in by_name.get(name, []) if id(p) not in matched and theirs(p) == value]
            if len(entries) == 1 and len(people) == 1:
                entries[0].old = people[0]
                matched.add(id(people[0]))

    def _assign_ids(self) -> None:
        """Matched rows keep their id; new ones get the name's pinyin, with -2, -3 … when that id is
        taken, by someone in the workbook or by anyone in the current people.yaml (a removed
        person's id is not given to somebody else: call-out records still name them)."""
        taken = {plain(p.get("id")) for p in self.site.people}
        for entry in self.entries:
            if entry.old is not None:
                entry.id = plain(entry.old.get("id"))
        for entry in self.entries:
            if entry.old is None:
                entry.id = ids.unique(ids.person_id(entry.name), taken)
                taken.add(entry.id)
        for entry in self.entries:
            self._by_name.setdefault(entry.name, []).append(entry)

    def _link(self, entry: Entry, key: str) -> str | None:
        """The id of the person an AB岗 or 上级 cell names: 张伟, or 张伟（县水利局）/ 张伟（139…）
        when two people share the name; a person id is accepted too."""
        text = entry.row.text(key).strip()
        if not text:
            return None
        qualified = _QUALIFIED.fullmatch(text)
        name = clean_name(qualified[1] if qualified else text)
        found = self._by_name.get(name, [])
        if qualified:
            which = qualified[2]
            found = [e for e in found if squeeze(e.unit) == squeeze(which) or to_e164(which) in e.numbers]
        if not found and not qualified:
            found = [e for e in self.entries if e.id == text]
        label = HEADER[key]
        if not found:
            self.problem(entry.row, key, f"{label} '{text}' 不在通讯录中 / names nobody in the workbook")
            return None
        if len(found) > 1:
            rows = ", ".join(f"{e.row.sheet}!{e.row.cells['name'].ref}" for e in found)
            self.problem(entry.row, key, f"{label} '{text}' 有重名 / several people are called {name} ({rows}): "
                                         f"write {name}（单位） or {name}（手机）")
            return None
        if found[0] is entry:
            self.problem(entry.row, key, f"{label} 不能是本人 / {label} '{text}' is the person themself")
            return None
        return found[0].id

    # -- the person as written --------------------------------------------------------------

    def _person(self, entry: Entry) -> dict[str, Any]:
        """The person's people.yaml fields: from the row where the workbook has the column, else
        kept from the current people.yaml (and any field the workbook never sets)."""
        old = entry.old or {}
        row = entry.row
        out: dict[str, Any] = {"id": entry.id, "name": entry.name}
        unit = entry.unit if row.has("unit") else plain(old.get("unit"))
        phone, phones = self._phones(entry, old)
        email = entry.email if row.has("email") else plain(old.get("email"))
        area = entry.area if row.has("area") else plain(old.get("area"))
        if not row.has("area") and not area:
            self.problem(row, "name", "没有区域列 / no 区域 column, and this person is new: add the 区域 column")
        roles = entry.roles if row.has("roles") else [plain(r) for r in as_list(old.get("roles"))]
        deputy = self._link(entry, "deputy") if row.has("deputy") else plain(old.get("deputy"))
        superior = self._link(entry, "superior") if row.has("superior") else plain(old.get("superior"))
        duties = self._responsibilities(entry, old, roles)
        values = {"unit": unit, "phone": phone, "phones": phones, "email": email, "im": self._im_of(entry, old),
                  "area": area, "roles": roles, "deputy": deputy, "superior": superior,
                  "responsibilities": duties}
        out.update((key, value) for key, value in values.items() if value)
        out.update((key, value) for key, value in old.items() if key not in MANAGED)
        return out

    @staticmethod
    def _im_of(entry: Entry, old: dict[str, Any]) -> dict[str, str]:
        """``im``: each IM column's account, or the current one where the workbook lacks the column."""
        kept = old.get("im") if isinstance(old.get("im"), dict) else {}
        im = {str(k): v for k, v in kept.items() if str(k) not in IM_COLUMNS}
        merged = {key: entry.im[key] if key in entry.im else plain(kept.get(key)) for key in IM_COLUMNS}
        return {**{key: value for key, value in merged.items() if value}, **im}

    def _phones(self, entry: Entry, old: dict[str, Any]) -> tuple[str | None, list[Any]]:
        """``phone`` and ``phones``: the first number is the 手机, else the first 办公电话, else the
        first 备用电话; then the 备用电话 numbers, then the 办公电话 ones, then the 卫星电话 ones
        (``kind: satellite``). A column the workbook lacks keeps the person's numbers of that kind."""
        kept = number_slots(old)
        slots = {key: entry.slots[key] if key in entry.slots else kept[key] for key in PHONE_COLUMNS}
        mobile, backup, office = slots["mobile"], slots["backup"], slots["office"]
        order = list(dict.fromkeys(mobile + backup + office if mobile else office[:1] + backup + office[1:]))
        offices = set(office)
        phones: list[Any] = [{"number": n, "kind": LANDLINE} if n in offices and worked_out_kind(n) == LANDLINE
                             else n for n in order[1:]]
        phones += [{"number": n, "kind": SATELLITE} for n in dict.fromkeys(slots["satellite"]) if n not in order]
        return (order[0] if order else None), phones

    def _responsibilities(self, entry: Entry, old: dict[str, Any], roles: list[str]) -> list[Any]:
        """The person's responsibilities. With a 其他责任 column: the 包保 column's (first), then
        the 其他责任 ones; without a 包保 column the current 包保 entries stand in for it. Without a
        其他责任 column (a workbook of before it): the 包保 column gives one 包保 entry (where the
        first was, in the roles it was held in), and the other kinds are kept as they are."""
        current = [r for r in as_list(old.get("responsibilities")) if r is not None]
        row = entry.row
        if row.has("duties"):
            if row.has("responsible"):
                first = [self._baobao(entry, [])] if entry.areas or entry.zones else []
                columns = ["responsible"] * len(first)
            else:
                first = [r for r in current if is_baobao(r)]
                columns = [""] * len(first)
            entry.duty_columns = columns + ["duties"] * len(entry.duties)
            return first + entry.duties
        if not row.has("responsible"):
            entry.duty_columns = [""] * len(current)
            return current
        baobao = [r for r in current if is_baobao(r)]
        had_areas = {plain(a) for r in baobao for a in as_list(r.get("areas"))}
        had_zones = {plain(z) for r in baobao for z in as_list(r.get("zones"))}
        if had_areas == set(entry.areas) and had_zones == set(entry.zones):
            entry.duty_columns = ["responsible" if is_baobao(r) else "" for r in current]
            return current
        held = [plain(r) for r in as_list(baobao[0].get("roles")) if plain(r) in roles] if baobao else []
        new = self._baobao(entry, held)
        position = current.index(baobao[0]) if baobao else 0
        others = [r for r in current if not is_baobao(r)]
        if entry.areas or entry.zones:
            others.insert(len([r for r in current[:position] if not is_baobao(r)]), new)
        entry.duty_columns = ["responsible" if r is new else "" for r in others]
        return others

    @staticmethod
    def _baobao(entry: Entry, held: list[str]) -> dict[str, Any]:
        """The 包保 column's responsibility."""
        new: dict[str, Any] = {"kind": BAOBAO}
        if entry.areas:
            new["areas"] = entry.areas
        if entry.zones:
            new["zones"] = entry.zones
        if held:
            new["roles"] = held
        return new

    # -- the whole site, with the new people.yaml ------------------------------------------------

    def _check(self, written: Written) -> list[Problem]:
        """``check_site`` on a copy of the site with the new people.yaml; people.yaml problems are
        traced back to the workbook cell the line came from."""
        with tempfile.TemporaryDirectory(prefix="jiaoying-import-") as tmp:
            copy = Path(tmp) / (self.site.folder.resolve().name or "site")  # its name: the default site id
            copy.mkdir()
            for name in FILES:
                if (self.site.folder / name).is_file():
                    shutil.copy2(self.site.folder / name, copy / name)
            (copy / "people.yaml").write_text(written.text, encoding="utf-8")
            _, problems = check_site(copy)
        removed = {plain(p.get("id")): plain(p.get("name")) for p in self.site.people}
        for entry in self.entries:
            removed.pop(entry.id, None)
        out = []
        for p in problems:
            where = written.lines.get(p.line) if p.file == "people.yaml" else None
            if where is None:
                hint = next((f" ({name} {rid} is not in the workbook)" for rid, name in removed.items()
                             if f"'{rid}'" in p.message), "")
                out.append(Problem(f"{p.file}:{p.line}", p.message + hint))
                continue
            row = self.new_roles.get(where.key) if where.index < 0 else self.entries[where.index].row
            if row is None:
                out.append(Problem(f"{p.file}:{p.line}", p.message))
                continue
            column = "roles" if where.index < 0 else self._column(self.entries[where.index], where.key, where.item)
            cell = row.cells[column]
            out.append(Problem(self.book.where(row.sheet, cell.ref), f"{p.message} (people.yaml line {p.line})"))
        return out

    @staticmethod
    def _column(entry: Entry, key: str, item: int) -> str:
        """The column a people.yaml field (or an item of its list) came from: the responsibility's
        own column, else the first of the field's columns the row has, else 姓名."""
        if key == "responsibilities" and 0 <= item < len(entry.duty_columns) and entry.duty_columns[item]:
            return entry.duty_columns[item]
        return next((c for c in FIELD_COLUMNS.get(key, ()) if entry.row.has(c)), "name")

    # -- what changes --------------------------------------------------------------------------

    def _changes(self, people: list[dict[str, Any]]) -> Changes:
        changes = Changes(new_roles=[(rid, self.roles[rid]) for rid in self.new_roles])
        kept = set()
        for entry, person in zip(self.entries, people, strict=True):
            who = f"{entry.name} ({entry.id})"
            if entry.old is None:
                changes.added.append(who)
                continue
            kept.add(entry.id)
            fields = _changed_fields(entry.old, person)
            if fields:
                changes.changed.append((who, fields))
            else:
                changes.unchanged += 1
        changes.removed = [f"{plain(p.get('name'))} ({plain(p.get('id'))})" for p in self.site.people
                           if plain(p.get("id")) not in kept]
        return changes


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _unit(person: dict[str, Any]) -> str:
    return " ".join(plain(person.get("unit")).split())


def is_baobao(duty: Any) -> bool:
    return isinstance(duty, dict) and (plain(duty.get("kind")) or BAOBAO) == BAOBAO


def number_slots(person: dict[str, Any]) -> dict[str, list[str]]:
    """A person's numbers by the column each belongs in: the ``phone`` if a mobile (手机), further
    mobiles (备用电话), landlines (办公电话; the ``phone`` too when it is one), and satellite phones."""
    slots: dict[str, list[str]] = {"mobile": [], "backup": [], "office": [], "satellite": []}
    has_phone = to_e164(plain(person.get("phone"))) is not None if plain(person.get("phone")) else False
    for position, number in enumerate(numbers_of(person)):
        if number.kind == SATELLITE:
            slots["satellite"].append(number.e164)
        elif number.kind == LANDLINE:
            slots["office"].append(number.e164)
        else:
            slots["mobile" if position == 0 and has_phone else "backup"].append(number.e164)
    return slots


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip()


def _comparable(person: dict[str, Any]) -> dict[str, Any]:
    """A person's fields as compared, split as the workbook's columns are: numbers in E.164 with
    their kinds (satellite phones apart), each IM account apart, 包保 apart from other
    responsibilities; values as text."""
    skip = ("phone", "phones", "im", "responsibilities")
    out = {key: _canonical(value) for key, value in person.items() if key not in skip}
    numbers = numbers_of(person)
    has_phone = bool(plain(person.get("phone"))) and to_e164(plain(person.get("phone"))) is not None
    if has_phone:
        out["phone"] = numbers[0].e164
    further = numbers[1 if has_phone else 0:]
    out["phones"] = [(n.e164, n.kind) for n in further if n.kind != SATELLITE]
    out["satellite"] = [n.e164 for n in further if n.kind == SATELLITE]
    im = person.get("im")
    for key, value in (im.items() if isinstance(im, dict) else ()):
        out[f"im.{key}"] = _canonical(value)
    duties = [_canonical({**r, "kind": BAOBAO} if isinstance(r, dict) and not plain(r.get("kind")) else r)
              for r in as_list(person.get("responsibilities")) if r is not None]  # no kind is 包保
    out["responsibilities"] = [r for r in duties if is_baobao(r)]
    out["duties"] = [r for r in duties if not is_baobao(r)]
    return {key: value for key, value in out.items() if value not in ("", None, [], {})}


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fields that differ, in the workbook's order, by their headers."""
    before, after = _comparable(old), _comparable(new)
    keys: Iterable[str] = dict.fromkeys([*FIELD_ZH, *after, *before])
    return [FIELD_ZH.get(key, key) for key in keys if before.get(key) != after.get(key)]
