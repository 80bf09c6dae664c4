"""people.yaml written as a person would write it: one field a line, short lists and mappings in
flow style (``roles: [county_leader]``, ``im: { dingtalk: "+86…" }``), codes and numbers quoted.

``write_people`` also returns, for every line it wrote, which person and which field the line holds,
so that a problem the validator reports at ``people.yaml:LINE`` can be traced to a workbook cell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A string is written plain when it starts with a letter or an ideograph, holds nothing YAML reads
# as syntax, and cannot be read as another type; anything else is double-quoted.
_PLAIN = re.compile(r"[^\s\-?:,\[\]{}#&*!|<>='\"%@`0-9+.~][^\s:,\[\]{}#'\"]*")
_NOT_TEXT = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_ESCAPED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def scalar(value: Any) -> str:
    """One value in YAML: strings plain or double-quoted, numbers and booleans as they are."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _NOT_TEXT and text.isprintable():
        return text
    return '"' + "".join(_escape(ch) for ch in text) + '"'


def _escape(ch: str) -> str:
    if ch in _ESCAPED:
        return _ESCAPED[ch]
    if ch.isprintable() or ch == " ":
        return ch
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def flow(value: Any) -> str:
    """A value on one line: ``{ kind: 包保, areas: ["330599102"] }``, ``[a, b]``, or a scalar.
    Strings of digits (codes) and numbers written with a '+' are quoted, so they stay text."""
    if isinstance(value, Mapping):
        inner = ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


@dataclass(frozen=True)
class Place:
    """What a line of people.yaml holds: a person's field (and which item of a list), or a role."""

    index: int  # the person's index in the list; -1 for a role
    key: str  # the field; the role id for a role
    item: int = -1  # for a list written one item a line: the item's index; else -1


@dataclass
class Written:
    text: str
    lines: dict[int, Place] = field(default_factory=dict)  # line number (1-based) -> what it holds


class _Lines:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.where: dict[int, Place] = {}

    def add(self, text: str, where: Place | None = None) -> None:
        self.out.append(text)
        if where is not None:
            self.where[len(self.out)] = where


def write_people(header: Sequence[str], roles: Mapping[str, str], people: Sequence[Mapping[str, Any]]) -> Written:
    """people.yaml: ``header`` as comment lines, the roles, then each person's fields in order."""
    lines = _Lines()
    for comment in header:
        lines.add(f"# {comment}".rstrip())
    lines.add("roles:")
    for role, name in roles.items():
        lines.add(f"  {scalar(role)}: {scalar(name)}", Place(-1, role))
    lines.add("")
    lines.add("people:")
    for index, person in enumerate(people):
        first = True
        for key, value in person.items():
            lead = "  - " if first else "    "
            first = False
            _field(lines, lead, key, value, index)
    return Written("\n".join(lines.out) + "\n", lines.where)


def _field(lines: _Lines, lead: str, key: str, value: Any, index: int) -> None:
    """A list of numbers or of mappings one item a line (as docs/site-files.md shows ``phones``
    and ``responsibilities``), anything else on the field's line."""
    if isinstance(value, list) and value and (key == "phones" or any(isinstance(v, Mapping) for v in value)):
        lines.add(f"{lead}{key}:", Place(index, key))
        for item, entry in enumerate(value):
            lines.add(f"      - {flow(entry)}", Place(index, key, item))
    else:
        lines.add(f"{lead}{key}: {flow(value)}", Place(index, key))
