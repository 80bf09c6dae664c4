"""The engine's gauges, read from the database at scrape time (``GET /metrics``): workers run in
other processes, and the database already holds the truth — attempts, call-outs, and the
heartbeats in which each worker reports its channels' circuits and providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.tables import AttemptRow, CalloutRow, HeartbeatRow
from ..domain.channels import Channel
from . import drills

FRESH_SECONDS = 60  # a worker heard from within this long is live: its circuits and providers count


@dataclass
class EngineGauges:
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, status) -> how many
    callouts: dict[str, int] = field(default_factory=dict)  # state -> how many (real warnings' and checks')
    drill_callouts: dict[str, int] = field(default_factory=dict)  # state -> how many, revealed drills' apart
    oldest_queued_seconds: float = 0.0  # age of the oldest queued attempt; 0 with none queued
    circuit_open: dict[str, int] = field(default_factory=dict)  # channel -> 1 when a live worker has it open
    providers: list[tuple[str, str]] = field(default_factory=list)  # (channel, provider) live workers send through
    heartbeat_age: dict[str, float] = field(default_factory=dict)  # role -> seconds since its freshest pass


def engine_gauges(session: Session, now: datetime) -> EngineGauges:
    gauges = EngineGauges()
    for channel, status, n in session.execute(
            select(AttemptRow.channel, AttemptRow.status, func.count()).group_by(AttemptRow.channel,
                                                                                  AttemptRow.status)):
        gauges.attempts[(channel, status)] = n
    # Drills are counted apart: no real figure includes a drill's call-outs (docs/drills.md). A blind
    # drill not yet revealed is counted in neither series (/metrics asks no login: it must not show
    # as a drill, and it is none of the real figures); once revealed, in the drill series.
    counted_callouts = select(CalloutRow.state, CalloutRow.drill, func.count())
    if hidden := sorted(drills.concealed(session)):
        counted_callouts = counted_callouts.where(CalloutRow.record_id.not_in(hidden))
    for state, drill, n in session.execute(counted_callouts.group_by(CalloutRow.state, CalloutRow.drill)):
        counted = gauges.drill_callouts if drill else gauges.callouts
        counted[state] = counted.get(state, 0) + n
    first = session.scalar(select(func.min(AttemptRow.created_at)).where(AttemptRow.status == "queued"))
    gauges.oldest_queued_seconds = (now - first).total_seconds() if first else 0.0
    opened: dict[str, int] = {c.value: 0 for c in Channel}
    using: set[tuple[str, str]] = set()
    for role, at, info in session.execute(select(HeartbeatRow.role, HeartbeatRow.at, HeartbeatRow.info)):
        age = (now - at).total_seconds()
        gauges.heartbeat_age[role] = min(age, gauges.heartbeat_age.get(role, age))
        if role == "worker" and age < FRESH_SECONDS:
            for channel, state in (info or {}).get("circuits", {}).items():
                opened[channel] = max(opened.get(channel, 0), int(state == "open"))
            for channel, name in (info or {}).get("providers", {}).items():
                using.add((str(channel), str(name)))
    gauges.circuit_open = opened
    gauges.providers = sorted(using)
    return gauges
