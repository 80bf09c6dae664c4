"""Schema changes go only through Alembic: ``jiaoying db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from alembic import command

from ..config import project_root
from .session import engine_for


def _config(url: str) -> Config:
    ini = project_root() / "alembic.ini"
    if not ini.is_file():
        raise FileNotFoundError(f"alembic.ini not found under {project_root()}: run from the project folder")
    config = Config(str(ini))
    config.set_main_option("script_location", str(Path(ini).parent / "alembic"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(_config(url), revision)


def current_revision(url: str) -> str | None:
    with engine_for(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(_config(url)).get_current_head()
