"""The JSON form of a warning (SPEC 4.1). CAP documents are mapped onto the same form, so both
formats go through one validation and get the same error messages."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..domain.areas import normalize_code
from ..domain.hazards import Hazard, Level, parse_hazard, parse_level
from ..domain.warnings import MsgType, Warning
from .errors import FieldProblem, IntakeError

_TOKEN = re.compile(r"^[^\s,<&]{1,128}$")


class WarningIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sender: str
    identifier: str
    msg_type: MsgType = MsgType.ALERT
    references: list[str] = []
    hazard: Hazard | None = None
    level: Level | None = None
    areas: list[str] = []
    headline: str = ""
    description: str = ""
    instruction: str = ""
    sent: datetime
    expires: datetime | None = None
    drill: bool = False

    @field_validator("sender", "identifier")
    @classmethod
    def _token(cls, value: str) -> str:
        if not _TOKEN.match(value):
            raise ValueError("must be 1–128 characters with no spaces, commas, '<' or '&'")
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

    @field_validator("references")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        for ref in value:
            if not _TOKEN.match(ref):
                raise ValueError(f"{ref!r} is not an identifier")
        return value

    @field_validator("sent", "expires")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-07-16T03:10:00+08:00")
        return value

    @model_validator(mode="after")
    def _by_msg_type(self) -> WarningIn:
        if self.msg_type is not MsgType.ALERT and not self.references:
            raise ValueError(f"references: an {self.msg_type.value} must name the warning it refers to")
        if self.msg_type is not MsgType.CANCEL:
            missing = [n for n in ("hazard", "level", "headline") if not getattr(self, n)]
            if not self.areas:
                missing.append("areas")
            if missing:
                raise ValueError(f"{', '.join(missing)}: required for an {self.msg_type.value}")
        if self.expires and self.expires <= self.sent:
            raise ValueError("expires: must be later than sent")
        return self

    def to_domain(self, earlier: Warning | None = None) -> Warning:
        """The domain warning; a cancel may leave hazard, level, areas and headline to the
        warning it cancels."""
        hazard = self.hazard or (earlier.hazard if earlier else None)
        level = self.level or (earlier.level if earlier else None)
        areas = tuple(self.areas) or (earlier.areas if earlier else ())
        if hazard is None or level is None or not areas:
            raise IntakeError.invalid("references", "the cancelled warning is not known")
        headline = self.headline or (f"解除：{earlier.headline}" if earlier else "")
        return Warning(
            sender=self.sender, identifier=self.identifier, msg_type=self.msg_type,
            hazard=hazard, level=level, areas=areas, headline=headline, sent=self.sent,
            references=tuple(self.references), description=self.description,
            instruction=self.instruction, expires=self.expires, drill=self.drill,
        )


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
