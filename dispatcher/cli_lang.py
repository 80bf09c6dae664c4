"""The ``--lang`` option of the commands whose output officials read (Chinese first, English on
request), in one place: the option, its check, and picking a word from a ``(zh, en)`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import typer
from rich.markup import escape

LangOption = Annotated[str, typer.Option("--lang", help="zh (default) or en")]


def checked_lang(lang: str) -> str:
    """``lang`` if it is zh or en; otherwise the command stops with a one-line error."""
    from .cli import fail

    if lang not in ("zh", "en"):
        raise fail(escape(f"--lang must be zh or en, not {lang!r}"))
    return lang


def word(words: Mapping[str, tuple[str, str]], key: str, lang: str) -> str:
    return words[key][0 if lang == "zh" else 1]
