"""An end-to-end harness in the manner of GoAlert's smoke tests.

Each test gets a fresh database with a small site, fake providers that record every outgoing
message, and a clock the test moves forward. The test declares each message it expects
(``expect("zhou", "sms", "alert")``) and answers some of them; at the end, **any message it did
not expect fails the test** — the one rule that catches double sends and stray escalations.

The same Harness drives both runtimes: ``drive`` runs the engine's passes in-process (embedded)
or waits for the Celery workers and scheduler to go quiet (production).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow
from dispatcher.domain.callouts import OPEN_STATES, AckVia
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack
from dispatcher.services.callouts import pending_warnings
from dispatcher.services.site import current_site


def settle_engine(engine: Engine, rounds: int = 100) -> None:
    """Run the engine's passes until nothing more is due now: the tests' stand-in for the runtime."""
    for _ in range(rounds):
        report = engine.tick()
        if not engine.drain() and not report.queued_work:
            return
    raise AssertionError("the engine did not settle")


@dataclass(frozen=True)
class Sent:
    key: str
    channel: str
    to: str
    purpose: str
    text: str


class UnexpectedMessages(AssertionError):
    pass


class Harness:
    def __init__(self, url: str, client: TestClient, headers: dict[str, str], now: Callable[[], datetime],
                 move: Callable[[timedelta], None], sent: Callable[[], list[Sent]], drive: Callable[[], None]) -> None:
        self.url, self.client, self.headers = url, client, headers
        self._now, self._move, self._sent, self._drive = now, move, sent, drive
        self._seen = 0
        self.unclaimed: list[Sent] = []
        self._serial = 0

    # -- time and the engine ------------------------------------------------------------------

    def now(self) -> datetime:
        return self._now()

    def settle(self) -> None:
        """Let the engine do everything that is due now."""
        self._drive()
        fresh = self._sent()
        self.unclaimed.extend(fresh[self._seen:])
        self._seen = len(fresh)

    def advance(self, **delta: float) -> None:
        self.settle()
        self._move(timedelta(**delta))
        self.settle()

    # -- warnings ---------------------------------------------------------------------------------

    def post(self, **fields: Any) -> str:
        self._serial += 1
        body = {
            "sender": "qingxi-qx", "identifier": f"T-{self._serial}", "msg_type": "alert",
            "hazard": "rainstorm", "level": "red", "areas": ["330599100"],
            "headline": "青溪县气象台发布暴雨红色预警信号", "sent": self.now().isoformat(),
        }
        body.update(fields)
        response = self.client.post("/api/v1/warnings", json=body, headers=self.headers)
        assert response.status_code in (200, 202), response.text
        return response.json()["id"]

    # -- expectations -----------------------------------------------------------------------------

    def expect(self, to: str, channel: str, purpose: str) -> Sent:
        self.settle()
        for i, message in enumerate(self.unclaimed):
            if (message.to, message.channel, message.purpose) == (to, channel, purpose):
                return self.unclaimed.pop(i)
        raise AssertionError(f"expected {channel} {purpose} to {to}; unclaimed: {self._describe()}; "
                             f"attempts: {self._attempts()}")

    def expect_nothing_more(self) -> None:
        self.settle()
        if self.unclaimed:
            raise UnexpectedMessages(f"messages the test did not expect: {self._describe()}")

    def _attempts(self) -> str:
        with transaction(self.url) as session:
            rows = session.execute(select(AttemptRow.key, AttemptRow.status, AttemptRow.tries, AttemptRow.error)
                                   .order_by(AttemptRow.id)).all()
        return "; ".join(f"{k} {st} x{n} {err or ''}".strip() for k, st, n, err in rows) or "none"

    def _describe(self) -> str:
        return ", ".join(f"{m.channel} {m.purpose} to {m.to}" for m in self.unclaimed) or "none"

    # -- answers --------------------------------------------------------------------------------

    def reply_sms(self, person: str, text: str) -> ack.AckResult:
        with transaction(self.url) as session:
            phone = current_site(session).people[person].phone
            confirms, code = ack.parse_reply(text)
            assert confirms, f"{text!r} is not a confirmation"
            return ack.acknowledge_reply(session, self.now(), phone=phone or "", via=AckVia.SMS, body=text, code=code)

    def reply_from(self, phone: str, text: str) -> ack.AckResult:
        with transaction(self.url) as session:
            _, code = ack.parse_reply(text)
            return ack.acknowledge_reply(session, self.now(), phone=phone, via=AckVia.SMS, body=text, code=code)

    def press_1(self, person: str, callout_of: str) -> ack.AckResult:
        with transaction(self.url) as session:
            callout = self.callout(callout_of)
            return ack.acknowledge_callout(session, self.now(), callout["id"], via=AckVia.VOICE, by=person)

    # -- state ------------------------------------------------------------------------------------

    def callout(self, person: str) -> dict[str, Any]:
        with transaction(self.url) as session:
            row = session.scalars(select(CalloutRow).where(CalloutRow.person_id == person)
                                  .order_by(CalloutRow.id.desc())).first()
            assert row is not None, f"no call-out for {person}"
            return {"id": row.id, "state": row.state, "via": row.ack_via, "by": row.acknowledged_by,
                    "level": row.level, "reason": row.closed_reason}

    def states(self) -> dict[str, str]:
        with transaction(self.url) as session:
            rows = session.execute(select(CalloutRow.person_id, CalloutRow.state, CalloutRow.id)
                                   .order_by(CalloutRow.id)).all()
        return {pid: state for pid, state, _ in rows}


def engine_quiet(url: str, now: datetime) -> bool:
    """No warning waiting to be applied, no step due, nothing queued (and due) or being sent.

    The three counts must come from one snapshot: under PostgreSQL's default READ COMMITTED each
    statement sees a fresh one, and a warning applied between the counts (no call-outs yet, then
    no longer pending) would read as a quiet engine."""
    with transaction(url) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        busy = session.scalar(select(func.count()).where(
            AttemptRow.status.in_(("queued", "sending")),
            AttemptRow.not_before.is_(None) | (AttemptRow.not_before <= now))) or 0  # a retry waiting is quiet
        due = session.scalar(select(func.count()).where(CalloutRow.state.in_(OPEN_STATES),
                                                        CalloutRow.next_due <= now)) or 0
        return not busy and not due and not pending_warnings(session, 1)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
