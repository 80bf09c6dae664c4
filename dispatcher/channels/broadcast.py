"""The rural emergency broadcast (应急广播 / 农村大喇叭) adapter contract, both directions.

Out: ``POST {broadcast_url}`` with JSON ``{id, areas, text, level, repeat, drill, ...}``, signed:
``X-Jiaoying-Timestamp: <unix seconds>`` and ``X-Jiaoying-Signature: hex(HMAC-SHA256(broadcast_secret,
timestamp + "." + body))``. In: ``POST /webhooks/broadcast/receipt`` with ``{id, area, state:
playing|completed|failed, at, detail}``, signed the same way by the platform; receipts older than
5 minutes, unsigned or badly signed are refused (403) and, with no secret configured, every
receipt is refused (never fail open). See docs/channels-im-email-broadcast.md.

Broadcast is not a ``Channel`` (it reaches villages, not people), so it is not in the adapter
registry: the engine calls ``order_broadcast`` (in its transaction), then ``send_broadcast``, then
``record_sent``. The broadcast id is ``bc-<warning id>``: deterministic (a retry re-sends the same
id and the platform deduplicates), and it names the warning, so a receipt finds its record with no
new table.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.record_repo import append_event
from ..db.tables import EventRow, WarningRow
from ..domain.areas import AreaTree
from ..domain.hazards import Hazard, Level
from ..domain.record import EventKind
from ..intake.schema import text_problem
from .base import ChannelError, ConfigurationError, TransientError, error_for_status
from .im import webhook_signature

__all__ = ["MAX_SKEW_SECONDS", "RECEIPT_STATES", "BroadcastOrder", "ReceiptRefused", "order_broadcast",
           "record_receipt", "record_sent", "send_broadcast", "sign", "verify", "villages"]

log = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 300
MAX_TIMESTAMP_DIGITS = 12  # unix seconds until the year 33658
RECEIPT_STATES = ("playing", "completed", "failed")  # ↔ EBD BrdStateCode 1, 2, 0
PREFIX = "bc-"
TIMEOUT = httpx.Timeout(10.0)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return webhook_signature(secret, timestamp, body)


class ReceiptRefused(Exception):
    """A receipt whose signature or age is not acceptable (answered 403)."""


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: datetime) -> None:
    """Raises ReceiptRefused unless the body is signed with ``secret`` within MAX_SKEW_SECONDS of now."""
    if not secret:
        raise ReceiptRefused("no broadcast secret is configured: receipts are refused")
    if not timestamp or not signature:
        raise ReceiptRefused("X-Jiaoying-Timestamp and X-Jiaoying-Signature are required")
    # Unix seconds: ASCII digits only (int() would also take "١٢", "+1", " 1", "1_0"), and few of
    # them — a number of hundreds of digits overflows the comparison below.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        raise ReceiptRefused(f"X-Jiaoying-Timestamp is not unix seconds (at most {MAX_TIMESTAMP_DIGITS} digits)")
    if abs(now.timestamp() - int(timestamp)) > MAX_SKEW_SECONDS:
        raise ReceiptRefused("the timestamp is more than 5 minutes away from ours (old or replayed)")
    # Compared as bytes: compare_digest refuses str holding anything but ASCII (a TypeError).
    offered = signature.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), offered):
        raise ReceiptRefused("the signature does not match")


@dataclass(frozen=True)
class BroadcastOrder:
    id: str
    warning: str
    record: str
    areas: tuple[str, ...]
    text: str
    level: str
    repeat: int
    drill: bool
    hazard: str
    headline: str

    def payload(self, receipt_url: str) -> dict[str, Any]:
        return {"id": self.id, "areas": list(self.areas), "text": self.text, "level": self.level,
                "repeat": self.repeat, "drill": self.drill, "hazard": self.hazard, "headline": self.headline,
                "receipt_url": receipt_url}


def _tts(row: WarningRow) -> str:
    hazard, level = Hazard(row.hazard), Level(row.level)
    parts = [f"{hazard.zh}{level.zh}预警。", row.headline.rstrip("。") + "。"]
    if row.description:
        parts.append(row.description)
    if row.instruction:
        parts.append(row.instruction)
    text = "".join(p for p in parts if p)
    return f"演练，演练。{text}演练结束。" if row.drill else text


def villages(tree: AreaTree, codes: Sequence[str]) -> list[str]:
    """The broadcast targets for a warning's (or plan's affected) areas: every leaf of the site's
    division tree under them (villages, 12-digit codes), in code order, each once."""
    found: dict[str, None] = {}
    for code in codes:
        for area in tree.within(code):
            if not tree.children(area.code):
                found.setdefault(area.code)
    return sorted(found)


def order_broadcast(session: Session, now: datetime, warning_id: str, areas: Sequence[str], repeat: int,
                    text: str | None = None) -> BroadcastOrder:
    """Record the order on the warning's record (event ``broadcast_ordered``) and return it. Called
    again for the same warning message it returns the same order and records nothing."""
    row = session.get(WarningRow, warning_id)
    if row is None:
        raise LookupError(f"no warning {warning_id}")
    record = row.root_id or row.id
    order = BroadcastOrder(PREFIX + row.id, row.id, record, tuple(areas), text or _tts(row), row.level,
                           int(repeat), row.drill, row.hazard, row.headline)
    if _ordered(session, order.id) is None:
        append_event(session, record, EventKind.BROADCAST_ORDERED, "engine", now,
                     {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(order).items()})
    return order


def _ordered(session: Session, broadcast_id: str) -> dict[str, Any] | None:
    """The ``broadcast_ordered`` event's data for this id, or None."""
    if not broadcast_id.startswith(PREFIX):
        return None
    row = session.get(WarningRow, broadcast_id[len(PREFIX):])
    if row is None:
        return None
    for data in session.scalars(select(EventRow.data).where(
            EventRow.warning_id == (row.root_id or row.id), EventRow.kind == "broadcast_ordered")):
        if data.get("id") == broadcast_id:
            return data
    return None


async def send_broadcast(settings: Settings, order: BroadcastOrder, *, clock: Callable[[], float] = time.time,
                         client: httpx.AsyncClient | None = None) -> str:
    """POST the order to the platform. Returns the platform's id for it (or ours). Raises
    TransientError (timeouts, 429, 5xx), ConfigurationError (no URL/secret, 401/403) or
    PermanentError (other 4xx). A 409 (the id is already known) counts as success."""
    if not settings.broadcast_url or not settings.broadcast_secret:
        raise ConfigurationError("JIAOYING_BROADCAST_URL and JIAOYING_BROADCAST_SECRET must both be set")
    receipt_url = f"{settings.public_url.rstrip('/')}/webhooks/broadcast/receipt"
    body = json.dumps(order.payload(receipt_url), ensure_ascii=False, separators=(",", ":")).encode()
    ts = str(int(clock()))
    headers = {"Content-Type": "application/json", "X-Jiaoying-Timestamp": ts,
               "X-Jiaoying-Signature": sign(settings.broadcast_secret, ts, body), "Idempotency-Key": order.id}
    own = client is None
    http = client or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
    try:
        response = await http.post(settings.broadcast_url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise TransientError(f"broadcast platform timed out: {exc!r}") from exc
    except httpx.HTTPError as exc:
        raise TransientError(f"broadcast platform unreachable: {exc!r}") from exc
    finally:
        if own:
            await http.aclose()
    status = response.status_code
    if status == 409:
        return order.id
    if error := error_for_status(status, f"broadcast platform answered {status}: {response.text[:200]}",
                                 response.headers.get("retry-after")):
        raise error
    try:
        data = response.json()
    except ValueError:
        data = {}
    return str(data.get("platform_id") or order.id) if isinstance(data, dict) else order.id


def record_sent(session: Session, now: datetime, order: BroadcastOrder, platform_id: str | None = None,
                error: ChannelError | None = None) -> None:
    """Record the outcome of ``send_broadcast`` on the warning's record."""
    kind = EventKind.BROADCAST_SENT if error is None else EventKind.BROADCAST_FAILED
    append_event(session, order.record, kind, "worker", now, {
        "id": order.id, "platform_id": platform_id,
        "error": None if error is None else f"{type(error).__name__}: {error}",
        "retry": isinstance(error, TransientError)})


def record_receipt(session: Session, now: datetime, receipt: dict[str, Any]) -> str:
    """Record a verified receipt as a ``broadcast_receipt`` event on the warning's record.
    Returns ``recorded`` or ``duplicate`` (the same id/area/state/at again: nothing changes).
    Raises LookupError for an id we never issued and ValueError (naming the field) for an area not
    in the order, text holding NUL (PostgreSQL can neither store nor compare it) or a time with no
    UTC form (year 1 at +14:00) — before anything is looked up."""
    for name in ("id", "area", "state", "detail"):
        if isinstance(receipt.get(name), str) and (problem := text_problem(receipt[name])):
            raise ValueError(f"{name}: {problem}")
    at = receipt["at"]
    if isinstance(at, datetime):
        try:
            at = at.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"at: {at.isoformat()} is out of range") from None
    broadcast_id = str(receipt["id"])
    order = _ordered(session, broadcast_id)
    if order is None:
        raise LookupError(f"no broadcast {broadcast_id!r} was ordered")
    if receipt["area"] not in order["areas"]:
        raise ValueError(f"area {receipt['area']} is not in broadcast {broadcast_id}")
    data = {"id": broadcast_id, "area": receipt["area"], "state": receipt["state"],
            "at": at.isoformat() if isinstance(at, datetime) else str(at),
            "detail": receipt.get("detail") or ""}
    record = order["record"]
    for seen in session.scalars(select(EventRow.data).where(EventRow.warning_id == record,
                                                            EventRow.kind == "broadcast_receipt")):
        if all(seen.get(k) == data[k] for k in ("id", "area", "state", "at")):
            return "duplicate"
    append_event(session, record, EventKind.BROADCAST_RECEIPT, "broadcast", now, data)
    return "recorded"
