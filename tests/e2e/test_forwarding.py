"""Forwarding up and across (转发, 上报), end to end with real parts: our Jiaoying and a neighbouring
county's, each a real app served by uvicorn on 127.0.0.1 with its own database and agency keys;
a scripted receiver in front of the neighbour (500, a hang, a pass-through) for retries; aiosmtpd
for the e-mailed result. The engine's clock is moved instead of waiting.

Our county is the tiny site (id ``tiny``) with a hazard zone; the neighbour is the same county
files under the id ``tiny-b`` (what matters is that its site id differs: the loop rules use it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from sqlalchemy import select

from dispatcher.api.app import create_app
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.session import engine_for, transaction
from dispatcher.db.tables import CalloutRow, EventRow, ForwardRow, WarningRow
from dispatcher.domain.callouts import AckVia
from dispatcher.intake.cap import parse_cap
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack
from dispatcher.services import forwarding as forwards
from dispatcher.services.heartbeat import QUEUE_STALE_S, engine_health, engine_problems
from dispatcher.services.keys import create_key
from dispatcher.services.site import current_site, load_site_files
from tests.conftest import FIXED_NOW, Clock
from tests.e2e.conftest import TINY_SITE
from tests.support.harness import settle_engine
from tests.support.mail import MailSink, smtp_server

ZONE = """
zones:
  - id: xikou-shanhong
    name: 溪口山洪危险区
    kind: flash_flood_zone
    areas: ["330599100201"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def site_copy(folder: Path, site_id: str) -> Path:
    """The tiny county's files under another site id, with a hazard zone."""
    shutil.copytree(TINY_SITE, folder)
    areas = folder / "areas.yaml"
    areas.write_text(areas.read_text(encoding="utf-8").replace("site: tiny\n", f"site: {site_id}\n") + ZONE,
                     encoding="utf-8")
    return folder


class Served:
    """An app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait(lambda: self.server.started, "uvicorn to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class County:
    """One Jiaoying: its database, its site id, its app served on 127.0.0.1."""

    url: str
    site: str
    served: Served
    clock: Clock
    tmp: Path
    engines: list[Engine] = field(default_factory=list)

    @property
    def intake(self) -> str:
        return f"{self.served.base}/api/v1/warnings"

    def key(self, agency: str) -> str:
        with transaction(self.url) as session:
            _, token = create_key(session, agency, FIXED_NOW)
        return token

    def engine(self, targets: list[dict[str, Any]] | None = None, inline: bool = True, **settings: Any) -> Engine:
        """An engine whose forwarding file names ``targets`` (none: no forwarding)."""
        path = ""
        if targets is not None:
            path = str(self.tmp / f"forwarding-{self.site}.yaml")
            self.forwarding(targets)
        config = Settings(**{"database_url": self.url, "forwarding_file": path, **settings})
        engine = Engine(config, self.clock, lambda: build_adapters(config, SimOutbox()), name=self.site)
        engine.forwards_inline = inline
        self.engines.append(engine)
        return engine

    def forwarding(self, targets: list[dict[str, Any]], **top: Any) -> Path:
        path = self.tmp / f"forwarding-{self.site}.yaml"
        path.write_text(yaml.safe_dump({**top, "targets": targets}, allow_unicode=True), encoding="utf-8")
        return path

    def warnings(self) -> list[WarningRow]:
        with transaction(self.url) as session:
            rows = list(session.scalars(select(WarningRow).order_by(WarningRow.received_at, WarningRow.id)))
            session.expunge_all()
        return rows

    def forwards(self) -> list[ForwardRow]:
        with transaction(self.url) as session:
            rows = list(session.scalars(select(ForwardRow).order_by(ForwardRow.id)))
            session.expunge_all()
        return rows

    def events(self, kind: str) -> list[dict[str, Any]]:
        with transaction(self.url) as session:
            return [dict(e) for e in session.scalars(select(EventRow.data).where(EventRow.kind == kind)
                                                     .order_by(EventRow.id))]

    def health(self) -> dict[str, str]:
        with transaction(self.url) as session:
            return engine_health(session, self.clock())


def _county(url: str, site_id: str, tmp: Path, clock: Clock) -> County:
    with transaction(url) as session:
        load_site_files(session, site_copy(tmp / site_id, site_id), FIXED_NOW)
    served = Served(create_app(Settings(database_url=url), clock=clock))
    return County(url, site_id, served, clock, tmp)


@pytest.fixture
def home(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[County]:
    """Our county (on SQLite and on PostgreSQL)."""
    county = _county(database_url, "tiny", tmp_path, clock)
    yield county
    for engine in county.engines:
        engine.close()
    county.served.stop()


@pytest.fixture
def neighbour(sqlite_template: Path, tmp_path: Path, clock: Clock) -> Iterator[County]:
    """The neighbouring county's Jiaoying, with a database of its own."""
    path = tmp_path / "neighbour.db"
    shutil.copy(sqlite_template, path)
    county = _county(f"sqlite:///{path}", "tiny-b", tmp_path, clock)
    yield county
    for engine in county.engines:
        engine.close()
    county.served.stop()
    engine_for(county.url).dispose()


@pytest.fixture
def post(home: County, auth: dict[str, str], clock: Clock) -> Callable[..., str]:
    """Post a warning to our county as the weather bureau (qingxi-qx); its id."""

    def send(identifier: str, **fields: Any) -> str:
        body = {"sender": "qingxi-qx", "identifier": identifier, "msg_type": "alert", "hazard": "rainstorm",
                "level": "red", "areas": ["330599100"], "headline": "小溪县气象台发布暴雨红色预警信号",
                "sent": clock().isoformat()}
        body.update(fields)
        response = httpx.post(home.intake, json=body, headers=auth)
        assert response.status_code in (200, 202), response.text
        return str(response.json()["id"])

    return send


class Receiver:
    """A receiver on 127.0.0.1 answering from a script, one entry per request: an HTTP status, "pass"
    (hand the request on to ``upstream`` and answer what it answers), "hang" (hand it on, then hold
    the answer back: it arrived, but the sender's wait runs out) or "slow" (wait, then pass). When
    the script is used up it passes (or answers 200 without an upstream)."""

    def __init__(self, script: list[Any] | None = None, upstream: str = "", hold: float = 2.5) -> None:
        self.script, self.upstream, self.hold = list(script or []), upstream, hold
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, dict(self.headers), body))
                step = receiver.script.pop(0) if receiver.script else "pass"
                if isinstance(step, int):
                    return self._answer(step, b'{"error": "scripted failure"}')
                if step == "slow":
                    time.sleep(receiver.hold)
                status, answer = receiver.hand_on(self.headers, body)
                if step == "hang":
                    time.sleep(receiver.hold)
                with contextlib.suppress(OSError):  # the sender may have given up
                    self._answer(status, answer)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hand_on(self, headers: Any, body: bytes) -> tuple[int, bytes]:
        if not self.upstream:
            return 200, b'{"status": "ok"}'
        response = httpx.post(self.upstream, content=body, headers={
            "Content-Type": headers["Content-Type"], "Authorization": headers.get("Authorization", "")})
        return response.status_code, response.content

    def identifiers(self) -> list[str]:
        return [parse_cap(body)["identifier"] for _, _, body in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*args: Any, **kwargs: Any) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[MailSink, int]]:
    with smtp_server() as server:
        yield server


def target(to: County | Receiver | str, key: str, **more: Any) -> dict[str, Any]:
    url = to.intake if isinstance(to, County) else (to.url if isinstance(to, Receiver) else to)
    return {"id": "neighbour", "name": "邻县叫应平台", "url": url, "key": key, **more}


# -- what is forwarded ------------------------------------------------------------------------------


def test_a_red_alert_reaches_the_neighbour_once_as_the_same_warning(home, neighbour, post, clock) -> None:
    engine = home.engine([target(neighbour, neighbour.key("tiny"))])
    expires = (clock() + timedelta(hours=12)).isoformat()
    ours = post("QX-1", zones=["xikou-shanhong"], expires=expires, description="预计未来3小时降雨量100毫米以上。",
                instruction="请立即组织危险区人员转移。")
    settle_engine(engine)

    [theirs] = neighbour.warnings()
    [mine] = [w for w in home.warnings() if w.id == ours]
    assert (theirs.sender, theirs.identifier, theirs.msg_type, theirs.source_format) == ("tiny", ours, "alert", "cap")
    for name in ("hazard", "level", "areas", "zones", "headline", "description", "instruction", "sent", "expires",
                 "drill"):
        assert getattr(theirs, name) == getattr(mine, name), name
    assert theirs.zones == ["xikou-shanhong"] and theirs.drill is False
    assert (theirs.origin, theirs.via) == ("tiny", ["tiny"])  # our key's agency there; the sites it came through
    assert (mine.origin, mine.via) == ("qingxi-qx", [])

    clock.now += timedelta(minutes=5)
    settle_engine(engine)
    assert len(neighbour.warnings()) == 1
    [row] = home.forwards()
    assert (row.status, row.tries, row.kind, row.msg_type, row.last_code) == ("sent", 1, "forward", "alert", 202)
    [event] = home.events("forwarded")
    assert (event["target"], event["name"], event["code"], event["identifier"]) == ("neighbour", "邻县叫应平台", 202,
                                                                                   ours)
    assert home.health()["forwarding"] == "ok"


def test_yellow_warnings_and_drills_are_not_forwarded_unless_configured(home, neighbour, post, receivers,
                                                                          clock) -> None:
    drills = receivers()
    engine = home.engine([target(neighbour, neighbour.key("tiny")),
                          {"id": "exercises", "url": drills.url, "key": "k", "drills": True, "levels": ["red"]}])
    post("QX-Y", level="yellow")
    exercise = post("QX-D", drill=True)
    settle_engine(engine)

    assert neighbour.warnings() == []  # neither the yellow one nor the drill
    [drill] = [parse_cap(body) for _, _, body in drills.requests]
    assert (drill["identifier"], drill["drill"], drill["level"]) == (exercise, True, "red")
    assert all(w.forward_checked_at is not None for w in home.warnings())  # decided, once


def test_an_update_and_a_cancel_follow_with_references_and_a_hand_cancel_too(home, neighbour, post, auth,
                                                                              clock) -> None:
    engine = home.engine([target(neighbour, neighbour.key("tiny"))])
    alert = post("QX-1")
    settle_engine(engine)
    clock.now += timedelta(minutes=2)
    update = post("QX-2", msg_type="update", references=["QX-1"], level="orange", headline="暴雨橙色预警信号（更新）")
    settle_engine(engine)
    clock.now += timedelta(minutes=2)
    cancel = post("QX-3", msg_type="cancel", references=["QX-1"])
    settle_engine(engine)

    first, second, third = neighbour.warnings()
    assert [(w.identifier, w.msg_type) for w in (first, second, third)] == [
        (alert, "alert"), (update, "update"), (cancel, "cancel")]
    assert second.root_id == first.id and third.root_id == first.id
    assert (second.level, second.headline) == ("orange", "暴雨橙色预警信号（更新）")
    assert {w.status for w in (first, second, third)} == {"cancelled"}
    rows = {r.identifier: r for r in home.forwards()}
    assert f"<references>tiny,{alert},2026-07-16T11:12:00+08:00</references>" in rows[update].body
    assert f"tiny,{alert}," in rows[cancel].body and f"tiny,{update}," in rows[cancel].body

    # A duty officer (here: the issuing agency) cancels a forwarded event by hand: a CAP Cancel follows.
    other = post("QX-9")
    settle_engine(engine)
    response = httpx.post(f"{home.served.base}/api/v1/warnings/{other}/cancel", headers=auth)
    assert response.status_code == 200, response.text
    settle_engine(engine)
    by_hand = [w for w in neighbour.warnings() if w.identifier == f"{other}-cancel"]
    assert len(by_hand) == 1 and by_hand[0].msg_type == "cancel"
    assert {w.status for w in neighbour.warnings() if w.identifier.startswith(other)} == {"cancelled"}
    clock.now += timedelta(minutes=1)
    settle_engine(engine)
    assert len(neighbour.warnings()) == 5  # nothing twice


# -- when the receiver is not well ----------------------------------------------------------------


def test_a_failing_target_is_retried_with_backoff_until_it_takes_it_once(home, neighbour, post, receivers,
                                                                          clock) -> None:
    # then passes; the answer of that try must come within the timeout on a loaded CI machine too (1 s did not)
    flaky = receivers([500, "hang"], upstream=neighbour.intake, hold=5.0)
    engine = home.engine([target(flaky, neighbour.key("tiny"), timeout="3s")])
    start = clock()
    ours = post("QX-1")
    settle_engine(engine)  # 500
    assert home.health()["forwarding"] == "ok"  # not loud yet
    clock.now = start + timedelta(seconds=29)
    settle_engine(engine)
    assert len(flaky.requests) == 1  # the first retry waits 30 s
    clock.now = start + timedelta(seconds=30)
    settle_engine(engine)  # it arrives, but the answer is lost (no answer within 3 s)
    assert len(flaky.requests) == 2 and len(neighbour.warnings()) == 1

    clock.now = start + timedelta(seconds=QUEUE_STALE_S + 1)
    settle_engine(engine)  # the next try is 60 s after the second
    said = home.health()["forwarding"]
    assert said.startswith("forwarding to 邻县叫应平台 (neighbour) failing for 61 s") and "no answer within 3 s" in said
    with transaction(home.url) as session:
        [problem] = [p for p in engine_problems(session, clock()) if p.check == "forwarding"]
    assert "转发至邻县叫应平台（neighbour）已失败 61 秒" in problem.zh

    clock.now = start + timedelta(seconds=90)
    settle_engine(engine)  # passes: the neighbour already has it and says so (200): sent
    assert flaky.identifiers() == [ours, ours, ours]  # the same message every try: the receiver deduplicates
    assert len(neighbour.warnings()) == 1
    [row] = home.forwards()
    assert (row.status, row.tries, row.last_code, row.failing_since) == ("sent", 3, 200, None)
    failed = home.events("forward_failed")
    assert [(e["tries"], e["code"]) for e in failed] == [(1, 500), (2, None)]
    assert [e["tries"] for e in home.events("forwarded")] == [3]
    assert home.health()["forwarding"] == "ok"


def test_a_target_refusing_our_key_is_a_visible_failure_and_is_not_retried(home, neighbour, post, clock) -> None:
    good = neighbour.key("tiny")
    engine = home.engine([target(neighbour, "jy_00000000_not-their-key")])
    post("QX-1")
    settle_engine(engine)

    [row] = home.forwards()
    assert (row.status, row.last_code, row.tries) == ("failed", 401, 1)
    [refused] = home.events("forward_refused")
    assert refused["key"] is True and refused["code"] == 401
    said = home.health()["forwarding"]
    assert said.startswith("邻县叫应平台 (neighbour) refused our key (HTTP 401") and "forwarding retry" in said
    ready = httpx.get(f"{home.served.base}/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["forwarding"] == said
    with transaction(home.url) as session:
        [problem] = [p for p in engine_problems(session, clock()) if p.check == "forwarding"]
    assert problem.zh.startswith("邻县叫应平台（neighbour）拒绝了我方密钥（HTTP 401")

    clock.now += timedelta(hours=1)
    settle_engine(engine)
    assert home.forwards()[0].tries == 1 and neighbour.warnings() == []  # never retried by itself

    home.forwarding([target(neighbour, good)])  # the key fixed in the file …
    with transaction(home.url) as session:
        assert forwards.retry_failed(session, clock()) == 1  # … and `jiaoying forwarding retry`
    settle_engine(engine)
    assert len(neighbour.warnings()) == 1 and home.forwards()[0].status == "sent"
    assert home.health()["forwarding"] == "ok"


def test_the_scheduler_pass_does_not_wait_for_a_slow_receiver(home, neighbour, post, receivers) -> None:
    slow = receivers(["slow"], upstream=neighbour.intake, hold=3.0)
    engine = home.engine([target(slow, neighbour.key("tiny"), timeout="6s")], inline=False)
    post("QX-1")
    began = time.monotonic()
    engine.tick()  # applies the warning, decides the forward and hands it to the forwarder thread
    engine.tick()
    assert time.monotonic() - began < 2.5  # neither pass waited for the receiver's 3 s
    wait(lambda: [r.status for r in home.forwards()] == ["sent"], "the forward to be sent")
    assert len(neighbour.warnings()) == 1


def test_a_queued_forward_survives_a_new_engine(home, neighbour, post, receivers, clock) -> None:
    flaky = receivers([503], upstream=neighbour.intake)
    key = neighbour.key("tiny")
    first = home.engine([target(flaky, key)])
    post("QX-1")
    settle_engine(first)
    first.close()
    home.engines.remove(first)
    assert [r.status for r in home.forwards()] == ["queued"]

    clock.now += timedelta(seconds=30)
    settle_engine(home.engine([target(flaky, key)]))  # a new engine (a restart) finds it and sends it
    assert [r.status for r in home.forwards()] == ["sent"] and len(neighbour.warnings()) == 1

    # A scheduler that claimed a forward and died before the answer: the next takes it when the lease ends.
    post("QX-2")
    config = home.engines[-1]._forwarding.current()[0]
    with transaction(home.url) as session:
        forwards.decide(session, config, clock())
    with transaction(home.url) as session:
        assert len(forwards.claim(session, clock())) == 1
    again = home.engine([target(flaky, key)])
    settle_engine(again)
    assert len(neighbour.warnings()) == 1  # leased to the dead one
    clock.now += forwards.LEASE
    settle_engine(again)
    assert len(neighbour.warnings()) == 2 and [r.status for r in home.forwards()] == ["sent", "sent"]


def test_an_unusable_forwarding_file_is_loud_and_forgets_nothing(home, neighbour, post, clock) -> None:
    engine = home.engine([target(neighbour, neighbour.key("tiny"))])
    good = Path(engine.settings.forwarding_file).read_text(encoding="utf-8")
    Path(engine.settings.forwarding_file).write_text("targets:\n  - id: neighbour\n    levels: [crimson]\n",
                                                     encoding="utf-8")
    engine.close()
    home.engines.remove(engine)
    engine = home.engine(None, forwarding_file=str(home.tmp / "forwarding-tiny.yaml"))
    ours = post("QX-1")
    settle_engine(engine)
    said = home.health()["forwarding"]
    assert said.startswith("the forwarding file cannot be used:") and "forwarding-tiny.yaml:3: target neighbour: " \
                                                                       "unknown level 'crimson'" in said
    assert [w.forward_checked_at for w in home.warnings()] == [None]  # waiting, not dropped
    Path(engine.settings.forwarding_file).write_text(good, encoding="utf-8")
    clock.now += timedelta(seconds=1)
    settle_engine(engine)
    assert [w.identifier for w in neighbour.warnings()] == [ours]
    assert home.health()["forwarding"] == "ok"


# -- loops ---------------------------------------------------------------------------------------------


def test_a_warning_from_the_neighbour_is_never_forwarded_back_to_it(home, neighbour, post) -> None:
    ours = home.engine([target(neighbour, neighbour.key("tiny"), agency="tiny-b")])
    theirs = neighbour.engine([{"id": "home", "url": home.intake, "key": home.key("tiny-b"), "agency": "tiny"}])
    post("QX-1")
    for _ in range(2):
        settle_engine(ours)
        settle_engine(theirs)
    [there] = neighbour.warnings()
    assert there.origin == "tiny"  # their key for us
    assert neighbour.forwards() == []  # not sent back: it came from the agency of that target
    assert len(home.warnings()) == 1


def test_a_warning_that_passed_through_us_is_accepted_but_not_forwarded_again(home, neighbour, post) -> None:
    """No agency configured on either side: the via chain stops it — it bounces at most once."""
    ours = home.engine([target(neighbour, neighbour.key("tiny"))])
    theirs = neighbour.engine([{"id": "home", "url": home.intake, "key": home.key("tiny-b")}])
    first = post("QX-1")
    for _ in range(3):
        settle_engine(ours)
        settle_engine(theirs)
    assert len(neighbour.warnings()) == 1
    [bounced] = [w for w in home.warnings() if w.id != first]  # received at the same (test) time
    assert (bounced.sender, bounced.origin, bounced.via) == ("tiny-b", "tiny-b", ["tiny", "tiny-b"])
    assert bounced.forward_checked_at is not None  # decided: accepted (it is a real warning) …
    assert [r.warning_id for r in home.forwards()] == [first]  # … and never forwarded


# -- the settled result -----------------------------------------------------------------------------


def test_the_settled_result_is_reported_once_by_webhook_cap_and_email(home, post, receivers, smtp, clock) -> None:
    sink, port = smtp
    city = receivers()
    engine = home.engine([{"id": "city", "name": "市预警平台", "report": [
        {"url": f"{city.url}/results", "key": "city-report-key"},
        {"url": f"{city.url}/cap", "format": "cap"},
        {"email": ["duty@city.example", "chief@city.example"]}]}],
        smtp_host="127.0.0.1", smtp_port=port, smtp_from="jiaoying@tiny.example", smtp_starttls=False)
    start = clock()
    record = post("QX-1")
    settle_engine(engine)
    with transaction(home.url) as session:
        assert sorted(session.scalars(select(CalloutRow.person_id))) == ["sun", "zheng", "zhou"]
    clock.now = start + timedelta(minutes=1)
    for person in ("sun", "zhou"):
        reply(home, person, clock())
    for minutes in (4, 7, 11):
        clock.now = start + timedelta(minutes=minutes)
        settle_engine(engine)
        assert city.requests == [] and sink.messages == []  # 郑防汛员 is still being called
    clock.now = start + timedelta(minutes=16)
    settle_engine(engine)  # the last step passed: zheng is unreached, everyone is settled

    posted = {path: (headers, body) for path, headers, body in city.requests}
    assert sorted(posted) == ["/cap", "/results"]
    headers, body = posted["/results"]
    assert headers["Authorization"] == "Bearer city-report-key" and headers["Content-Type"] == "application/json"
    result = json.loads(body)
    assert result["record"] == record and result["warning"]["identifier"] == "QX-1"
    assert result["counts"] == {"called": 3, "acknowledged": 2, "within_3_min": 2, "within_5_min": 2,
                                "within_30_min": 2, "unreached": 1, "cancelled": 0, "expired": 0}
    assert result["first_acknowledged_at"] == result["last_acknowledged_at"] == (start + timedelta(minutes=1)
                                                                                ).isoformat()
    assert result["unreached"] == [{"id": "zheng", "name": "郑防汛员", "roles": ["村防汛责任人"], "town": "青溪镇",
                                    "area": "石桥村", "unit": "石桥村民委员会"}]
    update = parse_cap(posted["/cap"][1])
    assert (update["msg_type"], update["references"], update["identifier"]) == ("update", [record], f"{record}-report")
    assert b"<valueName>jiaoying_unreached</valueName>" in posted["/cap"][1] and "郑防汛员" in update["description"]

    [mail] = sink.messages
    assert sorted(mail.rcpt_tos) == ["chief@city.example", "duty@city.example"]
    message = message_from_bytes(mail.content, policy=policy.default)
    text = message.get_content()
    assert "叫应结果" in message["Subject"] and "Call-out result" in message["Subject"]
    assert text.index("未叫醒名单") < text.index("Unreached (arrange a visit or a call)")  # Chinese first
    assert "郑防汛员（村防汛责任人；青溪镇 石桥村；石桥村民委员会）" in text
    assert [(e["kind"], e["unreached"]) for e in home.events("report_sent")] == [
        ("report", 1), ("report", 1), ("report_email", 1)]

    # 郑防汛员 answers after all: nothing is reported a second time.
    reply(home, "zheng", clock())
    clock.now += timedelta(minutes=10)
    settle_engine(engine)
    assert len(city.requests) == 2 and len(sink.messages) == 1


def reply(county: County, person: str, now: datetime) -> None:
    with transaction(county.url) as session:
        phone = current_site(session).people[person].phone
        ack.acknowledge_reply(session, now, phone=phone or "", via=AckVia.SMS, body="收到", code=None)
