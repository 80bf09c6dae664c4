"""Every CSV the product writes goes through here, so no cell can run as a spreadsheet formula.

Warning texts, notes, SMS bodies and names come from outside; a cell such as
``=HYPERLINK("http://…","点击")`` or ``@SUM(…)`` would be evaluated by Excel or WPS when a duty
officer opens the export. A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is prefixed with a single quote (OWASP, "CSV Injection"), which spreadsheets
show as text. Numbers written as numbers are left alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"  # Excel on a Chinese Windows desktop reads the file as UTF-8 only with it


def cell(value: Any) -> Any:
    """The value as a CSV cell that no spreadsheet evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def document(header: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = True) -> str:
    """A whole CSV file: the BOM, the header, then the rows, every cell neutralised (``bom=False``:
    a further table to append to a file that has its BOM)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return (BOM if bom else "") + buffer.getvalue()
