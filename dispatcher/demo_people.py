"""The demo's simulated officials: they answer like people do.

Each official gets a temperament from a stable hash of their id: most reply to the SMS within
seconds to a few minutes, some only wake up for the voice call and press 1, some never answer but
their deputy does, and a few never answer at all — so escalations and 未叫醒 cases happen.

Someone with several numbers may be away from the first: a call to it rings out, the simulated
provider reports the no-answer, and the same step calls their next number.

A 六问 spot-check's people answer its SMS as the demo scripts them (``spotcheck_replies``): their
replies in order, the next one sent when the spot-check asks again (``spotcheck_again``). Someone
without a mobile answers on the call instead, keying the scripted answers (``spotcheck_keys``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .channels.simulator import SimOutbox, SimSent
from .db.session import transaction
from .domain.callouts import AckVia, Purpose
from .services import ack, receipts
from .services.site import current_site

log = logging.getLogger("jiaoying.demo")


def temperament(person_id: str) -> tuple[str, float]:
    """(kind, delay in demo seconds) — stable for a person across runs."""
    digest = hashlib.sha256(person_id.encode()).digest()
    roll, delay = digest[0] / 255, 10 + digest[1] / 255 * 170
    if roll < 0.66:
        return "sms", delay
    if roll < 0.84:
        return "voice", 10 + delay / 6
    if roll < 0.93:
        return "deputy", 30 + delay / 3
    return "never", 0.0


SPOTCHECK_DELAY = timedelta(seconds=5)  # how long a spot-checked person takes to reply with their answers
RING_OUT = timedelta(seconds=30)  # how long a call nobody picks up rings before its no-answer is reported


def away_from_first_number(person_id: str) -> bool:
    """Stable for a person: about half of those with several numbers are not at their first one."""
    return hashlib.sha256(person_id.encode()).digest()[2] < 128


@dataclass(order=True)
class _Answer:
    due: datetime
    action: Callable[[], object] = field(compare=False)


class DemoPeople:
    def __init__(self, url: str, outbox: SimOutbox, clock: Callable[[], datetime]) -> None:
        self.url, self.clock = url, clock
        self._answers: list[_Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._outbox = outbox
        self._unsubscribe = outbox.subscribe(self._on_message)
        self._thread = threading.Thread(target=self._run, name="demo-people", daemon=True)
        # 六问 spot-checks: each person's SMS replies, in order; nobody scripted does not answer
        self.spotcheck_replies: dict[str, list[str]] = {}
        self.spotcheck_keys: dict[str, str] = {}  # on the call, by those with no mobile: "112111"
        self._sids = 0

    def start(self) -> None:
        """Start answering (the site is loaded by now: who is away from their first number is read from it)."""
        with transaction(self.url, write=False) as session:
            site = current_site(session)
        for person in site.people.values():
            numbers = person.voice_numbers
            if len(numbers) < 2:
                continue
            if temperament(person.id)[0] == "never":
                self._outbox.leave_unanswered(*numbers)  # nowhere near any of their phones
            elif away_from_first_number(person.id):
                self._outbox.leave_unanswered(numbers[0])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._unsubscribe()
        self._thread.join(timeout=5)

    def _on_message(self, sent: SimSent) -> None:
        m = sent.message
        person = m.to.person_id
        kind, delay = temperament(person)
        due = self.clock() + timedelta(seconds=delay)
        if not sent.answered:  # it rings out: the provider reports the no-answer, the next number is called
            self._later(self.clock() + RING_OUT, lambda: self._ring_out(sent))
        elif m.purpose is Purpose.ALERT and m.channel.value == "sms" and kind == "sms":
            self._later(due, lambda: self._reply(m.to.phone or "", "收到"))
        elif m.purpose is Purpose.REMINDER and m.channel.value == "voice" and kind == "voice":
            self._later(due, lambda: self._press(m.key, person))
        elif m.purpose is Purpose.ROLLCALL and m.channel.value == kind == "sms":  # at the post, answering
            self._later(due, lambda: self._reply(m.to.phone or "", "1"))
        elif m.purpose is Purpose.ROLLCALL and m.channel.value == kind == "voice":
            self._later(due, lambda: self._press(m.key, person))
        elif m.purpose in (Purpose.SPOTCHECK, Purpose.SPOTCHECK_AGAIN) and m.channel.value == "sms":
            with self._lock:
                script = self.spotcheck_replies.get(person) or []
                text = script.pop(0) if script else None
            if text is not None:  # a few seconds to read the questions: answered within the story, however late it is
                self._later(self.clock() + SPOTCHECK_DELAY, lambda: self._answer(m.to.phone or "", text))
        elif m.purpose is Purpose.SPOTCHECK and m.channel.value == "voice":
            with self._lock:
                keys = self.spotcheck_keys.pop(person, None)
            if keys is not None:  # the questions read out, one key each
                self._later(self.clock() + SPOTCHECK_DELAY, lambda: self._key_in(m.key, keys, sent.provider_id))
        elif m.purpose is Purpose.TO_DEPUTY and m.channel.value == "sms" and self._official_kind(m.key) == "deputy":
            # this official never answers, but their deputy does, for them
            self._later(self.clock() + timedelta(seconds=20 + delay / 4),
                        lambda: self._deputy(m.to.phone or "", m.ack_code))

    def _official_kind(self, attempt_key: str) -> str:
        from .db.tables import CalloutRow

        with transaction(self.url) as session:
            callout = session.get(CalloutRow, int(attempt_key.split(":", 1)[0]))
        return temperament(callout.person_id)[0] if callout else "never"

    def _later(self, due: datetime, action: Callable[[], object]) -> None:
        with self._lock:
            self._answers.append(_Answer(due, action))

    def _reply(self, phone: str, text: str) -> None:
        with transaction(self.url) as session:
            ack.acknowledge_reply(session, self.clock(), phone=phone, via=AckVia.SMS, body=text)

    def _answer(self, phone: str, text: str) -> None:
        """An SMS reply as the provider's webhook hands it over (a spot-check's answers)."""
        from .services.replies import IncomingReply, take_replies

        with self._lock:
            self._sids += 1
            sid = f"DEMO{self._sids:06d}"
        with transaction(self.url) as session:
            take_replies(session, self.clock(), [IncomingReply(phone, text, sid, provider="simulator")])

    def _key_in(self, attempt_key: str, keys: str, call_id: str) -> None:
        """The keys of a spot-check call, in order, as an IVR provider reports them."""
        from sqlalchemy import select

        from .db.tables import AttemptRow
        from .services import spotchecks

        with transaction(self.url) as session:
            attempt = session.scalars(select(AttemptRow).where(AttemptRow.key == attempt_key)).one()
            spotchecks.call_keys(session, self.clock(), attempt, keys, call_id, provider="simulator")

    def _deputy(self, phone: str, code: str) -> None:
        with transaction(self.url) as session:
            ack.acknowledge_reply(session, self.clock(), phone=phone, via=AckVia.SMS, body=f"收到 {code}", code=code)

    def _ring_out(self, sent: SimSent) -> None:
        with transaction(self.url) as session:
            receipts.record_status(session, self.clock(), sent.provider_id, "no-answer",
                                   attempt_ref=sent.message.key, provider="simulator")

    def _press(self, attempt_key: str, person: str) -> None:
        callout_id = int(attempt_key.split(":", 1)[0])
        with transaction(self.url) as session:
            ack.acknowledge_callout(session, self.clock(), callout_id, via=AckVia.VOICE, by=person)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            with self._lock:
                due = [a for a in self._answers if a.due <= now]
                self._answers = [a for a in self._answers if a.due > now]
            for answer in sorted(due):
                try:
                    answer.action()
                except Exception:  # a simulated person failing must not stop the demo
                    log.exception("a simulated answer failed")
            time.sleep(0.05)
