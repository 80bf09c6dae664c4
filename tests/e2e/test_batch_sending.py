"""Batch providers (Aliyun's SendBatchSms, Tencent's SendSms carry up to 100/200 numbers a request):
the worker hands a batch of queued attempts to the adapter in one request; every attempt keeps its
own key, provider id and status; a refused number fails only its own attempt; and the provider's
rate limit counts requests, not messages. Here with the batch simulator (the Aliyun and Tencent
adapters run the same path against their fakes in tests/integration)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.app import create_app
from dispatcher.channels.base import ChannelAdapter, PermanentError
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import BatchSimulatorAdapter, SimOutbox
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from dispatcher.services.keys import create_key
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, Clock
from tests.support.bigsite import write_big_site

OFFICIALS = 250


@pytest.fixture
def county(database_url: str, tmp_path: Path) -> str:
    write_big_site(tmp_path / "site", OFFICIALS)
    with transaction(database_url) as session:
        load_site_files(session, tmp_path / "site", FIXED_NOW)
    return database_url


def _engine(url: str, clock: Clock, sms: ChannelAdapter, outbox: SimOutbox, limits: str = "") -> Engine:
    settings = Settings(database_url=url, rate_limits=limits)
    return Engine(settings, clock, lambda: {**build_adapters(settings, outbox), Channel.SMS: sms}, name="batch")


@pytest.fixture
def post(county: str, clock: Clock) -> Iterator[object]:
    with transaction(county) as session:
        _, key = create_key(session, "qingxi-qx", FIXED_NOW)
    with TestClient(create_app(Settings(database_url=county), clock=clock)) as client:
        def send() -> None:
            r = client.post("/api/v1/warnings", headers={"Authorization": f"Bearer {key}"}, json={
                "sender": "qingxi-qx", "identifier": "BATCH-1", "hazard": "rainstorm", "level": "red",
                "areas": ["330599"], "headline": "暴雨红色预警", "sent": clock().isoformat()})
            assert r.status_code == 202, r.text
        yield send


def _sms_attempts(url: str) -> list[AttemptRow]:
    with transaction(url) as session:
        rows = list(session.scalars(select(AttemptRow).where(AttemptRow.channel == "sms").order_by(AttemptRow.id)))
        session.expunge_all()
        return rows


def test_a_fan_out_goes_in_batches_and_every_attempt_keeps_its_own_id(county: str, clock: Clock, post) -> None:
    outbox = SimOutbox()
    sms = BatchSimulatorAdapter(Channel.SMS, outbox, batch_size=100)
    engine = _engine(county, clock, sms, outbox)
    try:
        post()
        engine.tick()
        engine.drain()
    finally:
        engine.close()
    assert sorted(n for _, n in sms.requests) == [50, 100, 100]  # 250 officials' alerts in three requests
    attempts = _sms_attempts(county)
    assert len(attempts) == OFFICIALS and {a.status for a in attempts} == {"sent"}
    assert len({a.provider_id for a in attempts}) == OFFICIALS  # each its own id, for its receipts
    sent_keys = [m.message.key for m in outbox.messages() if m.message.channel is Channel.SMS]
    assert sorted(sent_keys) == sorted(a.key for a in attempts)  # every key once


def test_one_refused_number_fails_only_its_own_attempt(county: str, clock: Clock, post) -> None:
    # bad input: one official's number is refused by the provider inside a batch
    outbox = SimOutbox()
    sms = BatchSimulatorAdapter(Channel.SMS, outbox, batch_size=100,
                                failures={"p7": PermanentError("isv.MOBILE_NUMBER_ILLEGAL")})
    engine = _engine(county, clock, sms, outbox)
    try:
        post()
        engine.tick()
        engine.drain()
    finally:
        engine.close()
    by_person = {a.recipient_id: a for a in _sms_attempts(county)}
    assert by_person["p7"].status == "failed" and "MOBILE_NUMBER_ILLEGAL" in (by_person["p7"].error or "")
    assert {a.status for p, a in by_person.items() if p != "p7"} == {"sent"}


def test_a_batch_providers_limit_counts_requests(county: str, clock: Clock, post) -> None:
    outbox = SimOutbox()
    sms = BatchSimulatorAdapter(Channel.SMS, outbox, batch_size=100)
    engine = _engine(county, clock, sms, outbox, limits="sms=2/s")
    started = time.monotonic()
    try:
        post()
        engine.tick()
        engine.drain(patience=10)
    finally:
        engine.close()
    # 250 messages at "2 per second" would take two minutes; as 3 requests they take about one second.
    assert sorted(n for _, n in sms.requests) == [50, 100, 100]
    # never three requests in one second (the embedded meter keeps the window: a late request may
    # come closer than 0.5 s to the next, but the third waits until the first's second is over)
    times = [t for t, _ in sms.requests]
    assert times[2] - times[0] >= 1.0, times
    assert time.monotonic() - started < 10
