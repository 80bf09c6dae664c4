"""Officials (责任人): their seat, roles (岗位), numbers and responsibilities (包保)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .channels import Channel


class PhoneKind(StrEnum):
    MOBILE = "mobile"  # 手机: SMS and voice
    LANDLINE = "landline"  # 固定电话/办公电话: voice only
    SATELLITE = "satellite"  # 卫星电话: SMS and voice

    @property
    def takes_sms(self) -> bool:
        return self is not PhoneKind.LANDLINE

    @property
    def zh(self) -> str:
        return {"mobile": "手机", "landline": "固定电话", "satellite": "卫星电话"}[self.value]


@dataclass(frozen=True)
class PhoneNumber:
    number: str  # E.164
    kind: PhoneKind = PhoneKind.MOBILE


@dataclass(frozen=True)
class Responsibility:
    """Areas or zones a person answers for beyond their seat: 包保, 包村, 驻村, 分片, a zone's 监测员."""

    kind: str = "包保"
    areas: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()  # the roles it is held in; empty: all the person's roles

    def held_as(self, role: str) -> bool:
        return not self.roles or role in self.roles


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    phone: str | None  # the first number tried
    area: str  # the seat
    roles: tuple[str, ...] = ()
    unit: str = ""
    email: str | None = None
    im: Mapping[str, str] = field(default_factory=dict)
    deputy: str | None = None
    superior: str | None = None
    phone_kind: PhoneKind = PhoneKind.MOBILE
    phones: tuple[PhoneNumber, ...] = ()  # further numbers, tried in order after ``phone``
    responsibilities: tuple[Responsibility, ...] = ()

    @property
    def numbers(self) -> tuple[PhoneNumber, ...]:
        """Every number, in the order they are tried."""
        first = (PhoneNumber(self.phone, self.phone_kind),) if self.phone else ()
        return first + self.phones

    @property
    def mobile(self) -> str | None:
        """The number text messages go to: the first that takes SMS."""
        return next((n.number for n in self.numbers if n.kind.takes_sms), None)

    @property
    def voice_numbers(self) -> tuple[str, ...]:
        """The numbers a voice step calls, in order, each after the one before was not answered."""
        return tuple(dict.fromkeys(n.number for n in self.numbers))

    @property
    def landline_only(self) -> bool:
        """Numbers on the roster, none of which takes text messages (calls reach them, SMS cannot)."""
        return bool(self.numbers) and self.mobile is None

    def has_number(self, number: str) -> bool:
        return any(n.number == number for n in self.numbers)

    def reachable_by(self, channel: Channel) -> bool:
        """Whether the roster holds an address for this person on ``channel`` (its kind's contact field;
        for calls, any number: someone whose numbers are all under ``phones`` is called on them)."""
        if channel.kind.contact == "phone":
            return bool(self.numbers)
        return bool(getattr(self, channel.kind.contact, None))

    def has_any_role(self, roles: frozenset[str] | tuple[str, ...]) -> bool:
        return any(r in roles for r in self.roles)


class NoMobile(StrEnum):
    UNREACHABLE = "unreachable"  # none of the step's channels reaches them: validate refuses the plan
    LANDLINE_ONLY = "landline_only"  # the step texts them and their only numbers are landlines: a readiness gap
    HELD_AT_NIGHT = "held_at_night"  # only the channels quiet hours hold reach them: at night the step misses them


def without_mobile(person: Person, channels: Iterable[Channel]) -> NoMobile | None:
    """What a step on ``channels`` finds when it reaches ``person``: nothing wrong (they have a mobile,
    or another of the step's channels reaches them and it texts no landline), UNREACHABLE or
    LANDLINE_ONLY."""
    if person.mobile is not None:
        return None
    channels = tuple(channels)
    if not any(person.reachable_by(c) for c in channels):
        return NoMobile.UNREACHABLE
    if Channel.SMS in channels and person.landline_only:
        return NoMobile.LANDLINE_ONLY
    return None


def held_at_night(person: Person, kept: Iterable[Channel], held: Iterable[Channel]) -> bool:
    """Whether a step whose ``held`` channels quiet hours leave out (its ``kept`` ones still go) misses
    ``person`` at night: someone without a mobile whom only a held channel reaches — a landline-only
    village cadre on an orange plan's [voice, sms] step with voice held gets a text they cannot
    receive. (A step left with no channel at all waits for the morning, for everyone alike.)"""
    kept, held = tuple(kept), tuple(held)
    return (person.mobile is None and bool(kept) and not any(person.reachable_by(c) for c in kept)
            and any(person.reachable_by(c) for c in held))


def numbers_of(person: Person) -> str:
    """"only a landline (+865725016601)", "no phone number": what the person's numbers lack."""
    if not person.numbers:
        return "no phone number"
    landlines = ", ".join(n.number for n in person.numbers)
    return f"only a landline ({landlines})" if len(person.numbers) == 1 else f"only landlines ({landlines})"


def mask_phone(phone: str | None) -> str:
    """+8613812345678 -> +86138****5678, for logs and for viewers."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:-8] + "****" + phone[-4:]
