"""The layers of the web edge: the API (dispatcher/api) and the board (dispatcher/board) import
neither each other — what they share is in dispatcher/web/deps.py, and dispatcher/web/app.py
mounts both — and the domain (dispatcher/domain) imports no framework, database or provider SDK.

Read with ast, so an import inside a function or an ``if TYPE_CHECKING:`` block counts too, and
relative imports are resolved against the module's own package. The one exception is
dispatcher/api/app.py, kept only so ``dispatcher.api.app:production_app`` still names the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.config import project_root
from tests.support.imports import imported

SOURCE = project_root() / "dispatcher"
API_REEXPORT = SOURCE / "api" / "app.py"  # re-exports dispatcher.web.app, which mounts the board
# The domain is pure: none of these anywhere under dispatcher/domain (true of all of them today).
FRAMEWORKS = ("fastapi", "starlette", "sqlalchemy", "celery", "twilio", "httpx")


def package_of(path: Path) -> str:
    """The package a module's relative imports start from: dispatcher/board/sse.py is in
    dispatcher.board, dispatcher/api/routes/__init__.py is dispatcher.api.routes itself."""
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1])


def imports_of(source: str, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """The imports of ``source`` that are one of ``forbidden`` or inside one of them."""
    return sorted({n for n in imported(source, package) for f in forbidden if n == f or n.startswith(f + ".")})


def modules(folder: str) -> list[Path]:
    return sorted((SOURCE / folder).rglob("*.py"))


def _found(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return imports_of(path.read_text(encoding="utf-8"), package_of(path), forbidden)


def _name(path: Path) -> str:
    return str(path.relative_to(SOURCE.parent))


def test_the_packages_are_where_the_test_looks() -> None:
    assert {"routes.py", "sse.py", "views.py", "actions.py"} <= {p.name for p in modules("board")}
    assert {"deps.py", "errors.py", "app.py", "warnings.py", "twilio.py"} <= {p.name for p in modules("api")}
    assert {"deps.py", "app.py"} <= {p.name for p in modules("web")}
    assert {"callouts.py", "escalation.py", "rules.py"} <= {p.name for p in modules("domain")}


@pytest.mark.parametrize("path", modules("board"), ids=_name)
def test_no_board_module_imports_the_api(path: Path) -> None:
    found = _found(path, ("dispatcher.api",))
    assert found == [], f"{_name(path)} imports {found}: what the board shares with the API is in dispatcher/web/"


@pytest.mark.parametrize("path", [p for p in modules("api") if p != API_REEXPORT], ids=_name)
def test_no_api_module_imports_the_board(path: Path) -> None:
    found = _found(path, ("dispatcher.board",))
    assert found == [], f"{_name(path)} imports {found}: what the API shares with the board is in dispatcher/web/"


def test_the_shared_dependencies_import_neither_edge() -> None:
    path = SOURCE / "web" / "deps.py"
    assert _found(path, ("dispatcher.api", "dispatcher.board")) == []


INNER = [p for folder in ("domain", "services", "db", "runtime", "channels", "intake") for p in modules(folder)]


@pytest.mark.parametrize("path", INNER, ids=_name)
def test_the_core_imports_neither_edge(path: Path) -> None:
    """The services and everything under them serve the edges and know none of them (the 考核's 5/15/30
    minutes once came from the board's statistics module: they are the domain's ACK_WINDOWS now)."""
    found = _found(path, ("dispatcher.board", "dispatcher.api", "dispatcher.web"))
    assert found == [], f"{_name(path)} imports {found}: the web edge depends on the core, not the other way"


@pytest.mark.parametrize("path", modules("domain"), ids=_name)
def test_the_domain_imports_no_framework_database_or_provider(path: Path) -> None:
    found = _found(path, FRAMEWORKS)
    assert found == [], f"{_name(path)} imports {found}: the domain is pure (no framework, no I/O)"


@pytest.mark.parametrize(("bad", "source", "package", "forbidden"), [
    ("the API's deps, relatively", "from ..api.deps import kick", "dispatcher.board", "dispatcher.api"),
    ("the API by name, relatively", "from .. import api", "dispatcher.board", "dispatcher.api"),
    ("the API, absolutely", "import dispatcher.api.routes.warnings", "dispatcher.board", "dispatcher.api"),
    ("the board from a route, relatively", "from ...board.pages import error_page", "dispatcher.api.routes",
     "dispatcher.board"),
    ("the board in a function", "def f():\n    from ..board import views\n", "dispatcher.api", "dispatcher.board"),
    ("sqlalchemy for type checking",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlalchemy.orm import Session\n",
     "dispatcher.domain", "sqlalchemy"),
    ("a fastapi submodule", "import fastapi.responses as responses", "dispatcher.domain", "fastapi"),
    ("twilio", "from twilio.rest import Client", "dispatcher.domain", "twilio"),
])
def test_the_check_catches(bad: str, source: str, package: str, forbidden: str) -> None:
    """Bad input: a module's source importing across a layer (``bad`` says how)."""
    assert imports_of(source, package, (forbidden,)), bad


@pytest.mark.parametrize(("source", "package", "forbidden"), [
    ("from ..web.deps import ClockDep", "dispatcher.board", "dispatcher.api"),
    ("from .pages import render", "dispatcher.board", "dispatcher.api"),
    ("from ..apix import thing", "dispatcher.board", "dispatcher.api"),  # a name that only starts like it
    ("from ...services import ack", "dispatcher.api.routes", "dispatcher.board"),
    ("from .hazards import Level", "dispatcher.domain", "sqlalchemy"),
])
def test_the_check_lets_through(source: str, package: str, forbidden: str) -> None:
    assert imports_of(source, package, (forbidden,)) == []
