"""The rural emergency broadcast, from plan to platform.

When a warning is applied and one of its plans names a broadcast, an order for the affected
villages (TTS text, repeat count) is written in the same transaction. The scheduler pass then
hands pending orders to the platform — the real one when JIAOYING_BROADCAST_URL is set, else a
simulator that only records — retrying transient failures with backoff. Receipts come back on
``POST /webhooks/broadcast/receipt`` (see dispatcher.channels.broadcast)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..channels import broadcast as platform
from ..channels.base import ChannelError, TransientError
from ..config import Settings
from ..db.tables import BroadcastOrderRow, WarningRow
from ..domain.plans import Plan
from ..domain.site import Site

LEASE = timedelta(seconds=60)
MAX_TRIES = 8


def order_for(session: Session, site: Site, row: WarningRow, plans: Sequence[Plan], now: datetime) -> str | None:
    """Write the broadcast order for a warning whose matched plans ask for one; None if none do."""
    wanted = [p for p in plans if p.broadcast is not None]
    if not wanted or session.get(BroadcastOrderRow, platform.PREFIX + row.id) is not None:
        return None
    areas = platform.villages(site.areas, [a for p in wanted for a in p.affected_areas(tuple(row.areas))])
    if not areas:
        return None
    repeat = max(p.broadcast.repeat for p in wanted if p.broadcast)
    order = platform.order_broadcast(session, now, row.id, areas, repeat)
    session.add(BroadcastOrderRow(id=order.id, warning_id=row.id, record_id=order.record, areas=list(areas),
                                  repeat=repeat, state="pending", next_try_at=now, created_at=now))
    return order.id


def claim_due(session: Session, now: datetime, limit: int = 20) -> list[platform.BroadcastOrder]:
    """Pending orders whose time has come, leased to this pass."""
    rows = list(session.scalars(
        select(BroadcastOrderRow).where(BroadcastOrderRow.state == "pending", BroadcastOrderRow.next_try_at <= now)
        .order_by(BroadcastOrderRow.created_at).limit(limit).with_for_update(skip_locked=True)))
    orders = []
    for row in rows:
        row.next_try_at, row.tries = now + LEASE, row.tries + 1
        orders.append(platform.order_broadcast(session, now, row.warning_id, row.areas, row.repeat))
    return orders


async def hand_over(settings: Settings, order: platform.BroadcastOrder) -> tuple[str | None, ChannelError | None]:
    if not settings.broadcast_url:
        return f"sim-{order.id}", None  # no platform configured: the simulator takes it
    try:
        return await platform.send_broadcast(settings, order), None
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
    platform.record_sent(session, now, order, platform_id, error)


def orders_of(session: Session, record_id: str) -> list[BroadcastOrderRow]:
    return list(session.scalars(select(BroadcastOrderRow).where(BroadcastOrderRow.record_id == record_id)))
