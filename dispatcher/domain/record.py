"""The per-warning record (一事一档): event kinds and the hash chain that makes edits visible.

Each event's hash covers its own content and the previous event's hash, so changing or removing
any event breaks every hash after it; the warning keeps the head hash and the count, so removing
the last events is caught too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64


class EventKind(StrEnum):
    RECEIVED = "received"  # intake accepted the warning
    MATCHED = "matched"  # the rules engine's decision: plans, officials, gaps
    UPDATED = "updated"  # a later update superseded this message
    CANCELLED = "cancelled"  # a cancel (解除) arrived, or a duty officer cancelled
    EXPIRED = "expired"  # the message's ``expires`` passed (services/expiry.py)
    APPLY_FAILED = "apply_failed"  # the engine could not apply the warning (tried again; others carry on)
    STEP_FAILED = "step_failed"  # the engine could not run a call-out's step (tried again; others carry on)


@dataclass(frozen=True)
class RecordedEvent:
    seq: int
    at: datetime
    actor: str
    kind: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


def event_hash(warning_id: str, seq: int, at: datetime, actor: str, kind: str, data: dict[str, Any],
               prev_hash: str) -> str:
    body = json.dumps(
        {"warning": warning_id, "seq": seq, "at": at.isoformat(), "actor": actor, "kind": kind,
         "data": data, "prev": prev_hash},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def verify_chain(warning_id: str, events: Iterable[RecordedEvent], head: str, count: int) -> list[str]:
    """Every break in the chain, as a sentence; an empty list means the record is intact."""
    problems: list[str] = []
    prev, expected_seq, seen = GENESIS, 1, 0
    for ev in events:
        seen += 1
        if ev.seq != expected_seq:
            problems.append(f"event {expected_seq} is missing (next found is {ev.seq})")
        if ev.prev_hash != prev:
            problems.append(f"event {ev.seq} does not follow the event before it")
        if event_hash(warning_id, ev.seq, ev.at, ev.actor, ev.kind, ev.data, ev.prev_hash) != ev.hash:
            problems.append(f"event {ev.seq} ({ev.kind}) was changed after it was recorded")
        prev, expected_seq = ev.hash, ev.seq + 1
    if seen != count or prev != head:
        problems.append(f"the record should hold {count} events ending in {head[:12]}…, "
                        f"found {seen} ending in {prev[:12]}…")
    return problems
