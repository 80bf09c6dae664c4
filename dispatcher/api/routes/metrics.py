"""Prometheus metrics, read from the database at scrape time: workers run in other processes,
and the database already holds the truth (attempts, call-outs, heartbeats with circuit states;
``services/metrics.py``)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ...services.metrics import EngineGauges, engine_gauges
from ..deps import ClockDep, SessionDep

router = APIRouter(tags=["health"])


class EngineCollector(Collector):
    """The engine's gauges as Prometheus metric families."""

    def __init__(self, gauges: EngineGauges) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        g = self.gauges
        attempts = GaugeMetricFamily("jiaoying_attempts", "Attempts by channel and status",
                                     labels=["channel", "status"])
        for (channel, status), n in g.attempts.items():
            attempts.add_metric([channel, status], n)
        callouts = GaugeMetricFamily("jiaoying_callouts", "Call-outs by state (real warnings' and checks': never a "
                                     "drill's)", labels=["state"])
        for state, n in g.callouts.items():
            callouts.add_metric([state], n)
        drill_callouts = GaugeMetricFamily("jiaoying_drill_callouts", "Drills' call-outs by state (never in "
                                           "jiaoying_callouts; a blind drill's only once it is revealed)",
                                           labels=["state"])
        for state, n in g.drill_callouts.items():
            drill_callouts.add_metric([state], n)
        circuit = GaugeMetricFamily("jiaoying_channel_circuit_open",
                                    "1 when a live worker has the channel's circuit open (provider down)",
                                    labels=["channel"])
        for channel, value in g.circuit_open.items():
            circuit.add_metric([channel], value)
        provider = GaugeMetricFamily("jiaoying_channel_provider",
                                     "1 for the provider a live worker sends the channel's next message through",
                                     labels=["channel", "provider"])
        for channel, name in g.providers:
            provider.add_metric([channel, name], 1)
        oldest = GaugeMetricFamily("jiaoying_queue_oldest_seconds", "Age of the oldest queued attempt")
        oldest.add_metric([], g.oldest_queued_seconds)
        beat = GaugeMetricFamily("jiaoying_heartbeat_age_seconds", "Seconds since each role's last pass",
                                 labels=["role"])
        for role, age in g.heartbeat_age.items():
            beat.add_metric([role], age)
        yield from (attempts, callouts, drill_callouts, circuit, provider, oldest, beat)


@router.get("/metrics", summary="Prometheus metrics: attempts, call-outs, queue age, heartbeats, channel health")
def metrics(session: SessionDep, clock: ClockDep) -> Response:
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine_gauges(session, clock())))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
