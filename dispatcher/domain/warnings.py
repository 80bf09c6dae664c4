"""A warning (预警) as the product understands it, whatever format it arrived in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .hazards import Hazard, Level


class MsgType(StrEnum):
    ALERT = "alert"  # 首次发布
    UPDATE = "update"  # 更新/续发
    CANCEL = "cancel"  # 解除


@dataclass(frozen=True)
class Warning:
    sender: str
    identifier: str
    msg_type: MsgType
    hazard: Hazard
    level: Level
    areas: tuple[str, ...]  # may be empty when the warning names zones
    headline: str
    sent: datetime
    references: tuple[str, ...] = ()  # identifiers from the same sender
    description: str = ""
    instruction: str = ""
    expires: datetime | None = None
    drill: bool = False
    zones: tuple[str, ...] = ()  # hazard zones (areas.yaml ``zones``) the warning names
    extra: dict[str, str] = field(default_factory=dict, compare=False)
