"""`jiaoying export xlsx`: the site's roster, responsibilities and duty rota as a workbook, and the
round trip: export, then import into the same site, gives the same people."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from dispatcher.sites import load_site
from dispatcher.workbook import export_workbook, plan_import
from tests.unit.test_workbook_import import run, write_site

SAMPLE_SITE = Path(__file__).resolve().parents[2] / "rosters" / "qingxi"

# Everything the workbook has to carry: several numbers of every kind, a landline as the first number,
# namesakes (in different units, and in the same unit), two villages called 新村, a village group, a
# zone, a role whose display name holds a 、, 包保 held in one role, other kinds of responsibility.
RICH_PEOPLE = """\
roles:
  county_leader: 县领导(包保)
  town_head: 乡镇长
  village_head: 村党组织书记/村主任
  village_flood_officer: 村防汛责任人
  odd: 书记、主任
people:
  - id: wang-jianguo
    name: 王建国
    unit: 县人民政府
    phone: "+8613905720001"
    phones:
      - "+8613905720101"
      - { number: "+865725012345", kind: landline }
      - { number: "+8617400012345", kind: satellite }
    email: wjg@demo.gov.cn
    im: { dingtalk: "+8613905720001", wecom: wangjianguo }
    area: "330501"
    roles: [county_leader, odd]
    deputy: zhou-min
    responsibilities:
      - { kind: 包保, areas: ["330501100", "330501101"], zones: [baiyangou], roles: [county_leader] }
      - { kind: 驻村, areas: ["330501101202"] }
  - id: zhou-min
    name: 周敏
    unit: 县人民政府
    phone: "+865725012346"
    phones: ["+8613905720002"]
    area: "330501"
    roles: [county_leader]
    superior: wang-jianguo
  - id: zhang-wei
    name: 张伟
    unit: 龙潭镇人民政府
    phone: "+8613905720003"
    area: "330501100"
    roles: [town_head]
    superior: wang-jianguo
    responsibilities:
      - { areas: ["330501100202"] }
  - id: zhang-wei-2
    name: 张伟
    unit: 白云镇人民政府
    phone: "+8613905720004"
    area: "330501101"
    roles: [town_head]
    deputy: zhang-wei
  - id: li-na
    name: 李娜
    unit: 新村村民委员会
    phone: "+8613905720005"
    area: "330501100202"
    roles: [village_head]
    superior: zhang-wei
  - id: li-na-2
    name: 李娜
    unit: 新村村民委员会
    phone: "+8613905720006"
    area: "330501101201"
    roles: [village_head]
    superior: zhang-wei-2
  - id: he-yafen
    name: 何亚芬
    unit: 新村村民委员会
    phone: "+8613905720007"
    area: "330501101201"
    roles: [village_flood_officer]
    deputy: li-na-2
    superior: li-na-2
  - id: ying-tugen
    name: 应土根
    area: "330501100201001"
    superior: li-na
"""

RICH_DUTY = """\
shifts:
  - { start: "2026-07-16 08:30", end: "2026-07-17 20:30", leader: wang-jianguo, chief: zhou-min, staff: [li-na] }
weekly:
  - { day: mon, start: "08:30", hours: 168, leader: wang-jianguo, chief: zhou-min, staff: [he-yafen, ying-tugen] }
rooms:
  - area: "330501100"
    phone: "0572-5010110"
    weekly:
      - { day: tue, start: "08:00", hours: 12, leader: zhang-wei, chief: li-na }
"""


@pytest.fixture
def rich(tmp_path: Path) -> Path:
    return write_site(tmp_path / "demo", RICH_PEOPLE, RICH_DUTY)


def cells(sheet, row: int) -> list:  # type: ignore[no-untyped-def]
    return [c.value for c in sheet[row]]


def test_export_then_import_gives_the_same_people(rich: Path, tmp_path: Path) -> None:
    book = tmp_path / "通讯录.xlsx"
    assert export_workbook(rich, book).problems == []
    copy = tmp_path / "copy"
    shutil.copytree(rich, copy)
    plan = run(book, copy)
    assert plan.problems == [] and not plan.changes.any, plan.summary()
    assert load_site(copy).people == load_site(rich).people
    assert load_site(copy).roles == load_site(rich).roles


def test_export_then_import_into_a_site_without_people_gives_every_field(rich: Path, tmp_path: Path) -> None:
    """Nothing to keep: satellite phones, IM accounts, a 包保 held in one role, 驻村 and a 包保
    without a kind all come back from the workbook alone."""
    book = tmp_path / "通讯录.xlsx"
    assert export_workbook(rich, book).problems == []
    fresh = write_site(tmp_path / "fresh", RICH_PEOPLE[:RICH_PEOPLE.index("people:")], RICH_DUTY)
    plan = run(book, fresh)
    assert plan.problems == [] and len(plan.changes.added) == 8
    assert load_site(fresh).people == load_site(rich).people


def test_export_then_import_of_the_sample_site(tmp_path: Path) -> None:
    copy = tmp_path / "qingxi"
    shutil.copytree(SAMPLE_SITE, copy, ignore=shutil.ignore_patterns("*.xlsx"))
    book = tmp_path / "通讯录.xlsx"
    assert export_workbook(copy, book).problems == []
    plan = run(book, copy)
    assert plan.problems == [] and not plan.changes.any
    assert load_site(copy).people == load_site(SAMPLE_SITE).people


def test_the_roster_sheet_reads_as_the_import_reads_it(rich: Path, tmp_path: Path) -> None:
    book = tmp_path / "out.xlsx"
    report = export_workbook(rich, book)
    assert (report.people, report.responsibilities, report.duty_rows) == (8, 3, 3)
    sheet = load_workbook(book)["通讯录"]
    assert sheet["A1"].value == "示范县通讯录" and "A1:P1" in {str(r) for r in sheet.merged_cells.ranges}
    assert cells(sheet, 2) == ["姓名", "单位", "职务", "手机", "备用电话", "办公电话", "卫星电话", "邮箱", "钉钉",
                               "企业微信", "飞书", "区域", "包保", "其他责任", "AB岗", "上级"]
    assert cells(sheet, 3) == ["王建国", "县人民政府", "县领导(包保)、odd", "13905720001", "13905720101",
                               "0572-5012345", "17400012345", "wjg@demo.gov.cn", "+8613905720001", "wangjianguo", None,
                               "示范县", None,  # a 包保 held in one role is written under 其他责任, with the role
                               "包保（县领导(包保)）：龙潭镇、白云镇、白岩沟小流域；驻村：云峰村", "周敏", None]
    assert cells(sheet, 4)[3:6] == [None, "13905720002", "0572-5012346"]  # a landline as the first number
    assert cells(sheet, 5)[12:] == ["龙潭镇/新村", None, None, "王建国"]  # 包保 without a kind is 包保
    assert cells(sheet, 6)[14] == "张伟（龙潭镇人民政府）"  # namesakes: by unit
    assert cells(sheet, 7)[11] == "龙潭镇/新村" and cells(sheet, 8)[11] == "白云镇/新村"
    assert cells(sheet, 9)[14:] == ["李娜（13905720006）", "李娜（13905720006）"]  # same name, same unit: by number
    assert cells(sheet, 10)[11] == "一组"


def test_the_workbook_is_laid_out_for_checking_and_printing(rich: Path, tmp_path: Path) -> None:
    book = tmp_path / "out.xlsx"
    export_workbook(rich, book)
    workbook = load_workbook(book)
    assert workbook.sheetnames == ["通讯录", "包保", "值班表"]
    for sheet in workbook.worksheets:
        assert all(c.font.bold for c in sheet[2] if c.value)
        assert sheet.freeze_panes in ("A3", "B3")
        assert sheet.print_title_rows == "$2:$2"
        assert sheet.page_setup.orientation == "landscape" and str(sheet.page_setup.paperSize) == sheet.PAPERSIZE_A4
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.page_setup.fitToWidth == 1
        assert all(sheet.column_dimensions[c].width >= 6 for c in "ABCD")
    roster = workbook["通讯录"]
    for column in "DEFGIJ":  # phone and IM columns: text cells, never Excel numbers
        phones = [c for c in roster[column][2:] if c.value is not None]
        assert phones and all(c.data_type == "s" and c.number_format == "@" for c in phones)
    assert roster.column_dimensions["N"].width > roster.column_dimensions["A"].width


def test_responsibility_and_duty_sheets(rich: Path, tmp_path: Path) -> None:
    book = tmp_path / "out.xlsx"
    export_workbook(rich, book)
    workbook = load_workbook(book)
    duties = workbook["包保"]
    assert cells(duties, 2) == ["姓名", "单位", "职务", "类别", "区域/片区"]
    assert [cells(duties, r) for r in (3, 4, 5)] == [
        ["王建国", "县人民政府", "县领导(包保)", "包保", "龙潭镇、白云镇、白岩沟小流域"],
        ["王建国", "县人民政府", "县领导(包保)、odd", "驻村", "云峰村"],
        ["张伟", "龙潭镇人民政府", "乡镇长", "包保", "龙潭镇/新村"],
    ]
    duty = workbook["值班表"]
    assert cells(duty, 2) == ["值班室", "日期/星期", "开始", "时长", "值班领导", "值班长", "值班员"]
    assert [cells(duty, r) for r in (3, 4, 5)] == [
        ["示范县值班室", "星期一", "08:30", "168小时", "王建国", "周敏", "何亚芬、应土根"],
        ["示范县值班室", "2026-07-16", "08:30", "36小时", "王建国", "周敏", "李娜"],
        ["龙潭镇值班室", "星期二", "08:00", "12小时", "张伟", "李娜", None],
    ]


def test_an_invalid_site_is_not_exported(rich: Path, tmp_path: Path) -> None:
    people = rich / "people.yaml"
    people.write_text(people.read_text(encoding="utf-8").replace("deputy: zhou-min", "deputy: ghost"),
                      encoding="utf-8")
    report = export_workbook(rich, tmp_path / "out.xlsx")
    assert [str(p) for p in report.problems] == ["people.yaml:20: person wang-jianguo: deputy 'ghost' is not a "
                                                 "person in people.yaml"]
    assert not (tmp_path / "out.xlsx").exists()


def test_the_import_does_not_read_the_exports_own_sheets(rich: Path, tmp_path: Path) -> None:
    book = tmp_path / "out.xlsx"
    export_workbook(rich, book)
    plan = plan_import(book, rich)
    assert plan.sheets == ["通讯录"]
    assert [s.split(":")[0] for s in plan.skipped] == ["包保", "值班表"]
