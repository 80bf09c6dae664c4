"""The JSON form of a warning (SPEC 4.1). CAP documents are mapped onto the same form, so both
formats go through one validation and get the same error messages.

Times are bounded at intake (SPEC 6, "times at intake are bounded"): a warning's times feed the
duty rota and every step's timer, and a time near the ends of the calendar (year 1 or 9999)
overflows there, in every engine pass, long after the 202. ``sent`` must be on or after
2000-01-01 and, checked against the server's clock by ``check_sent``, at most five minutes
ahead of it; ``expires`` must be after ``sent`` and at most 366 days after it. A warning whose
``expires`` has already passed is still accepted here. Text may not hold NUL characters, which
PostgreSQL cannot store.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..domain.areas import normalize_code
from ..domain.hazards import Hazard, Level, parse_hazard, parse_level
from ..domain.warnings import MsgType, Warning
from .errors import FieldProblem, IntakeError

_TOKEN = re.compile(r"^[^\s,<&\x00-\x1f\x7f]{1,128}$")
_TOKEN_RULE = "must be 1–128 characters with no spaces, commas, '<', '&' or control characters"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no warning this service receives was sent before
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of the server's clock a sender's clock may run
LONGEST = timedelta(days=366)  # from sent to expires
_MAX_DIGITS = 30  # of a number in a JSON body: no field of a warning takes a longer one
_EXAMPLE = "e.g. 2026-07-16T03:10:00+08:00"


def time_problem(value: datetime) -> str | None:
    """What makes ``value`` unacceptable as a time of a warning (without the clock), or None."""
    if value.utcoffset() is None:
        return f"must carry a UTC offset, {_EXAMPLE}"
    if value < EARLIEST:  # compared without converting: year 1 at +14:00 has no UTC form
        return f"{value.isoformat()} is before 2000-01-01; send the time the warning was issued, {_EXAMPLE}"
    try:
        value.astimezone(UTC)
    except OverflowError:
        return f"{value.isoformat()} is out of range; send the time the warning was issued, {_EXAMPLE}"
    return None


def span_problem(sent: datetime, expires: datetime) -> str | None:
    """What is wrong with ``expires`` given ``sent`` (both already acceptable times), or None."""
    if expires <= sent:
        return "must be later than sent"
    if expires - sent > LONGEST:
        return (f"{expires.isoformat()} is more than {LONGEST.days} days after sent ({sent.isoformat()}); "
                f"a warning lasts at most {LONGEST.days} days")
    return None


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (PostgreSQL holds no NUL character), or None."""
    return "must not contain NUL characters (\\u0000)" if "\x00" in value else None


_ZONE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

class WarningIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sender: str
    identifier: str
    msg_type: MsgType = MsgType.ALERT
    references: list[str] = []
    hazard: Hazard | None = None
    level: Level | None = None
    areas: list[str] = []
    zones: list[str] = []  # hazard zone ids of the site (areas.yaml ``zones``): areas or zones, or both
    via: list[str] = []  # the sites (their ids) a forwarded warning passed through (CAP ``jiaoying_via``)
    headline: str = ""
    description: str = ""
    instruction: str = ""
    sent: datetime
    expires: datetime | None = None
    drill: bool = False
    # A drill orders the rural broadcast only when it asks for it (docs/drills.md); only with drill.
    drill_broadcast: bool = False

    @field_validator("sender", "identifier")
    @classmethod
    def _token(cls, value: str) -> str:
        if not _TOKEN.match(value):
            raise ValueError(_TOKEN_RULE)
        return value

    @field_validator("headline", "description", "instruction")
    @classmethod
    def _text(cls, value: str) -> str:
        if problem := text_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("msg_type", mode="before")
    @classmethod
    def _msg_type(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in {m.value for m in MsgType}:
            return value.lower()
        if isinstance(value, str):
            raise ValueError(f"unknown msg_type {value!r}; accepted: alert, update, cancel")
        return value

    @field_validator("hazard", mode="before")
    @classmethod
    def _hazard(cls, value: Any) -> Any:
        return parse_hazard(value) if isinstance(value, str) else value

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return parse_level(value) if isinstance(value, str) else value

    @field_validator("areas")
    @classmethod
    def _areas(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalize_code(v) for v in value))

    @field_validator("zones")
    @classmethod
    def _zones(cls, value: list[str]) -> list[str]:
        for zone in value:
            if not _ZONE.match(zone):
                raise ValueError(f"{zone[:80]!r} is not a zone id: 1 to 64 letters, digits, '-' or '_'")
        return list(dict.fromkeys(value))

    @field_validator("via")
    @classmethod
    def _via(cls, value: list[str]) -> list[str]:
        if len(value) > 32:
            raise ValueError(f"at most 32 sites, found {len(value)}")
        for site in value:
            if not _ZONE.match(site):
                raise ValueError(f"{site[:80]!r} is not a site id: 1 to 64 letters, digits, '-' or '_'")
        return list(dict.fromkeys(value))

    @field_validator("references")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        for ref in value:
            if not _TOKEN.match(ref):
                raise ValueError(f"{ref!r} is not an identifier: an identifier {_TOKEN_RULE}")
        return value

    @field_validator("sent", "expires")
    @classmethod
    def _time(cls, value: datetime | None) -> datetime | None:
        if value is not None and (problem := time_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _by_msg_type(self) -> WarningIn:
        if self.msg_type is not MsgType.ALERT and not self.references:
            raise ValueError(f"references: an {self.msg_type.value} must name the warning it refers to")
        if self.msg_type is not MsgType.CANCEL:
            missing = [n for n in ("hazard", "level", "headline") if not getattr(self, n)]
            if not self.areas and not self.zones:
                missing.append("areas (or zones)")
            if missing:
                raise ValueError(f"{', '.join(missing)}: required for an {self.msg_type.value}")
        if self.expires and (problem := span_problem(self.sent, self.expires)):
            raise ValueError(f"expires: {problem}")
        if self.drill_broadcast and not self.drill:
            raise ValueError("drill_broadcast: only a drill (drill: true; CAP status Exercise) can ask for the "
                             "rural broadcast this way; a real warning's broadcast is its plans' to order")
        return self

    def to_domain(self, earlier: Warning | None = None) -> Warning:
        """The domain warning; a cancel may leave hazard, level, areas and headline to the
        warning it cancels."""
        hazard = self.hazard or (earlier.hazard if earlier else None)
        level = self.level or (earlier.level if earlier else None)
        areas = tuple(self.areas) or (earlier.areas if earlier else ())
        zones = tuple(self.zones) or (earlier.zones if earlier and not self.areas else ())
        if hazard is None or level is None or not (areas or zones):
            raise IntakeError.invalid("references", "the cancelled warning is not known")
        headline = self.headline or (f"解除：{earlier.headline}" if earlier else "")
        return Warning(
            sender=self.sender, identifier=self.identifier, msg_type=self.msg_type,
            hazard=hazard, level=level, areas=areas, headline=headline, sent=self.sent,
            references=tuple(self.references), description=self.description,
            instruction=self.instruction, expires=self.expires, drill=self.drill, zones=zones,
        )


def check_sent(draft: WarningIn, now: datetime) -> None:
    """Refuse (422 naming ``sent``) a warning sent more than ``CLOCK_SKEW`` after ``now``, the
    server's clock: intake calls this with the time it receives the warning. The other bounds
    need no clock and are part of ``parse_warning_dict``; a warning already expired is accepted."""
    if draft.sent - now > CLOCK_SKEW:
        raise IntakeError.invalid("sent", (
            f"{draft.sent.isoformat()} is more than {CLOCK_SKEW.seconds // 60} minutes ahead of this server's clock "
            f"({now.astimezone(UTC).isoformat()}); send the time the warning was issued, {_EXAMPLE}"))


def parse_warning_json(body: bytes) -> WarningIn:
    """A JSON body as a warning: 400 when it cannot be read as JSON, else ``parse_warning_dict``."""
    return parse_warning_dict(read_json(body))


class _LongNumber:
    """Stands in for a number too long to be any field's value, so that validation names the
    field it was given for (Python refuses to read integers of over 4,300 digits at all)."""

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<a number of {self.digits} digits>"


def _number(convert: Any) -> Any:
    def read(text: str) -> Any:
        return _LongNumber(len(text)) if len(text) > _MAX_DIGITS else convert(text)

    return read


def read_json(body: bytes) -> Any:
    """The JSON document in ``body``; 400 when it is not JSON, or nested too deeply to be read."""
    try:
        return json.loads(body, parse_int=_number(int), parse_float=_number(float))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntakeError.malformed(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise IntakeError.malformed(
            "malformed JSON: nested too deeply; a warning is one object of plain values and lists") from None


def parse_warning_dict(data: Any) -> WarningIn:
    """Validate the JSON form; IntakeError(422) lists every bad field by its name."""
    if not isinstance(data, dict):
        raise IntakeError.malformed("the body must be a JSON object")
    try:
        return WarningIn.model_validate(data)
    except ValidationError as exc:
        raise IntakeError.many([_problem(e) for e in exc.errors()]) from None


def _problem(error: Any) -> FieldProblem:
    loc = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error.get("type") == "extra_forbidden":
        message = "is not a field of a warning"
    elif error.get("type") == "missing":
        message = "is required"
    # A model-level message may name its own field ("references: …").
    if not loc and ": " in message:
        loc, message = message.split(": ", 1)
    return FieldProblem(loc, message)
