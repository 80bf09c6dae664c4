"""The rural emergency broadcast (应急广播 / 农村大喇叭) platform contract, both directions, and its adapters.

Out: ``POST {broadcast_url}`` with JSON ``{id, areas, text, level, repeat, drill, ...}``, signed:
``X-Jiaoying-Timestamp: <unix seconds>`` and ``X-Jiaoying-Signature: hex(HMAC-SHA256(broadcast_secret,
timestamp + "." + body))``. In: ``POST /webhooks/broadcast/receipt`` with ``{id, area, state:
playing|completed|failed, at, detail}``, signed the same way by the platform; receipts older than
5 minutes, unsigned or badly signed are refused (403) and, with no secret configured, every
receipt is refused (never fail open). See docs/channels-im-email-broadcast.md.

Broadcast is not a ``Channel`` (it reaches villages, not people), so it is not in the adapter
registry. Its adapters implement ``Broadcaster``: ``BroadcastAdapter`` posts to the platform,
``BroadcastSimulator`` only records; ``broadcast_adapter(settings)`` is the one place that picks
(the real one when JIAOYING_BROADCAST_URL is set). Orders, their events and receipts are the
database's business: dispatcher.services.broadcasts. The spoken text comes from
``templates/broadcast/`` (rendering.render_broadcast). The broadcast id is ``bc-<warning id>``:
deterministic (a retry re-sends the same id and the platform deduplicates), and it names the
warning, so a receipt finds its record with no new table.
"""

from __future__ import annotations

import copy
import hmac
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import Settings
from ..domain.areas import AreaTree
from .base import ChannelError, ConfigurationError, TransientError, error_for_status
from .im import webhook_signature

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_SKEW_SECONDS", "PREFIX", "RECEIPT_STATES", "BroadcastAdapter", "BroadcastOrder", "BroadcastSimulator",
           "Broadcaster", "ReceiptRefused", "broadcast_adapter", "sign", "verify", "villages"]

MAX_SKEW_SECONDS = 300
MAX_TIMESTAMP_DIGITS = 12  # unix seconds until the year 33658
RECEIPT_STATES = ("playing", "completed", "failed")  # ↔ EBD BrdStateCode 1, 2, 0
PREFIX = "bc-"
TIMEOUT = 10.0  # seconds, for connecting and for each read


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


def villages(tree: AreaTree, codes: Sequence[str]) -> list[str]:
    """The broadcast targets for a warning's (or plan's affected) areas: every village (12-digit
    code, or a leaf above that level) under them, in code order, each once. The loudspeakers of a
    village's groups and grids are the village's: a group or grid is broadcast to as its village."""
    found: dict[str, None] = {}
    for code in codes:
        code = code[:VILLAGE_DIGITS]
        for area in tree.within(code):
            if len(area.code) == VILLAGE_DIGITS or (
                    len(area.code) < VILLAGE_DIGITS and not tree.children(area.code)):
                found.setdefault(area.code)
    return sorted(found)


VILLAGE_DIGITS = 12


class Broadcaster(ABC):
    """The port a broadcast platform adapter implements (the people channels' is ChannelAdapter).

    - ``provider``: what takes the orders (shown in logs and on the record);
    - ``max_length``: the characters of an order's text the platform takes (None: the contract
      sets no limit — the text is one warning's, read out by TTS).
    """

    provider: ClassVar[str]
    max_length: ClassVar[int | None] = None

    @abstractmethod
    async def send(self, order: BroadcastOrder) -> str:
        """Hand the order over; returns the platform's id for it. Raises a ChannelError subclass."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
        return None


class BroadcastAdapter(Broadcaster):
    """The county platform (or its vendor bridge) behind JIAOYING_BROADCAST_URL. The HTTP client is
    made on the first send, inside the event loop that sends (the engine's), and closed by ``aclose``."""

    provider = "broadcast-platform"

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 client: httpx.AsyncClient | None = None) -> None:
        self.settings, self._clock = settings, clock
        self._client, self._own = client, client is None

    async def send(self, order: BroadcastOrder) -> str:
        """POST the order to the platform. Returns the platform's id for it (or ours). Raises
        TransientError (timeouts, 429, 5xx), ConfigurationError (no URL/secret, 401/403) or
        PermanentError (other 4xx). A 409 (the id is already known) counts as success."""
        settings = self.settings
        if not settings.broadcast_url or not settings.broadcast_secret:
            raise ConfigurationError("JIAOYING_BROADCAST_URL and JIAOYING_BROADCAST_SECRET must both be set")
        receipt_url = f"{settings.public_url.rstrip('/')}/webhooks/broadcast/receipt"
        body = json.dumps(order.payload(receipt_url), ensure_ascii=False, separators=(",", ":")).encode()
        ts = str(int(self._clock()))
        headers = {"Content-Type": "application/json", "X-Jiaoying-Timestamp": ts,
                   "X-Jiaoying-Signature": sign(settings.broadcast_secret, ts, body), "Idempotency-Key": order.id}
        import httpx  # on the first order: a county without the broadcast platform never loads it

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        try:
            response = await self._client.post(settings.broadcast_url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientError(f"broadcast platform timed out: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"broadcast platform unreachable: {exc!r}") from exc
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

    async def aclose(self) -> None:
        if self._own and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class BroadcastSimulator(Broadcaster):
    """No platform configured: records each order in memory and answers ``sim-<id>``. Fails on
    demand, like the channel simulators: ``fail_next(n, error)``."""

    provider = "simulator"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[BroadcastOrder] = []
        self._pending: list[ChannelError] = []

    def fail_next(self, n: int = 1, error: ChannelError | None = None) -> None:
        """The next ``n`` sends raise ``error`` (default: a TransientError, as in an outage)."""
        error = error or TransientError("simulated broadcast platform outage")
        with self._lock:
            self._pending.extend(error for _ in range(n))

    async def send(self, order: BroadcastOrder) -> str:
        with self._lock:
            error = self._pending.pop(0) if self._pending else None
            if error is None:
                self._sent.append(order)
        if error is not None:
            raise copy.copy(error)  # a fresh instance each time, so tracebacks don't pile up
        return f"sim-{order.id}"

    def sent(self) -> list[BroadcastOrder]:
        """Every order taken, in order."""
        with self._lock:
            return list(self._sent)


def broadcast_adapter(settings: Settings, *, clock: Callable[[], float] = time.time) -> Broadcaster:
    """The single place that chooses: the platform when JIAOYING_BROADCAST_URL is set, else the simulator."""
    return BroadcastAdapter(settings, clock=clock) if settings.broadcast_url else BroadcastSimulator()
