"""`jiaoying` run in this process, for tests that call it many times: typer's runner parses, prints
and exits as the command does, without the two seconds of imports a subprocess costs on each call.
Tests that need a separate process (a server, signals, the demo) run it as one."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from dispatcher.cli import app
from dispatcher.config import get_settings


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str]) -> Ran:
    """The command's exit code, standard output and standard error, with ``env`` over the process's."""
    get_settings.cache_clear()  # settings are read once per process: here each call is one
    try:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})
    finally:
        get_settings.cache_clear()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)
