"""The county's routine checks and forwarding in the production runtime: PostgreSQL, a real Redis, a
Celery worker and two `jiaoying scheduler` processes, sending to a loopback simulator; the clock moved
through the shared offset file (tests/e2e/test_callout_celery.py has the harness).

On the sample county at 21:00 on Thursday 16 July: the scheduled daily roll-call (checks.yaml) is
started by a scheduler process, once, and answered by an SMS reply and a keypress; a 六问 spot-check
started by the service is answered by SMS; a red warning is forwarded to a receiver on 127.0.0.1.
Half an hour on, the results: per room and per person, each on its record once, the unanswered
rooms' leaders told."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from dispatcher.db.record_repo import events, verify
from dispatcher.db.session import transaction
from dispatcher.db.tables import WarningRow
from dispatcher.domain.callouts import AckVia
from dispatcher.intake.cap import parse_cap
from dispatcher.services import ack, receipts, rollcalls, spotchecks
from dispatcher.services.site import current_site
from tests.conftest import FIXED_NOW, SAMPLE_SITE
from tests.e2e.test_forwarding import Receiver
from tests.fakes.simserver import SimServer
from tests.support.harness import Harness, wait_until
from tests.support.production import E2E_SECRET, Production, make_harness

pytestmark = pytest.mark.postgres
NINE_PM = FIXED_NOW.replace(hour=13, minute=0, second=5)  # 21:00:05 Beijing
COUNTY, LONGTAN, BAIYUN = "330599", "330599102", "330599103"
SEED = 42
YE = "ye-xingwang"  # the first drawn by seed 42


def _sent_to(server: SimServer, purpose: str) -> list[tuple[str, str]]:
    return sorted((m["to"], m["channel"]) for m in server.received if m["purpose"] == purpose)


def _on_record(url: str, record: str, kind: str) -> list[Any]:
    with transaction(url, write=False) as session:
        return [e for e in events(session, record) if e.kind == kind]


def _mobile(h: Harness, person: str) -> str:
    with transaction(h.url, write=False) as session:
        return current_site(session).people[person].mobile or ""


def test_a_roll_call_a_spot_check_and_a_forward_on_celery(production: Production, sim: SimServer,  # noqa: F811
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIAOYING_SECRET_KEY", E2E_SECRET)  # answers written here sign the record as the processes do
    receiver = Receiver()
    forwarding = tmp_path / "forwarding.yaml"
    forwarding.write_text(yaml.safe_dump({"targets": [{
        "id": "city", "name": "市预警平台", "url": f"{receiver.url}/api/v1/warnings", "key": "jy_city_key",
        "levels": ["red"]}]}, allow_unicode=True), encoding="utf-8")
    production.env["JIAOYING_FORWARDING_FILE"] = str(forwarding)
    try:
        production.start_worker()
        for _ in range(2):
            production.start_scheduler()
        h = make_harness(production, sim, SAMPLE_SITE)
        url = h.url
        h.advance(seconds=(NINE_PM - h.now()).total_seconds())  # the daily roll-call's minute has come
        wait_until(lambda: len(_sent_to(sim, "rollcall")) == 10, 30, "the roll-call's calls and texts")
        with transaction(url, write=False) as session:
            (rollcall,) = session.scalars(select(WarningRow.id).where(WarningRow.kind == "rollcall"))
        assert _sent_to(sim, "rollcall") == sorted(
            (p, c) for p in ("chen-li", "liu-yang", "zhang-jing", "zhou-jianxin", "shi-ronghua")
            for c in ("voice", "sms"))
        # 陈立 replies to the text; 周建新 presses 1 on the call
        with transaction(url) as session:
            assert ack.acknowledge_reply(session, h.now(), phone=_mobile(h, "chen-li"), via=AckVia.SMS,
                                         body="1").acknowledged
            call = next(m for m in sim.received if m["to"] == "zhou-jianxin" and m["channel"] == "voice")
            assert receipts.voice_keypress(session, h.now(), call["key"], "1", "CA-zhou").acknowledged

        # a 六问 spot-check, answered by SMS by the first drawn
        with transaction(url) as session:
            started = spotchecks.start(session, None, h.now(), "user:duty", seed=SEED)
        assert started.sample.drawn[0] == YE
        wait_until(lambda: len(_sent_to(sim, "spotcheck")) == 12, 30, "the spot-check's calls and texts")
        with transaction(url) as session:
            answered = receipts.inbound_sms(session, h.now(), sender=_mobile(h, YE), body="1 1 2 1 1 1", sid="S1")
        assert answered.spotcheck == "answers"

        # a red warning: forwarded to the city's platform
        warning = h.post(areas=["330599102"])
        wait_until(lambda: len(receiver.requests) == 1, 30, "the warning forwarded")
        (path, headers, body) = receiver.requests[0]
        assert path == "/api/v1/warnings" and headers["Authorization"] == "Bearer jy_city_key"
        assert parse_cap(body)["identifier"] == warning
        wait_until(lambda: bool(_on_record(url, warning, "forwarded")), 10, "the forward on the warning's record")

        h.advance(minutes=31)  # the roll-call's ten minutes and the spot-check's thirty are up
        wait_until(lambda: bool(_on_record(url, rollcall, "rollcall_result"))
                   and bool(_on_record(url, started.id, "spotcheck_result")), 20, "both results on their records")
        time.sleep(1.5)  # more passes of both schedulers: nothing more is written
        with transaction(url, write=False) as session:
            rooms = {r.area: r for r in rollcalls.results(session, rollcall)}
            result = spotchecks.result(session, started.id)
            assert verify(session, rollcall) == [] and verify(session, started.id) == []
        assert {a: r.verdict for a, r in rooms.items()} == {COUNTY: "manned", LONGTAN: "manned", BAIYUN: "missing"}
        assert [(a.name, a.outcome, a.via) for a in rooms[LONGTAN].people] == [("周建新", "present", "voice")]
        (rollcall_result,) = _on_record(url, rollcall, "rollcall_result")
        assert [r["verdict"] for r in rollcall_result.data["rooms"]] == ["manned", "manned", "missing"]
        assert ("fang-yunfei", "sms") in _sent_to(sim, "rollcall_missed")  # 白云镇's leader told
        by = {p.person_id: p for p in result.people}
        assert by[YE].answers == ("yes", "yes", "no", "yes", "yes", "yes") and by[YE].verdict == "no"
        assert [p.verdict for p in result.people].count("missing") == 5
        (summary,) = _on_record(url, started.id, "spotcheck_result")
        assert (summary.data["ok"], summary.data["no"], summary.data["missing"]) == (0, 1, 5)
        assert sim.stats()["duplicates"] == []
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()
