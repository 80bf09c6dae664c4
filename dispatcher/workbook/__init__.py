"""The county roster workbook (通讯录.xlsx): ``jiaoying import xlsx`` and ``jiaoying export xlsx``.

- ``reader``: a workbook's sheets as rows of text with cell references (header row found, merged
  cells spread over the rows they cover).
- ``roster_import``: the rows -> people.yaml, with every problem at its cell and nothing written
  when there is any; ids kept across imports.
- ``export``: the site -> a workbook (通讯录, 包保, 值班表) for checking and printing.

Domain code only: no HTTP, no database, no Celery. See docs/workbook.md.
"""

from .export import ExportReport, export_workbook
from .reader import Problem
from .roster_import import ImportPlan, apply, plan_import

__all__ = ["ExportReport", "ImportPlan", "Problem", "apply", "export_workbook", "plan_import"]
