"""Phone numbers on output: shown in full to duty officers and admins, masked (+86138****5678) for
viewers and agencies.

The record keeps what happened as it happened — an inbound SMS's sender is its actor — so the
masking is done where the record or a call-out is shown, never where it is stored (the hash chain
covers the stored values). Only values that are phone numbers as a whole are masked: an E.164
number or a mainland mobile number; person ids, user names, codes and texts are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

from .domain.roster import mask_phone

_PHONE = re.compile(r"\+[1-9]\d{6,14}|1[3-9]\d{9}")
T = TypeVar("T")


def looks_like_phone(value: object) -> bool:
    return isinstance(value, str) and _PHONE.fullmatch(value.strip()) is not None


def mask_value(value: T) -> T:
    """A phone number masked; lists and mappings masked inside; anything else as it is."""
    if isinstance(value, str):
        return mask_phone(value.strip()) if looks_like_phone(value) else value  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [mask_value(v) for v in value]  # type: ignore[return-value]
    return value


def mask_event(event: dict[str, Any]) -> dict[str, Any]:
    """A record event as a viewer or an agency sees it: actor and data with phone numbers masked."""
    return event | {"actor": mask_value(event.get("actor")), "data": mask_value(event.get("data"))}


def mask_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [mask_event(e) for e in events]
