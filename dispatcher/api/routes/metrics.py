"""Prometheus metrics, read from the database at scrape time: workers run in other processes,
and the database already holds the truth (attempts, call-outs, heartbeats with circuit states)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from ...db.session import transaction
from ...db.tables import AttemptRow, CalloutRow, HeartbeatRow
from ...domain.channels import Channel
from ..deps import ClockDep, SettingsDep

router = APIRouter(tags=["health"])
FRESH_SECONDS = 60


class EngineCollector(Collector):
    def __init__(self, url: str, now: datetime) -> None:
        self.url, self.now = url, now

    def collect(self) -> Iterator[Metric]:
        attempts = GaugeMetricFamily("jiaoying_attempts", "Attempts by channel and status",
                                     labels=["channel", "status"])
        callouts = GaugeMetricFamily("jiaoying_callouts", "Call-outs by state", labels=["state"])
        circuit = GaugeMetricFamily("jiaoying_channel_circuit_open",
                                    "1 when a live worker has the channel's circuit open (provider down)",
                                    labels=["channel"])
        provider = GaugeMetricFamily("jiaoying_channel_provider",
                                     "1 for the provider a live worker sends the channel's next message through",
                                     labels=["channel", "provider"])
        oldest = GaugeMetricFamily("jiaoying_queue_oldest_seconds", "Age of the oldest queued attempt")
        beat = GaugeMetricFamily("jiaoying_heartbeat_age_seconds", "Seconds since each role's last pass",
                                 labels=["role"])
        with transaction(self.url, write=False) as session:
            for channel, status, n in session.execute(
                    select(AttemptRow.channel, AttemptRow.status, func.count()).group_by(AttemptRow.channel,
                                                                                          AttemptRow.status)):
                attempts.add_metric([channel, status], n)
            for state, n in session.execute(select(CalloutRow.state, func.count()).group_by(CalloutRow.state)):
                callouts.add_metric([state], n)
            first = session.scalar(select(func.min(AttemptRow.created_at)).where(AttemptRow.status == "queued"))
            oldest.add_metric([], (self.now - first).total_seconds() if first else 0.0)
            opened: dict[str, int] = {c.value: 0 for c in Channel}
            freshest: dict[str, float] = {}
            using: set[tuple[str, str]] = set()
            for role, at, info in session.execute(select(HeartbeatRow.role, HeartbeatRow.at, HeartbeatRow.info)):
                age = (self.now - at).total_seconds()
                freshest[role] = min(age, freshest.get(role, age))
                if role == "worker" and age < FRESH_SECONDS:
                    for channel, state in (info or {}).get("circuits", {}).items():
                        opened[channel] = max(opened.get(channel, 0), int(state == "open"))
                    for channel, name in (info or {}).get("providers", {}).items():
                        using.add((str(channel), str(name)))
            for role, age in freshest.items():
                beat.add_metric([role], age)
            for channel, value in opened.items():
                circuit.add_metric([channel], value)
            for channel, name in sorted(using):
                provider.add_metric([channel, name], 1)
        yield from (attempts, callouts, circuit, provider, oldest, beat)


@router.get("/metrics", summary="Prometheus metrics: attempts, call-outs, queue age, heartbeats, channel health")
def metrics(settings: SettingsDep, clock: ClockDep) -> Response:
    registry = CollectorRegistry()
    registry.register(EngineCollector(settings.database_url, clock()))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
