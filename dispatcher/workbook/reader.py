"""Reading a workbook as counties keep it: find each sheet's header row, read its rows as text.

A sheet is read when one of its rows holds the key header (姓名) and at least one other known
header; title rows above it are passed over. Columns may come in any order and unknown columns are
ignored. A merged cell's value (openpyxl keeps it only in the range's top-left cell) applies to
every row the range covers, and its cell reference is the top-left cell's. Excel numbers are read
as text without a trailing ``.0`` (13905720001, not 13905720001.0).
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.worksheet import Worksheet

# Blanks inside headers ("姓  名") and notes in brackets ("手机（必填）"), dropped before matching.
_HEADER_NOISE = re.compile(r"[\s\u3000*＊:：]|[(（][^)）]*[)）]")


@dataclass(frozen=True)
class Problem:
    """A problem with its place: ``FILE.xlsx!Sheet!C12`` (a cell), or a site file's ``file:line``."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Cell:
    text: str  # the value as text, stripped; "" when empty
    ref: str  # e.g. "C12"; for a merged range, its top-left cell


@dataclass
class Row:
    sheet: str
    number: int  # the row's number in the sheet (1-based)
    cells: dict[str, Cell]  # field -> cell, for each field the sheet has a column for

    def text(self, key: str) -> str:
        cell = self.cells.get(key)
        return cell.text if cell else ""

    def has(self, key: str) -> bool:
        return key in self.cells


@dataclass
class Table:
    """One sheet's header row and the rows under it that are not blank."""

    sheet: str
    header_row: int
    columns: dict[str, int]  # field -> column number (1-based)
    rows: list[Row] = field(default_factory=list)


@dataclass
class Book:
    file: str  # the workbook's file name, as problems show it
    tables: list[Table] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "Sheet2: why it was not read"
    problems: list[Problem] = field(default_factory=list)

    def where(self, sheet: str, ref: str) -> str:
        return f"{self.file}!{sheet}!{ref}"


def normalize_header(text: str) -> str:
    return _HEADER_NOISE.sub("", text).upper()


def cell_text(value: Any) -> str:
    """A cell's value as text: Excel numbers without ``.0``, dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


def read_book(path: Path, headers: Mapping[str, Iterable[str]], key: str,
              skip_sheets: Iterable[str] = ()) -> Book:
    """The tables of the workbook at ``path``. ``headers`` maps each field to the header texts
    accepted for it; ``key`` is the field every table must have (its header finds the header row).
    Sheets named in ``skip_sheets`` and hidden sheets are not read (and are reported as skipped)."""
    book = Book(Path(path).name)
    aliases = {normalize_header(alias): name for name, texts in headers.items() for alias in texts}
    try:
        with warnings.catch_warnings():  # WPS and Excel extensions openpyxl drops ("Data Validation …")
            warnings.simplefilter("ignore", UserWarning)
            workbook = load_workbook(path, data_only=True)
    except (OSError, InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        book.problems.append(Problem(book.file, f"cannot read the workbook (save it as .xlsx): {exc}"))
        return book
    for sheet in workbook.worksheets:
        if sheet.title in skip_sheets:
            book.skipped.append(f"{sheet.title}: written by `jiaoying export xlsx` for checking; not read")
            continue
        if sheet.sheet_state != "visible":  # often last year's roster, kept out of sight
            book.skipped.append(f"{sheet.title}: hidden; not read (unhide the sheet to import it)")
            continue
        _read_sheet(book, sheet, aliases, key)
    workbook.close()
    return book


def _read_sheet(book: Book, sheet: Worksheet, aliases: dict[str, str], key: str) -> None:
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    merged = _merged_values(sheet)
    _fill_merged(values, merged)
    header = _find_header(values, aliases, key)
    if header is None:
        near = _near_header(values, aliases)
        if near is None:
            book.skipped.append(f"{sheet.title}: no header row with {_key_header(aliases, key)}")
        else:
            row, col = near
            book.problems.append(Problem(book.where(sheet.title, f"{get_column_letter(col)}{row}"),
                                         f"no {_key_header(aliases, key)} column in this header row"))
        return
    cells = values[header - 1]
    if header < len(values) and _count_known(values[header], aliases) >= 2:
        # a second header row under merged ones (姓名 | 联系电话 over 手机 | 办公电话): its headers
        # take the place of the first row's, column by column
        width = max(len(cells), len(values[header]))
        upper, lower = (row + [None] * (width - len(row)) for row in (cells, values[header]))
        cells = [low if _known(low, aliases) else up for up, low in zip(upper, lower, strict=True)]
        header += 1
    columns = _columns(book, sheet.title, cells, header, aliases)
    table = Table(sheet.title, header, columns)
    for number in range(header + 1, len(values) + 1):
        row = _row(sheet.title, number, values[number - 1], columns, merged)
        if any(cell.text for cell in row.cells.values()):
            table.rows.append(row)
    book.tables.append(table)


def _key_header(aliases: dict[str, str], key: str) -> str:
    return next(alias for alias, name in aliases.items() if name == key)


def _known(value: Any, aliases: dict[str, str]) -> str | None:
    return aliases.get(normalize_header(cell_text(value))) if value is not None else None


def _count_known(row: list[Any], aliases: dict[str, str]) -> int:
    return len({_known(value, aliases) for value in row} - {None})


def _find_header(values: list[list[Any]], aliases: dict[str, str], key: str) -> int | None:
    """The number of the first row holding the key header and at least one other known header."""
    for number, row in enumerate(values, 1):
        found = {_known(value, aliases) for value in row} - {None}
        if key in found and len(found) >= 2:
            return number
    return None


def _near_header(values: list[list[Any]], aliases: dict[str, str]) -> tuple[int, int] | None:
    """(row, column) of the first known header in the first row with three known headers: a
    roster's header row that lacks the key header (a problem, unlike a sheet with no header row
    at all, or a summary sheet of 区域 and 单位)."""
    for number, row in enumerate(values, 1):
        known = [col for col, value in enumerate(row, 1) if _known(value, aliases)]
        if len({_known(row[col - 1], aliases) for col in known}) >= 3:
            return number, known[0]
    return None


def _columns(book: Book, sheet: str, header: list[Any], number: int, aliases: dict[str, str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for col, value in enumerate(header, 1):
        name = _known(value, aliases)
        if name is None:
            continue
        if name in columns:
            first = f"{get_column_letter(columns[name])}{number}"
            book.problems.append(Problem(book.where(sheet, f"{get_column_letter(col)}{number}"),
                                         f"a second {cell_text(value)} column (the first is {first}); "
                                         "remove or rename one"))
            continue
        columns[name] = col
    return columns


def _merged_values(sheet: Worksheet) -> dict[tuple[int, int], tuple[Any, str]]:
    """(row, column) -> (value, top-left ref) for every covered cell of a merged range but its top-left."""
    out: dict[tuple[int, int], tuple[Any, str]] = {}
    for merged in sheet.merged_cells.ranges:
        top, left = merged.min_row, merged.min_col
        value = sheet.cell(top, left).value
        ref = f"{get_column_letter(left)}{top}"
        for row in range(top, merged.max_row + 1):
            for col in range(left, merged.max_col + 1):
                if (row, col) != (top, left):
                    out[(row, col)] = (value, ref)
    return out


def _fill_merged(values: list[list[Any]], merged: dict[tuple[int, int], tuple[Any, str]]) -> None:
    """Give every covered cell its range's value: a 单位 merged over five rows is in each of them,
    and a header merged over two header rows (姓名 beside 联系电话 / 手机, 办公电话) is in the lower one."""
    for (row, col), (value, _) in merged.items():
        if row <= len(values):
            cells = values[row - 1]
            cells.extend([None] * (col - len(cells)))
            cells[col - 1] = value


def _row(sheet: str, number: int, values: list[Any], columns: dict[str, int],
         merged: dict[tuple[int, int], tuple[Any, str]]) -> Row:
    cells: dict[str, Cell] = {}
    for name, col in columns.items():
        value = values[col - 1] if col <= len(values) else None
        ref = merged[(number, col)][1] if (number, col) in merged else f"{get_column_letter(col)}{number}"
        cells[name] = Cell(cell_text(value), ref)
    return Row(sheet, number, cells)
