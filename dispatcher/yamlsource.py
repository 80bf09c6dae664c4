"""YAML that remembers where things are, so every problem in a site file can name its line.

Mappings load as ``YDict`` and sequences as ``YList``; both know their own line and the line of
each key or item (1-based). Scalars resolve more plainly than YAML 1.1: ``22:30`` stays a string
(not the sexagesimal 1350), ``2026-07-16`` stays a string, ``0720`` stays a string and only
``true``/``false`` are booleans, so times, dates and codes reach the validator as written.

Site files are read straight from libyaml's events (no node graph, the garbage collector paused):
a 60,000-person people.yaml in about 3 s instead of 15. A document that uses what that reader leaves
out (anchors and aliases, explicit tags, merge keys, complex keys, deep nesting) is read by the
full loader, as are the words of a syntax error. Officials typing Chinese write ``name：王建国``
(a full-width colon) or indent with full-width spaces; such a line is reported as that mistake, at
its own line, instead of as whatever YAML makes of it.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

E = TypeVar("E")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_DEPTH = 50  # of nested mappings and lists: a site file needs fewer than ten
_MAX_DIGITS = 30  # of an integer: longer ones are read as text
LONGEST_DURATION = timedelta(days=7)  # of a step's or a final escalation's delay
# Dated times in site files (duty shifts): the rota's arithmetic overflows near year 1 and 9999.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2099


@dataclass(frozen=True)
class Problem:
    file: str  # the bare file name, e.g. people.yaml
    line: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class YDict(dict[Any, Any]):
    __slots__ = ("line", "key_lines", "duplicates")
    line: int
    key_lines: dict[Any, int]
    # (key, line, line of the first occurrence); the reader leaves an empty tuple when there are none
    duplicates: list[tuple[Any, int, int]] | tuple[()]


class YList(list[Any]):
    __slots__ = ("line", "item_lines")
    line: int
    item_lines: list[int]


_PLAIN = {"tag:yaml.org,2002:" + t for t in ("bool", "int", "float", "timestamp")}
_RESOLVERS = [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    ("float", r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)$", "-+.0123456789"),
]


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _construct_map(loader: yaml.SafeLoader, node: MappingNode) -> Any:
    data = YDict()
    data.line, data.key_lines, data.duplicates = _line(node), {}, []
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if key in data:
            data.duplicates.append((key, _line(key_node), data.key_lines[key]))
        else:
            data.key_lines[key] = _line(key_node)
        data[key] = loader.construct_object(value_node, deep=True)


def _construct_seq(loader: yaml.SafeLoader, node: SequenceNode) -> Any:
    data = YList()
    data.line, data.item_lines = _line(node), [_line(n) for n in node.value]
    yield data
    data.extend(loader.construct_object(n, deep=True) for n in node.value)


def _loader(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    loader = type("SiteLoader", (base,), {"yaml_implicit_resolvers": {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _PLAIN]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }})
    for kind, pattern, first in _RESOLVERS:
        loader.add_implicit_resolver(f"tag:yaml.org,2002:{kind}", re.compile(pattern), list(first))
    loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
    loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    for kind in ("float", "bool", "timestamp", "binary"):
        tag = f"tag:yaml.org,2002:{kind}"
        loader.add_constructor(tag, _readable(yaml.SafeLoader.yaml_constructors[tag], kind))
    return loader


def _construct_int(loader: yaml.SafeLoader, node: Node) -> Any:
    """An integer, except one too long to be any field's value, which stays text (the field's
    check then says what it accepts; Python refuses to read integers of over 4,300 digits)."""
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    if len(text.lstrip("+-").replace("_", "")) > _MAX_DIGITS:
        return text
    return _readable(yaml.SafeLoader.yaml_constructors["tag:yaml.org,2002:int"], "int")(loader, node)


_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "timestamp": "a date and time",
          "binary": "base64 data"}


def _readable(construct: Callable[[Any, Node], Any], kind: str) -> Callable[[Any, Node], Any]:
    """``construct``, with a value that is not of its kind (``!!int abc``, ``!!bool maybe``,
    ``!!timestamp soon``) reported as a YAML error on its line instead of a Python exception."""

    def read(loader: Any, node: Node) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            problem = f"{clip(str(node.value))!r} is not {_KINDS[kind]} (tag !!{kind})"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None

    return read


# libyaml reads fast; the pure-Python parser words syntax errors better (and the same on every
# machine), so it re-reads a file that libyaml refused.
_FAST = _loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
_PLAIN_LOADER = _loader(yaml.SafeLoader)


class YamlFailure(Exception):
    """A file that cannot be read as YAML: ``line`` and ``message`` name the first problem,
    ``problems`` all of them (several full-width colons are reported together)."""

    def __init__(self, line: int, message: str, more: tuple[tuple[int, str], ...] = ()) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.problems = [(line, message), *more]


def parse_yaml(text: str) -> Any:
    """The document in ``text`` (None when empty); YamlFailure carries the line of a syntax error,
    of a full-width colon or space where YAML needs an ASCII one, or of where the document nests
    too deeply to be read."""
    collecting = gc.isenabled()
    gc.disable()  # building a big document (no cycles) would run the cyclic collector hundreds of times
    try:
        return _parse_text(text)
    finally:
        if collecting:
            gc.enable()


def _parse_text(text: str) -> Any:
    try:
        return _read_events(text)
    except _Unusual:
        pass
    except yaml.YAMLError:
        return _read_plain(text)
    except RecursionError:
        raise _too_deep(text) from None
    try:
        return _parse(_FAST, text)
    except yaml.YAMLError:
        pass
    except RecursionError:
        raise _too_deep(text) from None
    return _read_plain(text)


def _read_plain(text: str) -> Any:
    """The pure-Python loader's reading of a document libyaml refused: its document when it reads
    it after all, else its words for the error — or the full-width colons or spaces that caused it."""
    try:
        return _parse(_PLAIN_LOADER, text)
    except RecursionError:
        raise _too_deep(text) from None
    except yaml.MarkedYAMLError as exc:
        mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
        detail = exc.problem or "unreadable"
        if exc.context and context and mark and context.line != mark.line:
            detail += f" ({exc.context} that starts at line {context.line + 1})"
        elif exc.context:
            detail = f"{exc.context}: {detail}"
        line = mark.line + 1 if mark else 1
        raise _explained(text, line, f"invalid YAML: {detail}") from exc
    except yaml.YAMLError as exc:
        raise _explained(text, 1, f"invalid YAML: {exc}") from exc


def _too_deep(text: str) -> YamlFailure:
    """The failure for a document nested beyond what the loader can build (hundreds of levels):
    the line where it passes ``MAX_DEPTH``, found by reading its events (which needs no recursion)."""
    message = f"invalid YAML: mappings and lists nested more than {MAX_DEPTH} levels deep"
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return YamlFailure(event.start_mark.line + 1, message)
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return YamlFailure(mark.line + 1 if mark else 1, f"invalid YAML: {exc.problem or 'unreadable'}")
    except yaml.YAMLError:
        pass
    return YamlFailure(1, message)


def _parse(loader_class: type[yaml.SafeLoader], text: str) -> Any:
    loader = loader_class(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# --- the fast reader: libyaml's events straight into YDict / YList --------------------------------


class _Unusual(Exception):
    """The document uses something the event reader leaves to the full loader."""


_TAG = "tag:yaml.org,2002:"
_STR, _NULL = _TAG + "str", _TAG + "null"
# Plain scalars starting with any other character are strings without asking the resolver.
_RESOLVED_FIRST = frozenset(first for first, found in _FAST.yaml_implicit_resolvers.items() if found)
_SCALARS = {tag: _FAST.yaml_constructors[tag] for tag in (_TAG + "int", _TAG + "float", _TAG + "bool")}


def _read_events(text: str) -> Any:
    """The document, built from libyaml's events as the loader's constructors would build it from
    its nodes: the same YDict / YList with the same lines, the same scalars. Raises _Unusual for
    what only the full loader reads, yaml.YAMLError for a syntax error, YamlFailure for full-width
    colons or spaces."""
    loader = _FAST(text)
    try:
        return _build(loader, text)
    finally:
        loader.dispose()


def _build(loader: Any, text: str) -> Any:
    get = loader.get_event
    get()  # stream start
    if type(get()) is StreamEndEvent:  # no document
        return None
    resolve, first_chars, scalars = loader.resolve, _RESOLVED_FIRST, _SCALARS
    # One string object per distinct text: keys and codes, roles and units repeat thousands of times.
    same = {}.setdefault
    # Open collections, innermost last: [the YDict or YList, is a mapping, its pending key]; a
    # mapping's pending key is _KEY while it waits for a key.
    stack: list[list[Any]] = []
    flagged: list[tuple[int, str]] = []
    lines: list[str] = []
    key = _KEY
    while True:
        event = get()
        kind = type(event)
        if kind is ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Unusual
            value = raw = same(event.value, event.value)
            line = event.start_mark.line + 1
            plain = event.implicit[0]
            if plain:
                if not raw or raw[0] in first_chars:
                    tag = resolve(ScalarNode, raw, event.implicit)
                    if tag == _NULL:
                        value = None
                    elif tag != _STR:
                        if tag not in scalars:  # a merge key, '=' ...
                            raise _Unusual
                        value = scalars[tag](loader, ScalarNode(tag, raw, event.start_mark, event.end_mark))
                if "：" in raw or "\u3000" in raw or event.end_mark.line != event.start_mark.line:
                    lines = lines or _lines(text)
                    # where a key is written: a mapping's key, a list item, the whole document
                    keyish = not stack or not stack[-1][1] or key is _KEY
                    first = line - 1 if keyish else line
                    for n in range(first, min(event.end_mark.line + 1, len(lines))):
                        flagged += _fullwidth(lines[n], n + 1)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or event.tag is not None or len(stack) >= MAX_DEPTH:
                raise _Unusual
            if stack and stack[-1][1] and key is _KEY:  # a mapping or list as a key
                raise _Unusual
            line = event.start_mark.line + 1
            if kind is MappingStartEvent:
                made: Any = YDict()
                made.line, made.key_lines, made.duplicates = line, {}, _NO_DUPLICATES
            else:
                made = YList()
                made.line, made.item_lines = line, []
            if stack and stack[-1][1]:
                stack[-1][2] = key
            stack.append([made, kind is MappingStartEvent, _KEY])
            key = _KEY
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = stack.pop()[0]
            line = value.line
            if stack and stack[-1][1]:
                key = stack[-1][2]
        elif kind is AliasEvent:
            raise _Unusual
        else:
            raise yaml.composer.ComposerError(None, None, f"unexpected {kind.__name__}", event.start_mark)
        if not stack:  # the document's top value
            break
        top = stack[-1]
        if not top[1]:
            top[0].append(value)
            top[0].item_lines.append(line)
        elif key is _KEY:
            mapping = top[0]
            if value in mapping:
                mapping.duplicates = [*mapping.duplicates, (value, line, mapping.key_lines[value])]
            else:
                mapping.key_lines[value] = line
            key = value
        else:
            top[0][key] = value
            key = _KEY
    get()  # document end
    if type(get()) is not StreamEndEvent:
        raise yaml.composer.ComposerError(None, None, "expected a single document in the stream", None)
    if flagged:
        flagged = sorted(set(flagged))
        raise YamlFailure(*flagged[0], more=tuple(flagged[1:]))
    return value


_KEY = object()  # a mapping's pending key when it waits for one
_NO_DUPLICATES = ()  # the duplicates of the many mappings without any


# --- full-width colons and spaces ----------------------------------------------------------------

_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # what YAML counts lines by
# A key at the start of a line (after the indentation, list dashes or a flow mapping's brace) with a
# full-width colon after it, or an ASCII colon followed by a full-width space.
_FULLWIDTH_KEY = re.compile(r"[ \t\u3000]*(?:-[ \t\u3000]+)*(\{[ \t\u3000]*)?([A-Za-z_][A-Za-z0-9_-]*)"
                            r"[ \t\u3000]*(：|:(?=\u3000))[ \t\u3000]*(.*)")
_INDENT = re.compile(r"[ \t\u3000-]*")


def _lines(text: str) -> list[str]:
    return _LINE_BREAK.split(text.removeprefix("\ufeff"))  # a byte order mark is not on the line


def _fullwidth(line: str, number: int) -> list[tuple[int, str]]:
    """What a line written with full-width punctuation where YAML needs ASCII gets reported as."""
    found: list[tuple[int, str]] = []
    if "：" not in line and "\u3000" not in line:
        return found
    indent = _INDENT.match(line)
    if indent and "\u3000" in indent.group():
        found.append((number, "full-width space '\u3000' (U+3000) in the indentation: indent with ASCII spaces"))
    key = _FULLWIDTH_KEY.match(line)
    if key:
        brace, name, colon, rest = key.groups()
        rest = re.split(r"[ \t]#", rest, maxsplit=1)[0]
        if brace:
            rest = re.split(r"[,}]", rest, maxsplit=1)[0]
        rest = rest.strip(" \t\u3000")
        written = f"{name}: {rest}" if rest else f"{name}:"
        what = "full-width colon '：'" if colon == "：" else "full-width space '\u3000' (U+3000)"
        after = name if colon == "：" else f"{name}:"
        found.append((number, f"{what} after '{after}': write '{clip(written)}' "
                              f"({'an ASCII colon and a space' if rest else 'an ASCII colon'})"))
    return found


def _explained(text: str, line: int, message: str) -> YamlFailure:
    """The failure for a syntax error at ``line``: every full-width colon or space of the file (the
    parser stops at the first error; the user fixes them all at once), and the error itself unless
    the last of them at or before it explains it (YAML reports the mistake at the next line that is
    not blank or a comment)."""
    if "：" not in text and "\u3000" not in text:
        return YamlFailure(line, message)
    lines = _lines(text)
    found = [hit for n, content in enumerate(lines, 1) for hit in _fullwidth(content, n)]
    before = [n for n, _ in found if n <= line]
    if not before or any(content.strip() and not content.lstrip().startswith("#")
                         for content in lines[before[-1]:line - 1]):
        found = sorted([*found, (line, message)], key=lambda hit: hit[0])
    return YamlFailure(*found[0], more=tuple(found[1:]))


@dataclass
class Source:
    """One site file being read; problems found in it are collected here."""

    path: Path
    problems: list[Problem] = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.path.name

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def load(self) -> Any:
        """The file's document; None (with a problem) when missing or not valid YAML."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.add(1, f"file is missing: {self.file} must be in {self.path.parent}")
            return None
        except UnicodeDecodeError as exc:
            self.add(1, f"file is not UTF-8 text ({exc.reason})")
            return None
        try:
            return parse_yaml(text)
        except YamlFailure as exc:
            for line, message in exc.problems:
                self.add(line, message)
            return None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (PostgreSQL holds no NUL character, and no database a lone
    surrogate, both of which YAML can spell as escapes: "\\0", "\\ud800"), or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    what = "NUL characters (\\0)" if found.group() == "\x00" else "lone surrogates (\\ud800-\\udfff)"
    return f"must not contain {what}"


def describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    return "a list" if isinstance(value, list) else repr(value)


class Fields:
    """One mapping of a site file, read field by field; each problem lands on its field's line.

    ``label`` prefixes messages ("person li-hong: ..."); set it once the item's id is known.
    """

    def __init__(self, src: Source, data: Any, line: int, label: str = "") -> None:
        self.src = src
        self.line = line
        self.label = label
        self.ok = isinstance(data, dict)
        self.data: dict[Any, Any] = data if isinstance(data, dict) else {}
        if not self.ok and data is not None:
            self.problem(f"expected a mapping of fields, found {describe(data)}")

    def line_of(self, key: str) -> int:
        lines = getattr(self.data, "key_lines", {})
        return lines.get(key, self.line)

    def problem(self, message: str, key: str | None = None, line: int | None = None) -> None:
        where = line if line is not None else (self.line_of(key) if key else self.line)
        self.src.add(where, f"{self.label}: {message}" if self.label else message)

    def check_keys(self, accepted: tuple[str, ...]) -> None:
        """Report fields given twice and fields this item does not know (usually a typo)."""
        for key, line, first in getattr(self.data, "duplicates", []):
            self.problem(f"field '{key}' is given twice (also at line {first})", line=line)
        for key in self.data:
            if key not in accepted:
                self.problem(f"unknown field '{key}' (accepted: {', '.join(accepted)})", key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def text(self, key: str, required: bool = False) -> str | None:
        """A plain value as text; numbers are accepted and turned into text (unquoted codes)."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(f"'{key}' is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(f"'{key}' must be a single value, found {describe(value)}", key)
            return None
        text = str(value).strip()
        if required and not text:
            self.problem(f"'{key}' must not be empty", key)
            return None
        if problem := text_problem(text):
            self.problem(f"'{key}' {problem}", key)
            return None
        return text

    def texts(self, key: str, required: bool = False) -> list[tuple[str, int]]:
        """A list of plain values (a single value counts as a list of one), each with its line."""
        value = self.data.get(key)
        if value is None or value == []:
            if required:
                self.problem(f"'{key}' is required and must list at least one value")
            return []
        if not isinstance(value, list):
            value, lines = [value], [self.line_of(key)]
        else:
            lines = getattr(value, "item_lines", [self.line_of(key)] * len(value))
        out = []
        for item, line in zip(value, lines, strict=True):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.problem(f"'{key}' must list plain values, found {describe(item)}", line=line)
            elif problem := text_problem(str(item)):
                self.problem(f"'{key}' {problem}", line=line)
            else:
                out.append((str(item).strip(), line))
        return out

    def items(self, key: str) -> list[tuple[Any, int]]:
        """The entries of a list field, each with its line."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"'{key}' must be a list, found {describe(value)}", key)
            return []
        lines = getattr(value, "item_lines", [self.line_of(key)] * len(value))
        return list(zip(value, lines, strict=True))

    def each(self, key: str, label: str, numbered: bool = False) -> list[Fields]:
        """The entries of a list field as Fields labelled ``label`` (plus the 1-based position when
        ``numbered``); entries that are not mappings are reported and left out."""
        out = []
        for n, (data, line) in enumerate(self.items(key), 1):
            item = Fields(self.src, data, line, f"{label} {n}" if numbered else label)
            if item.ok:
                out.append(item)
        return out

    def sub(self, key: str, label: str | None = None) -> Fields | None:
        """A nested mapping field, or None when absent (or not a mapping, which is reported)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(f"'{key}' must be a mapping of fields, found {describe(value)}", key)
            return None
        return Fields(self.src, value, getattr(value, "line", self.line_of(key)),
                      self.label if label is None else label)

    def enums(self, key: str, parse: Callable[[str], E], kind: str, accepted: str, required: bool = True
              ) -> tuple[E, ...]:
        """A list of values from a fixed set; each unknown one is reported with the accepted ones."""
        out = []
        for text, line in self.texts(key, required):
            try:
                out.append(parse(text))
            except ValueError:
                self.problem(f"unknown {kind} '{text}'; accepted: {accepted}", line=line)
        return tuple(dict.fromkeys(out))

    def duration(self, key: str) -> timedelta | None:
        """``0``, ``30s``, ``5m``, ``1h30m``; a bare number other than 0 is refused (which unit?)."""
        value = self.data.get(key)
        if value is None:
            self.problem(f"'{key}' is required (a duration like 0, 30s, 5m or 1h30m)")
            return None
        text = str(value).strip()
        match = _DURATION.match(text)
        if text == "0" and not isinstance(value, bool):
            return timedelta(0)
        if text.isdigit():
            shown = clip(text)
            self.problem(f"'{key}' needs a unit: write {shown}s, {shown}m or {shown}h", key)
            return None
        if isinstance(value, bool) or not text or not match:
            self.problem(f"'{key}' must be a duration like 0, 30s, 5m or 1h30m, found '{clip(str(value))}'", key)
            return None
        groups = match.groups()
        span = None
        if all(len(g or "") <= 6 for g in groups):  # longer numbers are beyond any bound (or timedelta's)
            hours, minutes, seconds = (int(g or 0) for g in groups)
            span = timedelta(hours=hours, minutes=minutes, seconds=seconds)
        if span is None or span > LONGEST_DURATION:
            self.problem(f"'{key}' must be at most {format_span(LONGEST_DURATION)} ({LONGEST_DURATION.days} days), "
                         f"found '{clip(text)}'", key)
            return None
        return span

    def time_of_day(self, key: str) -> time | None:
        text = self.text(key, required=True)
        match = _TIME.match(text) if text else None
        if text and not match:
            self.problem(f"'{key}' must be a time of day like 08:30, found '{text}'", key)
        return time(int(match[1]), int(match[2])) if match else None

    def date_time(self, key: str, tz: tzinfo) -> datetime | None:
        """A dated time; without an offset it is read in ``tz`` (the site's time zone)."""
        text = self.text(key, required=True)
        if text is None:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            self.problem(f"'{key}' must be a date and time like 2026-07-16 08:30, found '{text}'", key)
            return None
        if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            self.problem(f"'{key}' must be a date and time in the years {EARLIEST_YEAR} to {LATEST_YEAR}, "
                         f"found '{text}'", key)
            return None
        return value if value.tzinfo else value.replace(tzinfo=tz)


def clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def format_span(span: timedelta) -> str:
    """timedelta(minutes=90) -> "1h30m", as durations are written in the site files."""
    hours, rest = divmod(int(span.total_seconds()), 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0"
