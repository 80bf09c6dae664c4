"""The secret key's file: where the embedded default keeps the key it generated, outside the
database (a copy of the database alone must not be enough to forge links or board sessions).

Read by :mod:`dispatcher.config` when ``JIAOYING_SECRET_KEY`` is not set; written only by
``jiaoying db upgrade``, once, readable by its owner only (mode 0600).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "jiaoying.secret"
MIN_LENGTH = 32


def default_path(database_url: str) -> Path:
    """``jiaoying.secret`` next to the SQLite file; for any other database (or an in-memory one)
    in the working directory."""
    if database_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        database = make_url(database_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            return Path(database).expanduser().resolve().parent / FILE_NAME
    return Path.cwd() / FILE_NAME


def read(path: Path) -> str | None:
    """The key kept in ``path`` (surrounding whitespace removed); None when there is no such file."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot read the secret file {path}: {exc.strerror or exc}") from None


def create(path: Path) -> bool:
    """Write a new random key to ``path`` (mode 0600). False when the file exists already: an
    existing key is never replaced (links and sessions signed with it would stop working)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    os.chmod(path, 0o600)  # whatever the umask
    return True
