"""Liveness that means progress: the scheduler and each worker stamp a heartbeat when they make a
pass, and readiness compares queued work with the last sign of progress (a worker that is alive
but consuming nothing passes any PID or TCP check)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.queue import claimable
from ..db.tables import AttemptRow, CalloutRow, HeartbeatRow, WarningRow
from ..domain.callouts import OPEN_STATES, Purpose

SCHEDULER_STALE_S = 30
QUEUE_STALE_S = 60


def beat(session: Session, name: str, role: str, now: datetime, info: dict[str, Any] | None = None) -> None:
    row = session.get(HeartbeatRow, name)
    if row is None:
        session.add(HeartbeatRow(name=name, role=role, at=now, info=info or {}))
    else:
        row.at, row.info = now, info or {}


def engine_health(session: Session, now: datetime) -> dict[str, str]:
    """Readiness checks for the call-out engine; each value is "ok" or a sentence."""
    checks: dict[str, str] = {}
    last = session.scalar(select(func.max(HeartbeatRow.at)).where(HeartbeatRow.role == "scheduler"))
    age = (now - last).total_seconds() if last else None
    checks["scheduler"] = "ok" if age is not None and age < SCHEDULER_STALE_S else (
        f"no scheduler pass for {age:.0f} s" if age is not None else "no scheduler has run")
    # Attempts a worker could take now; one waiting for its retry time is not a stalled worker's fault.
    oldest = session.scalar(select(func.min(func.coalesce(AttemptRow.not_before, AttemptRow.created_at)))
                            .where(claimable(now)))
    waiting = (now - oldest).total_seconds() if oldest else 0.0
    queued = session.scalar(select(func.count()).where(claimable(now))) or 0
    checks["workers"] = "ok" if waiting < QUEUE_STALE_S else (
        f"stalled: {queued} attempts queued, the oldest waiting {waiting:.0f} s")
    checks["channels"] = _halted_channels(session, now)
    checks["escalations"] = _final_escalations(session, now)
    checks["warnings"] = _stuck(session)
    overdue = session.scalar(select(func.min(CalloutRow.next_due)).where(CalloutRow.state.in_(OPEN_STATES)))
    late = (now - overdue).total_seconds() if overdue else 0.0
    checks["timers"] = "ok" if late < QUEUE_STALE_S else f"escalation steps overdue by {late:.0f} s"
    return checks


def _halted_channels(session: Session, now: datetime) -> str:
    """Providers a live worker has halted on a configuration error (credentials refused, template
    not approved, account in arrears): nothing goes out on that channel until someone fixes it."""
    since = now - timedelta(seconds=QUEUE_STALE_S)
    halted: dict[str, str] = {}
    simulated: set[str] = set()
    failing: dict[str, str] = {}
    for (info,) in session.execute(select(HeartbeatRow.info).where(HeartbeatRow.role.in_(("worker", "scheduler")),
                                                                   HeartbeatRow.at >= since)):
        for channel, reason in sorted(((info or {}).get("halted") or {}).items()):
            halted.setdefault(str(channel), str(reason))
        simulated |= {str(c) for c in (info or {}).get("simulated") or ()}
        for channel, why in sorted(((info or {}).get("failover") or {}).items()):
            on = ((info or {}).get("providers") or {}).get(channel, "none")
            failing.setdefault(str(channel), f"on {on} ({why})")
    problems = [f"{channel} halted ({reason}): fix the provider's configuration; its messages wait"
                for channel, reason in sorted(halted.items())]
    problems += [f"{channel} failed over: {state}" for channel, state in sorted(failing.items())]
    if simulated:  # production with JIAOYING_ALLOW_SIMULATORS=1
        problems.append(f"{', '.join(sorted(simulated))} on the simulator (JIAOYING_ALLOW_SIMULATORS=1): "
                        "these messages reach no phone")
    return "; ".join(problems) or "ok"


def _final_escalations(session: Session, now: datetime) -> str:
    """The 未叫醒 list is the last message of a call-out: one that a provider refused is retried until
    it goes or the call-out is answered, and loud meanwhile."""
    failing = session.execute(
        select(func.count(), func.min(AttemptRow.created_at)).where(
            AttemptRow.purpose == Purpose.UNREACHED, AttemptRow.status.in_(("queued", "sending")),
            AttemptRow.not_before.is_not(None))).one()
    count, since = failing
    if not count:
        return "ok"
    return f"{count} final escalation(s) not delivered, retrying for {(now - since).total_seconds():.0f} s"


def _stuck(session: Session) -> str:
    """Warnings and call-outs the engine could not process (it tries again; the others carry on)."""
    warnings = session.execute(select(WarningRow.id, WarningRow.apply_error).where(
        WarningRow.applied_at.is_(None), WarningRow.apply_error.is_not(None)).order_by(WarningRow.received_at)).all()
    callouts = session.scalar(select(func.count()).where(
        CalloutRow.state.in_(OPEN_STATES), CalloutRow.error.is_not(None))) or 0
    problems = []
    if warnings:
        first = warnings[0]
        problems.append(f"{len(warnings)} warning(s) could not be applied ({first.id}: {first.apply_error})")
    if callouts:
        problems.append(f"{callouts} call-out(s) could not run their step")
    return "; ".join(problems) or "ok"
