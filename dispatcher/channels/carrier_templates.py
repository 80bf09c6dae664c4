"""Provider-approved templates: which template code Aliyun or Tencent sends for each purpose.

In mainland China an SMS or a voice notice goes out only as an approved template (a code plus
variables; free text is refused). The file named by JIAOYING_CARRIER_TEMPLATES maps each purpose
(alert, reminder, to_deputy, to_superior, unreached, to_duty, update, cancel — and ``drill``, which
every drill message on that channel uses when present) × channel × provider to a code and its
variables, named from ``rendering.TEMPLATE_VARIABLES`` (the values our own templates are written
from)::

    aliyun:
      sms:
        alert: {code: SMS_480001, variables: [drill_prefix, title, official, headline, areas, ack_code]}
      voice:
        alert: {code: TTS_480101, variables: [official, title, headline, areas]}
    tencent:
      max_variable_length: 12        # optional: the account's per-variable limit (default below)
      sms:
        alert: {code: "1480001", variables: [title, official, headline, ack_code]}   # {1} {2} {3} {4}

A value longer than the provider's per-variable limit is cut with "…" (never refused): a long
headline must not stop a red warning. Codes and acknowledgement codes are never cut (a template
whose code variable would not fit is refused when the file is loaded). Links are not template
variables: SMS and voice take replies and keypresses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..domain.callouts import Purpose
from ..domain.channels import Channel
from ..rendering import TEMPLATE_VARIABLES

__all__ = ["DEFAULT_MAX_VARIABLE", "DRILL", "PROVIDERS", "CarrierTemplate", "CarrierTemplateError",
           "CarrierTemplates", "carrier_templates", "load_carrier_templates"]

PROVIDERS = ("aliyun", "tencent")
CHANNELS = (Channel.SMS, Channel.VOICE)
DRILL = "drill"
# Each provider's documented per-variable length (characters): Aliyun 35 for ordinary variables;
# Tencent 12 for an individual-verified account (enterprise accounts may set more in the file).
DEFAULT_MAX_VARIABLE = {"aliyun": 35, "tencent": 12}
_NEVER_CUT = ("ack_code", "step")
_NOT_ALLOWED = ("link",)
_ELLIPSIS = "…"


class CarrierTemplateError(ValueError):
    """The template file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class CarrierTemplate:
    provider: str
    channel: Channel
    purpose: str  # a Purpose value, or "drill"
    code: str
    variables: tuple[str, ...]  # names from TEMPLATE_VARIABLES, in the template's order
    max_length: int | None  # per variable

    def values(self, available: Mapping[str, str]) -> list[tuple[str, str]]:
        """(name, value) in order, each cut to the provider's limit with "…"."""
        out = []
        for name in self.variables:
            value = " ".join(str(available.get(name, "")).split())
            if self.max_length is not None and len(value) > self.max_length and name not in _NEVER_CUT:
                value = value[:self.max_length - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
            out.append((name, value))
        return out


@dataclass(frozen=True)
class CarrierTemplates:
    entries: Mapping[tuple[str, Channel, str], CarrierTemplate] = field(default_factory=dict)
    source: str = ""

    def get(self, provider: str, channel: Channel, purpose: Purpose | str, drill: bool = False,
            ) -> CarrierTemplate | None:
        """The template for this message: a drill uses the channel's ``drill`` entry when there is one,
        else its purpose's only when that template carries ``drill_prefix`` — a drill message never goes
        out without its 演练 label (None: the adapter refuses that one message)."""
        if drill and (found := self.entries.get((provider, channel, DRILL))) is not None:
            return found
        found = self.entries.get((provider, channel, Purpose(purpose).value))
        if drill and found is not None and "drill_prefix" not in found.variables:
            return None
        return found

    def missing(self, provider: str, channel: Channel, purposes: Iterable[Purpose]) -> list[Purpose]:
        """The purposes this provider could be asked to send on this channel that have no template."""
        return [p for p in purposes if (provider, channel, p.value) not in self.entries]

    def __bool__(self) -> bool:
        return bool(self.entries)


def load_carrier_templates(path: str | Path) -> CarrierTemplates:
    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CarrierTemplateError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise CarrierTemplateError(f"{where}: not valid YAML: {exc}") from None
    if raw is None:
        return CarrierTemplates(source=where)
    if not isinstance(raw, dict):
        raise CarrierTemplateError(f"{where}: expected a mapping of providers ({', '.join(PROVIDERS)})")
    entries: dict[tuple[str, Channel, str], CarrierTemplate] = {}
    for provider, section in raw.items():
        if provider not in PROVIDERS:
            raise CarrierTemplateError(f"{where}: unknown provider {provider!r}; accepted: {', '.join(PROVIDERS)}")
        entries.update(_provider(where, provider, section or {}))
    return CarrierTemplates(entries, where)


def _provider(where: str, provider: str, section: Any) -> dict[tuple[str, Channel, str], CarrierTemplate]:
    if not isinstance(section, dict):
        raise CarrierTemplateError(f"{where}: {provider}: expected a mapping of channels (sms, voice)")
    limit = section.get("max_variable_length", DEFAULT_MAX_VARIABLE[provider])
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 4):
        raise CarrierTemplateError(f"{where}: {provider}.max_variable_length: a whole number of at least 4 "
                                   f"(or null for no limit), got {limit!r}")
    purposes = {p.value for p in Purpose} | {DRILL}
    found: dict[tuple[str, Channel, str], CarrierTemplate] = {}
    for name, templates in section.items():
        if name == "max_variable_length":
            continue
        if name not in {c.value for c in CHANNELS}:
            raise CarrierTemplateError(f"{where}: {provider}: unknown channel {name!r}; accepted: sms, voice")
        if not isinstance(templates, dict):
            raise CarrierTemplateError(f"{where}: {provider}.{name}: expected a mapping of purposes")
        for purpose, entry in templates.items():
            at = f"{where}: {provider}.{name}.{purpose}"
            if purpose not in purposes:
                raise CarrierTemplateError(f"{at}: unknown purpose; accepted: {', '.join(sorted(purposes))}")
            if not isinstance(entry, dict) or not str(entry.get("code") or "").strip():
                raise CarrierTemplateError(f"{at}: needs a code, e.g. {{code: SMS_123456, variables: [official]}}")
            variables = entry.get("variables") or []
            if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
                raise CarrierTemplateError(f"{at}.variables: a list of names")
            for variable in variables:
                if variable in _NOT_ALLOWED:
                    raise CarrierTemplateError(f"{at}.variables: {variable!r} cannot be a template variable "
                                               "(SMS and voice take replies and keypresses, not links)")
                if variable not in TEMPLATE_VARIABLES:
                    raise CarrierTemplateError(f"{at}.variables: unknown variable {variable!r}; accepted: "
                                               f"{', '.join(v for v in TEMPLATE_VARIABLES if v not in _NOT_ALLOWED)}")
            if len(set(variables)) != len(variables):
                raise CarrierTemplateError(f"{at}.variables: a variable is named twice")
            channel = Channel(name)
            found[(provider, channel, purpose)] = CarrierTemplate(provider, channel, purpose,
                                                                  str(entry["code"]).strip(), tuple(variables), limit)
    return found


_CACHE: dict[str, tuple[int, CarrierTemplates]] = {}


def carrier_templates(path: str) -> CarrierTemplates:
    """The file at ``path`` (JIAOYING_CARRIER_TEMPLATES), read again when it changes; empty if unset."""
    if not path:
        return CarrierTemplates()
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        stamp = -1
    cached = _CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    loaded = load_carrier_templates(path)
    _CACHE[path] = (stamp, loaded)
    return loaded
