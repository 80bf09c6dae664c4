"""Officials (责任人) and their roles (岗位)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .channels import Channel


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    phone: str | None
    area: str
    roles: tuple[str, ...] = ()
    unit: str = ""
    email: str | None = None
    im: Mapping[str, str] = field(default_factory=dict)
    deputy: str | None = None
    superior: str | None = None

    def reachable_by(self, channel: Channel) -> bool:
        """Whether the roster holds an address for this person on ``channel`` (its kind's contact field)."""
        return bool(getattr(self, channel.kind.contact, None))

    def has_any_role(self, roles: frozenset[str] | tuple[str, ...]) -> bool:
        return any(r in roles for r in self.roles)


def mask_phone(phone: str | None) -> str:
    """+8613812345678 -> +86138****5678, for logs and for viewers."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:-8] + "****" + phone[-4:]
