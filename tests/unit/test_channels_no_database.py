"""The architecture rule for adapters: nothing under dispatcher/channels/ imports the database
(sqlalchemy, dispatcher.db) — the services own database work. Read with ast, so an import inside a
function or an ``if TYPE_CHECKING:`` block counts too, and relative imports are resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.config import project_root
from tests.support.imports import imported

CHANNELS = project_root() / "dispatcher" / "channels"
PACKAGE = "dispatcher.channels"
FORBIDDEN = ("sqlalchemy", "dispatcher.db")


def database_imports(source: str) -> list[str]:
    return sorted({n for n in imported(source, PACKAGE) for f in FORBIDDEN if n == f or n.startswith(f + ".")})


def modules() -> list[Path]:
    return sorted(CHANNELS.glob("*.py"))


def test_the_channels_package_is_where_the_test_looks() -> None:
    names = {p.name for p in modules()}
    assert {"__init__.py", "base.py", "broadcast.py", "im.py", "simulator.py"} <= names


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_no_channel_module_imports_the_database(path: Path) -> None:
    found = database_imports(path.read_text(encoding="utf-8"))
    assert found == [], f"dispatcher/channels/{path.name} imports {found}: database work is dispatcher/services/' job"


@pytest.mark.parametrize(("bad", "source"), [
    ("a plain sqlalchemy import", "import sqlalchemy"),
    ("a sqlalchemy submodule", "import sqlalchemy.orm as orm"),
    ("from sqlalchemy", "from sqlalchemy import select"),
    ("an absolute dispatcher.db import", "from dispatcher.db.tables import WarningRow"),
    ("a relative ..db import", "from ..db.record_repo import append_event"),
    ("the db package by name, relatively", "from .. import db"),
    ("an import hidden in a function", "def f():\n    from ..db.session import transaction\n"),
    ("an import only for type checking",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlalchemy.orm import Session\n"),
])
def test_the_check_catches(bad: str, source: str) -> None:
    """Bad input: a channel module's source importing the database (``bad`` says how)."""
    assert database_imports(source), bad


@pytest.mark.parametrize("source", [
    "from ..domain.areas import AreaTree",  # the domain is not the database
    "from .base import ChannelError",
    "import httpx",
    "from ..dbx import thing",  # a name that only starts like it
    "from ..config import Settings",
])
def test_the_check_lets_through(source: str) -> None:
    assert database_imports(source) == []
