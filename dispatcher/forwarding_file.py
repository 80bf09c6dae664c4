"""The forwarding file (``JIAOYING_FORWARDING_FILE``): where red and orange warnings are forwarded as
CAP, and who is told each call-out's settled result. Read like the site files (``yamlsource``):
every problem names its line, all of them at once. The format is in docs/forwarding.md.

Keys are secrets: given inline (``key:``) or, better, named (``key_env: NAME``) and read from the
environment when the file is read. A named variable that is not set is a problem of the file, so
``jiaoying forwarding check`` finds it before a warning does. Keys never appear in a ``repr``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from .domain.hazards import Hazard, Level, accepted_hazards, accepted_levels, parse_hazard, parse_level
from .yamlsource import Fields, Problem, Source, clip

__all__ = ["DEFAULT_LEVELS", "ForwardingConfig", "ForwardingFileInvalid", "ReportTo", "Target", "check_file",
           "load_file"]

DEFAULT_LEVELS = frozenset({Level.RED, Level.ORANGE})
DEFAULT_TIMEOUT = timedelta(seconds=10)
LONGEST_TIMEOUT = timedelta(seconds=60)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN = re.compile(r"^[^\s,<&\x00-\x1f\x7f]{1,128}$")  # a CAP sender (intake.schema's rule)
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_FORMATS = ("json", "cap")


@dataclass(frozen=True)
class ReportTo:
    """One recipient of the settled result: a webhook (``kind`` report) or e-mail addresses
    (``kind`` report_email). ``slot``: its place in the target's ``report`` list."""

    slot: int
    kind: str  # report | report_email
    url: str = ""
    format: str = "json"  # json | cap (webhooks)
    key: str = field(default="", repr=False)
    emails: tuple[str, ...] = ()
    timeout: timedelta = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Target:
    """A system warnings are forwarded to (its intake takes CAP 1.2 with ``Authorization: Bearer``)."""

    id: str
    name: str
    url: str = ""  # empty: a target that only receives the settled result
    key: str = field(default="", repr=False)
    agency: str = ""  # the agency of the key *we* gave them: what they post is never forwarded back
    levels: frozenset[Level] = DEFAULT_LEVELS
    hazards: frozenset[Hazard] | None = None  # None: every hazard
    drills: bool = False
    sender: str = ""  # what we post to them as; empty: the file's sender
    timeout: timedelta = DEFAULT_TIMEOUT
    report: tuple[ReportTo, ...] = ()
    line: int = 0

    def wants(self, hazard: str, level: str, drill: bool) -> bool:
        """Whether a message of this hazard, level and drill status is for this target."""
        try:
            return (Level(level) in self.levels and (self.hazards is None or Hazard(hazard) in self.hazards)
                    and (self.drills or not drill))
        except ValueError:
            return False

    def recipient(self, slot: int) -> ReportTo | None:
        return self.report[slot] if 0 <= slot < len(self.report) else None


@dataclass(frozen=True)
class ForwardingConfig:
    sender: str = ""  # our CAP sender id; empty: the loaded site's id
    sender_name: str = ""  # <senderName>; empty: the county's name
    targets: tuple[Target, ...] = ()

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.id == target_id), None)


class ForwardingFileInvalid(ValueError):
    """The forwarding file cannot be used; ``problems`` name each line (``file:line: message``)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]) + (f" (and {len(problems) - 5} more)"
                                                                    if len(problems) > 5 else ""))
        self.problems = problems


def load_file(path: str | Path, environ: Mapping[str, str] | None = None) -> ForwardingConfig:
    """The file's configuration; ForwardingFileInvalid with every problem when it has any."""
    config, problems = check_file(path, environ)
    if problems or config is None:
        raise ForwardingFileInvalid(problems or [Problem(Path(path).name, 1, "cannot be read")])
    return config


def check_file(path: str | Path, environ: Mapping[str, str] | None = None
               ) -> tuple[ForwardingConfig | None, list[Problem]]:
    """The configuration (None when the file cannot be read at all) and every problem found."""
    src = Source(Path(path))
    data = src.load()
    if data is None:
        if not src.problems:
            src.add(1, "the file is empty: it needs a 'targets' list")
        return None, src.problems
    env = os.environ if environ is None else environ
    top = Fields(src, data, getattr(data, "line", 1))
    if not top.ok:
        return None, src.problems
    top.check_keys(("sender", "sender_name", "targets"))
    sender = _sender(top, "sender")
    sender_name = top.text("sender_name") or ""
    if top.get("targets") is None:
        top.problem("'targets' is required: a list of the systems warnings are forwarded to")
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for item in top.each("targets", "target", numbered=True):
        target_id, target = _target(item, env)
        if target_id is not None and target_id in seen:
            item.problem(f"target id '{target_id}' is used twice (also at line {seen[target_id]})", "id")
            continue
        if target_id is not None:
            seen[target_id] = item.line_of("id")
        if target is not None:
            targets.append(target)
    return ForwardingConfig(sender, sender_name, tuple(targets)), src.problems


_TARGET_KEYS = ("id", "name", "url", "key", "key_env", "agency", "levels", "hazards", "drills", "sender", "timeout",
                "report")
_REPORT_KEYS = ("url", "format", "key", "key_env", "email", "timeout")


def _target(item: Fields, env: Mapping[str, str]) -> tuple[str | None, Target | None]:
    """The target's id (None if it has none usable) and the target (None if it has any problem)."""
    target_id = item.text("id", required=True)
    if target_id is not None and not _ID.match(target_id):
        item.problem(f"'id' must be 1 to 64 letters, digits, '-' or '_', found '{clip(target_id)}'", "id")
        target_id = None
    if target_id is not None:
        item.label = f"target {target_id}"
    item.check_keys(_TARGET_KEYS)
    before = len(item.src.problems)
    name = item.text("name") or target_id or ""
    url = _url(item, "url") if item.has("url") else ""
    key = _key(item, env)
    if url and not key and not item.has("key") and not item.has("key_env"):
        item.problem("'key' or 'key_env' is required with 'url': the agency key they gave us for their intake",
                     "url")
    levels = item.enums("levels", parse_level, "level", accepted_levels(), required=False)
    hazards = item.enums("hazards", parse_hazard, "hazard", accepted_hazards(), required=False)
    drills = _flag(item, "drills")
    agency = item.text("agency") or ""
    sender = _sender(item, "sender")
    timeout = _timeout(item)
    report = _report(item, env, timeout)
    if not url and not report and not item.has("url"):
        item.problem("give a 'url' (their intake, which takes CAP 1.2) or a 'report' list, or both")
    if target_id is None or len(item.src.problems) > before:
        return target_id, None
    return target_id, Target(target_id, name, url, key, agency, frozenset(levels) or DEFAULT_LEVELS,
                             frozenset(hazards) if hazards else None, drills, sender, timeout, report, item.line)


def _report(item: Fields, env: Mapping[str, str], timeout: timedelta) -> tuple[ReportTo, ...]:
    out: list[ReportTo] = []
    for slot, entry in enumerate(item.each("report", f"{item.label}: report", numbered=True)):
        entry.check_keys(_REPORT_KEYS)
        if entry.has("url") == entry.has("email"):
            entry.problem("give either 'url' (a webhook) or 'email' (addresses), one per entry")
            continue
        if entry.has("email"):
            emails = []
            for address, line in entry.texts("email", required=True):
                if _EMAIL.match(address):
                    emails.append(address)
                else:
                    entry.problem(f"'{clip(address)}' is not an e-mail address", line=line)
            for extra in ("format", "key", "key_env"):
                if entry.has(extra):
                    entry.problem(f"'{extra}' is for webhooks, not e-mail", extra)
            out.append(ReportTo(slot, "report_email", emails=tuple(dict.fromkeys(emails))))
            continue
        url = _url(entry, "url")
        fmt = (entry.text("format") or "json").lower()
        if fmt not in _FORMATS:
            entry.problem(f"unknown format '{clip(fmt)}'; accepted: {', '.join(_FORMATS)}", "format")
        out.append(ReportTo(slot, "report", url, fmt, _key(entry, env), timeout=_timeout(entry, timeout)))
    return tuple(out)


def _url(item: Fields, name: str) -> str:
    url = item.text(name, required=True) or ""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        item.problem(f"'{name}' must be an https:// address, found '{clip(url)}'", name)
        return ""
    if parts.scheme == "http" and not _loopback(parts.hostname):
        item.problem(f"'{name}' must use https (it carries a key): plain http only to this machine (127.0.0.1), "
                     f"found '{clip(url)}'", name)
        return ""
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key(item: Fields, env: Mapping[str, str]) -> str:
    if item.has("key") and item.has("key_env"):
        item.problem("give 'key' or 'key_env', not both", "key_env")
        return ""
    if item.has("key_env"):
        name = item.text("key_env", required=True) or ""
        if name and not env.get(name, "").strip():
            item.problem(f"key_env: the environment variable {name} is not set (or empty)", "key_env")
            return ""
        return env.get(name, "").strip()
    return (item.text("key") or "") if item.has("key") else ""


def _flag(item: Fields, name: str) -> bool:
    value = item.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        item.problem(f"'{name}' must be true or false, found '{clip(str(value))}'", name)
        return False
    return value


def _sender(item: Fields, name: str) -> str:
    sender = item.text(name) or ""
    if sender and not _TOKEN.match(sender):
        item.problem(f"'{name}' must be 1–128 characters with no spaces, commas, '<' or '&', found "
                     f"'{clip(sender)}'", name)
        return ""
    return sender


def _timeout(item: Fields, default: timedelta = DEFAULT_TIMEOUT) -> timedelta:
    if not item.has("timeout"):
        return default
    span = item.duration("timeout")
    if span is None:
        return default
    if not timedelta(0) < span <= LONGEST_TIMEOUT:
        item.problem(f"'timeout' must be more than 0 and at most {int(LONGEST_TIMEOUT.total_seconds())}s", "timeout")
        return default
    return span
