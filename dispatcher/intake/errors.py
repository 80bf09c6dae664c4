"""Intake errors. Each carries the HTTP answer it deserves and names the offending field."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FieldProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class IntakeError(Exception):
    """A warning that cannot be accepted. ``status`` is 400 for a body that cannot be read
    (malformed, unsafe XML, not CAP), 422 for a readable body with invalid fields."""

    status: int
    message: str
    problems: list[FieldProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @classmethod
    def malformed(cls, message: str) -> IntakeError:
        return cls(400, message)

    @classmethod
    def invalid(cls, field_name: str, message: str) -> IntakeError:
        return cls(422, f"{field_name}: {message}", [FieldProblem(field_name, message)])

    @classmethod
    def many(cls, problems: list[FieldProblem]) -> IntakeError:
        return cls(422, "; ".join(str(p) for p in problems), problems)
