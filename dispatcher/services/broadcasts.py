"""The rural emergency broadcast, from plan to platform: its orders, their events and receipts.

When a warning is applied and one of its plans names a broadcast, an order for the affected
villages (the spoken text from ``templates/broadcast/``, a repeat count) is written in the same
transaction (``order_for``: a ``broadcast_orders`` row and a ``broadcast_ordered`` event). The
scheduler pass claims pending orders (``claim_due``) and hands each to the broadcast adapter it
was given (``hand_over``; dispatcher.channels.broadcast.broadcast_adapter picks the platform or
the simulator), then records the outcome (``record``: ``broadcast_sent`` / ``broadcast_failed``),
retrying transient failures with backoff. Receipts come back on ``POST
/webhooks/broadcast/receipt`` and are recorded by ``record_receipt``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..channels import broadcast as platform
from ..channels.base import ChannelError, TransientError
from ..db.record_repo import append_event
from ..db.tables import BroadcastOrderRow, EventRow, WarningRow
from ..domain.hazards import Hazard, Level
from ..domain.plans import Plan
from ..domain.record import EventKind
from ..domain.rules import WarningFacts, affected_areas
from ..domain.site import Site
from ..intake.schema import text_problem
from ..rendering import DEFAULT_LANG, MessageContext, render_broadcast
from .site import current_site

__all__ = ["LEASE", "MAX_TRIES", "claim_due", "hand_over", "latest_receipts", "order_broadcast", "order_for",
           "orders_of", "record", "record_receipt", "record_sent", "spoken_text"]

LEASE = timedelta(seconds=60)
MAX_TRIES = 8


def order_for(session: Session, site: Site, row: WarningRow, plans: Sequence[Plan], now: datetime) -> str | None:
    """Write the broadcast order for a warning whose matched plans ask for one; None if none do."""
    wanted = [p for p in plans if p.broadcast is not None]
    if not wanted or session.get(BroadcastOrderRow, platform.PREFIX + row.id) is not None:
        return None
    facts = WarningFacts(Hazard(row.hazard), Level(row.level), tuple(row.areas), row.sender, row.sent,
                         tuple(row.zones or ()))
    areas = platform.villages(site.areas, [a for p in wanted for a in affected_areas(site, p, facts)])
    if not areas:
        return None
    repeat = max(p.broadcast.repeat for p in wanted if p.broadcast)
    order = order_broadcast(session, now, row.id, areas, repeat, site=site)
    session.add(BroadcastOrderRow(id=order.id, warning_id=row.id, record_id=order.record, areas=list(areas),
                                  repeat=repeat, state="pending", next_try_at=now, created_at=now))
    return order.id


def spoken_text(row: WarningRow, site: Site, lang: str = DEFAULT_LANG) -> str:
    """What the loudspeakers read out for this warning message: templates/broadcast/alert.<lang>.j2."""
    return render_broadcast(lang, MessageContext(
        headline=row.headline, hazard=Hazard(row.hazard), level=Level(row.level),
        areas=[site.areas.name(a) for a in row.areas], description=row.description or "",
        instruction=row.instruction or "", sent=row.sent, drill=row.drill, official="", ack_code=""))


def order_broadcast(session: Session, now: datetime, warning_id: str, areas: Sequence[str], repeat: int,
                    text: str | None = None, *, site: Site | None = None) -> platform.BroadcastOrder:
    """Record the order on the warning's record (event ``broadcast_ordered``) and return it. Called
    again for the same warning message it returns the same order and records nothing. ``text``:
    what to read out (default: ``spoken_text`` of the warning, with the loaded site's area names)."""
    row = session.get(WarningRow, warning_id)
    if row is None:
        raise LookupError(f"no warning {warning_id}")
    record = row.root_id or row.id
    if text is None:
        text = spoken_text(row, site or current_site(session))
    order = platform.BroadcastOrder(platform.PREFIX + row.id, row.id, record, tuple(areas), text, row.level,
                                    int(repeat), row.drill, row.hazard, row.headline)
    if _ordered(session, order.id) is None:
        append_event(session, record, EventKind.BROADCAST_ORDERED, "engine", now,
                     {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(order).items()})
    return order


def _ordered(session: Session, broadcast_id: str) -> dict[str, Any] | None:
    """The ``broadcast_ordered`` event's data for this id, or None."""
    if not broadcast_id.startswith(platform.PREFIX):
        return None
    row = session.get(WarningRow, broadcast_id[len(platform.PREFIX):])
    if row is None:
        return None
    for data in session.scalars(select(EventRow.data).where(
            EventRow.warning_id == (row.root_id or row.id), EventRow.kind == "broadcast_ordered")):
        if data.get("id") == broadcast_id:
            return data
    return None


def claim_due(session: Session, now: datetime, limit: int = 20) -> list[platform.BroadcastOrder]:
    """Pending orders whose time has come, leased to this pass."""
    rows = list(session.scalars(
        select(BroadcastOrderRow).where(BroadcastOrderRow.state == "pending", BroadcastOrderRow.next_try_at <= now)
        .order_by(BroadcastOrderRow.created_at).limit(limit).with_for_update(skip_locked=True)))
    orders = []
    for row in rows:
        row.next_try_at, row.tries = now + LEASE, row.tries + 1
        orders.append(order_broadcast(session, now, row.warning_id, row.areas, row.repeat))
    return orders


async def hand_over(adapter: platform.Broadcaster, order: platform.BroadcastOrder,
                    ) -> tuple[str | None, ChannelError | None]:
    """Give the order to the adapter: the platform's id for it, or the error it raised."""
    try:
        return await adapter.send(order), None
    except ChannelError as exc:
        return None, exc


def record(session: Session, now: datetime, order: platform.BroadcastOrder, platform_id: str | None,
           error: ChannelError | None) -> None:
    row = session.get(BroadcastOrderRow, order.id)
    if row is None:
        return
    if error is None:
        row.state, row.platform_id, row.sent_at, row.error = "sent", platform_id, now, None
    elif isinstance(error, TransientError) and row.tries < MAX_TRIES:
        row.next_try_at, row.error = now + timedelta(seconds=min(300, 5 * 2 ** row.tries)), str(error)
    else:
        row.state, row.error = "failed", f"{type(error).__name__}: {error}"
    record_sent(session, now, order, platform_id, error)


def record_sent(session: Session, now: datetime, order: platform.BroadcastOrder, platform_id: str | None = None,
                error: ChannelError | None = None) -> None:
    """Record the outcome of handing the order over on the warning's record."""
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


def orders_of(session: Session, record_id: str) -> list[BroadcastOrderRow]:
    """The event's broadcast orders, oldest first."""
    return list(session.scalars(select(BroadcastOrderRow).where(BroadcastOrderRow.record_id == record_id)
                                .order_by(BroadcastOrderRow.created_at)))


def latest_receipts(session: Session, record_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest playback receipt recorded for each (broadcast id, village code) of the event."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for data in session.scalars(select(EventRow.data).where(EventRow.warning_id == record_id,
                                                            EventRow.kind == EventKind.BROADCAST_RECEIPT)
                                .order_by(EventRow.seq)):
        latest[(data.get("id", ""), data.get("area", ""))] = data
    return latest
