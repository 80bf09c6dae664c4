"""Schema changes go only through Alembic: ``jiaoying db upgrade``. ``schema_problem`` is the
check every command that uses the database makes first (``dispatcher.cli.database_url``)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from alembic import command

from ..config import project_root
from .session import engine_for

UPGRADE = "jiaoying db upgrade"
NO_SCHEMA = f"数据库尚未初始化：请先运行 {UPGRADE} (the database has no schema: run `{UPGRADE}` first)"
CONNECT_TIMEOUT = 10  # seconds the check waits for a database server that does not answer


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


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database, an in-memory one or a ``file:`` URI."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def schema_problem(url: str) -> str | None:
    """Why the database at ``url`` cannot be used as it is, in one line that says what to do; None
    when it is reachable and at the schema this version of the code needs.

    Never creates anything: a SQLite file that does not exist is reported, not created (connecting
    would leave an empty file behind), and the check reads only Alembic's version table."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        return NO_SCHEMA
    args = {"connect_timeout": CONNECT_TIMEOUT} if url.startswith("postgresql") else {}
    engine = create_engine(url, poolclass=pool.NullPool, connect_args=args)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        return unreachable(url, exc)
    finally:
        engine.dispose()
    if current is None:
        return NO_SCHEMA
    try:
        scripts = ScriptDirectory.from_config(_config(url))
    except FileNotFoundError:
        return None  # an installed copy without its migrations: the revision cannot be compared
    head = scripts.get_current_head()
    if current == head:
        return None
    try:
        scripts.get_revision(current)
    except CommandError:
        return (f"数据库结构比本程序新 (the database is at revision {current}, which this version of Jiaoying "
                f"does not know: a newer version migrated it; run that version)")
    return (f"数据库结构不是最新：请先运行 {UPGRADE} (the schema is at revision {current}, this version needs "
            f"{head}: run `{UPGRADE}`)")


def unreachable(url: str, exc: BaseException) -> str:
    """One line for a database that cannot be reached or read: where (never the password) and why."""
    where = make_url(url).render_as_string(hide_password=True)
    cause = getattr(exc, "orig", None) or exc
    reason = next((line.strip() for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
    if sqlite_file(url) is not None:
        return f"无法读取数据库 (cannot read the database {where}: {reason})"
    return f"无法连接数据库 (cannot reach the database {where}: {reason})"
