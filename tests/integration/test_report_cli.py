"""`jiaoying report`, run as a user runs it (a subprocess with JIAOYING_DATABASE_URL), on SQLite and
PostgreSQL: the tables by name, JSON, the .xlsx (Chinese sheet names, frozen bold headers, numbers
as numbers) and the CSV (BOM); bad input is one line naming it, exit 1, and nothing written."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest

from dispatcher.csvsafe import BOM
from tests.integration.test_cli import jiaoying
from tests.unit.test_assessment import build_period


@pytest.fixture
def url(database_url: str) -> str:
    build_period(database_url)
    return database_url


def test_tables_name_people_chinese_first(url: str) -> None:
    r = jiaoying("report", "--from", "2026-07-01", "--to", "2026-08-31", url=url)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "叫应考核 小溪县  2026-07-01 至 2026-08-31" in out
    for text in ("真实预警 · 合计", "真实预警 · 按月份", "真实预警 · 按乡镇", "真实预警 · 按岗位", "真实预警 · 按人员",
                 "未叫醒最多的人员", "演练 · 合计", "5分钟内确认", "他人代确认", "确认用时中位数",
                 "孙镇长", "钱值班长", "离任者", "已不在名册", "县级", "青溪镇", "村防汛责任人", "2026-08"):
        assert text in out, text
    assert "zhou" not in out and "W-JULY" not in out  # names, not ids
    total = next(line for line in out.splitlines() if "│ 合计" in line)
    assert [c.strip() for c in total.split("│")[2:-1]] == ["2", "8", "6", "3 (38%)", "4 (50%)", "5 (62%)", "2", "2",
                                                          "7:30"]


def test_english_on_request(url: str) -> None:
    r = jiaoying("report", "--from", "2026-07-01", "--to", "2026-08-31", "--lang", "en", url=url)
    assert r.returncode == 0, r.stderr
    assert "Call-out assessment" in r.stdout and "Real warnings · By town" in r.stdout
    assert "County level" in r.stdout and "no longer on the roster" in r.stdout


def test_json(url: str) -> None:
    r = jiaoying("report", "--from", "2026-07-01", "--to", "2026-08-31", "--json", url=url)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["real"]["total"]["callouts"] == 8 and data["drills"]["total"]["callouts"] == 2
    assert data["real"]["total"]["acknowledged_within"] == {"5": 3, "15": 4, "30": 5}
    assert [m["name"] for m in data["real"]["by_month"]] == ["2026-07", "2026-08"]


def test_xlsx_and_csv_files(url: str, tmp_path: Path) -> None:
    book_path, csv_path = tmp_path / "考核.xlsx", tmp_path / "考核.csv"
    r = jiaoying("report", "--from", "2026-07-01", "--to", "2026-08-31", "--xlsx", str(book_path),
                 "--csv", str(csv_path), url=url)
    assert r.returncode == 0, r.stderr
    assert f"已写入 {book_path}" in r.stdout and f"已写入 {csv_path}" in r.stdout
    book = openpyxl.load_workbook(book_path)
    assert book.sheetnames == ["汇总", "按月份", "按乡镇", "按岗位", "按人员", "未叫醒最多", "演练"]
    for sheet in book:
        assert sheet.freeze_panes == "A2", sheet.title
        assert all(c.font.bold for c in sheet[1] if c.value), sheet.title
    summary = book["汇总"]
    header = [c.value for c in summary[1]]
    real = dict(zip(header, [c.value for c in summary[2]], strict=True))
    assert real["类别"] == "真实预警" and real["叫应次数"] == 8 and isinstance(real["叫应次数"], int)
    assert real["5分钟确认率"] == 0.375 and real["确认用时中位数（分钟）"] == 7.5
    assert summary.column_dimensions["A"].width >= 8
    towns = [[c.value for c in row] for row in book["按乡镇"].iter_rows(min_row=2)]
    assert [row[0] for row in towns] == ["县级", "青溪镇"] and towns[1][2] == 6
    text = csv_path.read_bytes().decode("utf-8")
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text.removeprefix(BOM))))
    assert rows[0][:3] == ["类别", "分组", "名称"] and rows[1][:3] == ["真实预警", "合计", "合计"]


@pytest.mark.parametrize(("args", "said"), [
    (["--from", "2026-02-30", "--to", "2026-09-30"], "--from 不是有效日期：'2026-02-30'"),
    (["--from", "2026-06-01", "--to", "tomorrow"], "--to 不是有效日期：'tomorrow'"),
    (["--from", "2026-09-30", "--to", "2026-06-01"], "--from 2026-09-30 晚于 --to 2026-06-01"),
    (["--from", "2020-01-01", "--to", "2026-09-30"], "超过 5 年"),
    (["--to", "2026-09-30"], "缺少 --from"),
    (["--from", "2026-06-01", "--to", "2026-09-30", "--lang", "fr"], "--lang must be zh or en"),
    (["--from", "2026/06/01", "--to", "2026-09-30", "--lang", "en"], "--from is not a date: '2026/06/01'"),
])
def test_bad_input_is_one_line_and_writes_nothing(url: str, tmp_path: Path, args: list[str], said: str) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    book, table = folder / "report.xlsx", folder / "report.csv"
    table.write_text("kept", encoding="utf-8")  # an older export there stays as it was
    r = jiaoying("report", *args, "--xlsx", str(book), "--csv", str(table), url=url)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and said in r.stderr, r.stderr
    assert not book.exists() and table.read_text(encoding="utf-8") == "kept"
    assert sorted(p.name for p in folder.iterdir()) == ["report.csv"]  # no temporary file left either
    assert r.stdout == ""


def test_an_output_folder_that_does_not_exist(url: str, tmp_path: Path) -> None:
    r = jiaoying("report", "--from", "2026-07-01", "--to", "2026-08-31", "--xlsx", str(tmp_path / "no" / "r.xlsx"),
                 url=url)
    assert r.returncode == 1 and "不存在" in r.stderr and "--xlsx" in r.stderr
    assert not (tmp_path / "no").exists()
