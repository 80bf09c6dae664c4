"""六问 spot-checks (抽查): started by a duty officer (the board, ``jiaoying spotcheck start``), during a
warning or between warnings; run by the engine like a warning's call-outs.

A spot-check is a record of kind ``spotcheck`` in the warnings table, like a duty roll-call: its
call-outs, attempts, timers and hash-chained record are the warning's own machinery. Whom it calls is
drawn when it is started (``domain.spotcheck.draw``, with a seed kept on the record) and frozen on
its row with the questionnaire, so a later edit of checks.yaml changes no spot-check under way.

**Answers.** Each person answers each question 是 or 否: key by key on a Twilio call (one
``<Gather>`` a question), as the keys of an Aliyun IVR call in order, or in one SMS reply ("1 1 2 1
1 1", "是是否是是是"). Each answer is a row of ``answers`` (the first answer to a question stands) and an
event on the record. The call-out is answered (acknowledged) once every question has an answer; a
plain "1" or "收到" does not close it. A reply that is not an answer ("好的", five marks for six
questions) is recorded, and the person is asked once more by SMS (the attempt's key makes it once);
on a call, a key that is not 1 or 2 (or none) asks that question once more, then moves on.

**Follow-up.** Anyone who answered 否 to a question, or left one unanswered when the spot-check's
``answer_within`` passed, is on its follow-up list (the board, the record, the workbook, reports).
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.codec import spotcheck_from_dict, spotcheck_to_dict
from ..db.queue import attempt_values, insert_new_attempts
from ..db.record_repo import append_event
from ..db.tables import AnswerRow, AttemptRow, CalloutRow, WarningRow
from ..domain.callouts import ACKABLE_STATES, SPOTCHECK_HAZARD, AckVia, CalloutState, Purpose
from ..domain.channels import Channel
from ..domain.checks import CheckKind, SpotCheck
from ..domain.hazards import Level
from ..domain.record import EventKind
from ..domain.rules import Resolution
from ..domain.site import Site
from ..domain.spotcheck import ANSWER_ZH, MAX_SIZE, NO, YES, Sample, draw, key_answer, plan_spotcheck, town_of
from ..rendering import render_question
from .ack import AckResult, acknowledge_callout, first_arrival
from .intake import insert_record
from .site import current_site

SENDER = "jiaoying"  # the sender of the county's own routine checks (as a roll-call's)
LEVEL = Level.BLUE  # a spot-check's messages queue behind every warning's
SEED_LIMIT = 1_000_000  # a drawn seed has at most six digits: easy to read out and type again


class UnknownSpotCheck(LookupError):
    pass


class NobodyToDraw(ValueError):
    """Nobody can be drawn: no one holds the roles, or everyone was checked lately."""


@dataclass(frozen=True)
class Started:
    id: str
    sample: Sample
    seed: int
    spotcheck: SpotCheck


def find(site: Site, spotcheck_id: str | None) -> SpotCheck:
    spotcheck = next((s for s in site.spotchecks if spotcheck_id in (None, s.id)), None)
    if spotcheck is None:
        known = ", ".join(s.id for s in site.spotchecks) or "none in checks.yaml"
        raise UnknownSpotCheck(f"no spot-check {spotcheck_id!r} (spot-checks: {known})" if spotcheck_id
                               else "the site has no spot-check: add one to checks.yaml (spotchecks:)")
    return spotcheck


def recently_checked(session: Session, since: datetime) -> set[str]:
    """Who was drawn in a spot-check started since ``since`` (whatever they answered; also one the
    engine has not called yet)."""
    found: set[str] = set()
    for raw in session.scalars(select(WarningRow.raw).where(WarningRow.kind == CheckKind.SPOTCHECK.value,
                                                            WarningRow.sent >= since)):
        found.update(json.loads(raw).get("drawn", ()))
    return found


def preview(session: Session, spotcheck_id: str | None, now: datetime, size: int | None = None,
            seed: int | None = None) -> tuple[SpotCheck, Sample, int]:
    """Whom a spot-check would draw now (nothing is written)."""
    site = current_site(session)
    spotcheck = find(site, spotcheck_id)
    size, seed = _size(spotcheck, size), _seed(seed)
    skip = recently_checked(session, now - timedelta(days=spotcheck.skip_days)) if spotcheck.skip_days else set()
    return spotcheck, draw(site, spotcheck, size, seed, skip), seed


def start(session: Session, spotcheck_id: str | None, now: datetime, actor: str, *, size: int | None = None,
          seed: int | None = None, during: str | None = None) -> Started:
    """Draw the sample and start the spot-check (the engine calls them on its next pass). ``during``:
    the warning it checks about (its record id), shown with it."""
    site = current_site(session)
    spotcheck, sample, seed = preview(session, spotcheck_id, now, size, seed)
    if during is not None:
        warning = session.get(WarningRow, during)
        if warning is None or warning.kind != "warning":
            raise UnknownSpotCheck(f"no warning {during!r} to check about")
        during = warning.root_id or warning.id
    if not sample.drawn:
        raise NobodyToDraw(
            f"nobody can be drawn for {spotcheck.id}: {len(sample.skipped)} of the people holding its roles "
            f"were checked in the last {spotcheck.skip_days} days, and no one else holds them" if sample.skipped
            else f"nobody can be drawn for {spotcheck.id}: no one holds its roles ({', '.join(spotcheck.roles)}) "
                 "with a number or address on its channels")
    local = now.astimezone(site.tz)
    headline = f"{spotcheck.name}（{local.month}月{local.day}日{local:%H:%M}，抽{len(sample.drawn)}人）"
    frozen = {"spotcheck": spotcheck_to_dict(spotcheck), "size": sample.size, "seed": seed,
              "drawn": list(sample.drawn), "available": sample.available, "skipped": list(sample.skipped),
              "during": during}
    identifier = f"spotcheck:{spotcheck.id}:{now:%Y%m%dT%H%M%S}:{secrets.token_hex(3)}"
    row, _ = insert_record(session, now, lambda record_id: WarningRow(
        id=record_id, sender=SENDER, identifier=identifier, msg_type="alert", references=[],
        kind=CheckKind.SPOTCHECK.value, hazard=SPOTCHECK_HAZARD, level=LEVEL.value,
        areas=sorted({town_of(site.people[p].area) for p in sample.drawn}), zones=[], headline=headline,
        sent=now, expires=None, drill=False, instruction=f"请在{_minutes(spotcheck)}分钟内逐项作答",
        status="active", received_at=now, source_format="check", raw=json.dumps(frozen, ensure_ascii=False)))
    append_event(session, row.id, EventKind.SPOTCHECK_STARTED, actor, now, {
        "warning": row.id, "spotcheck": spotcheck.id, "name": spotcheck.name,
        "questions": list(spotcheck.questions), "size": sample.size, "seed": seed, "drawn": list(sample.drawn),
        "available": sample.available, "skipped": list(sample.skipped), "short": sample.short,
        "answer_within": spotcheck.answer_within.total_seconds(),
        "channels": [c.value for c in spotcheck.channels], "during": during, "headline": headline})
    return Started(row.id, sample, seed, spotcheck)


def _size(spotcheck: SpotCheck, size: int | None) -> int:
    size = spotcheck.size if size is None else size
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"the sample size must be from 1 to {MAX_SIZE}, not {size}")
    return size


def _seed(seed: int | None) -> int:
    if seed is None:
        return secrets.randbelow(SEED_LIMIT)
    if not 0 <= seed < 2 ** 63:
        raise ValueError(f"the seed must be a whole number from 0, not {seed}")
    return seed


def _minutes(spotcheck: SpotCheck) -> str:
    return f"{spotcheck.answer_within.total_seconds() / 60:g}"


@dataclass(frozen=True)
class Frozen:
    """What a spot-check's record keeps of it when started."""

    spotcheck: SpotCheck
    size: int
    seed: int
    drawn: tuple[str, ...]
    available: int
    skipped: tuple[str, ...]
    during: str | None

    @property
    def questions(self) -> tuple[str, ...]:
        return self.spotcheck.questions


def frozen(row: WarningRow) -> Frozen:
    data = json.loads(row.raw)
    return Frozen(spotcheck_from_dict(data["spotcheck"]), int(data["size"]), int(data["seed"]), tuple(data["drawn"]),
                  int(data["available"]), tuple(data["skipped"]), data.get("during"))


def resolution(session: Session, row: WarningRow, start: datetime) -> tuple[Resolution, dict[str, Any]]:
    """Whom the spot-check calls: the people drawn when it was started."""
    kept = frozen(row)
    callouts = plan_spotcheck(current_site(session), kept.spotcheck, kept.drawn, start)
    return Resolution((f"spotcheck:{kept.spotcheck.id}",), callouts, (), None), {"drawn": len(kept.drawn)}


def questions_of(session: Session, record_id: str) -> tuple[str, ...]:
    row = session.get(WarningRow, record_id)
    return frozen(row).questions if row is not None and row.kind == CheckKind.SPOTCHECK.value else ()


# -- answers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taken:
    """What an answer did: the questions it answered (new), those still without one, and whether
    the call-out is now answered in full (acknowledged)."""

    new: tuple[int, ...]
    missing: tuple[int, ...]
    complete: bool
    result: AckResult | None = None


def answer(session: Session, now: datetime, callout_id: int, answers: dict[int, str], *, via: AckVia, by: str,
           detail: dict[str, Any]) -> Taken:
    """Record ``answers`` ({question index: yes|no}) of a spot-check call-out; the first answer to a
    question stands. Once every question is answered the call-out is acknowledged (by ``by``)."""
    callout = session.execute(select(CalloutRow).where(CalloutRow.id == callout_id).with_for_update()).scalar_one()
    questions = questions_of(session, callout.record_id)
    given = dict(session.execute(select(AnswerRow.question, AnswerRow.answer).where(
        AnswerRow.callout_id == callout_id)).all())
    new = {q: a for q, a in sorted(answers.items()) if 0 <= q < len(questions) and q not in given and a in (YES, NO)}
    for q, a in new.items():
        session.add(AnswerRow(record_id=callout.record_id, callout_id=callout_id, person_id=callout.person_id,
                              question=q, answer=a, via=via.value, at=now))
    session.flush()
    missing = tuple(q for q in range(len(questions)) if q not in given and q not in new)
    append_event(session, callout.record_id, EventKind.ANSWERED, by, now, {
        "callout": callout_id, "person": callout.person_id, "via": via.value,
        "answers": {str(q): a for q, a in new.items()}, "ignored": sorted(q for q in answers if q in given),
        "complete": not missing, **detail})
    result = None
    if not missing and CalloutState(callout.state) in ACKABLE_STATES:
        result = acknowledge_callout(session, now, callout_id, via=via, by=by)
    return Taken(tuple(new), missing, not missing, result)


def not_an_answer(session: Session, now: datetime, callout_id: int, *, via: AckVia, by: str,
                  detail: dict[str, Any], ask_again: bool = True) -> bool:
    """Record a reply or key that was not an answer; with ``ask_again``, ask the person once more by
    SMS (once per call-out, ever). True when they are asked again now."""
    callout = session.get(CalloutRow, callout_id)
    if callout is None:
        return False
    asked = ask_again and CalloutState(callout.state) in ACKABLE_STATES and _ask_again(session, now, callout)
    append_event(session, callout.record_id, EventKind.NOT_AN_ANSWER, by, now, {
        "callout": callout_id, "person": callout.person_id, "via": via.value, "asked_again": asked, **detail})
    return asked


def _ask_again(session: Session, now: datetime, callout: CalloutRow) -> bool:
    person = current_site(session).people.get(callout.person_id)
    if person is None or not person.reachable_by(Channel.SMS):
        return False
    key = f"{callout.id}:again:{Channel.SMS.value}:{callout.person_id}"
    if session.scalar(select(AttemptRow.id).where(AttemptRow.key == key)) is not None:
        return False  # asked again once already
    return bool(insert_new_attempts(session, [attempt_values(callout, key, 0, Purpose.SPOTCHECK_AGAIN.value,
                                                             Channel.SMS.value, callout.person_id, now)]))


# Voice providers whose call reports one key, not a key per question (Tencent's voicekey_callback): a
# spot-check call there cannot take the answers, so it reads the questions and asks for an SMS reply
# (its approved template says so: ``jiaoying carriers templates --provider tencent``), and the
# questions go by SMS when the call is handed over (``questions_by_sms``). A key pressed on it is
# recorded as not an answer.
ONE_KEY_PROVIDERS = frozenset({"tencent"})


def questions_by_sms(session: Session, now: datetime, callout_ids: Iterable[int]) -> list[str]:
    """The questions by SMS to the people of these spot-check call-outs still waiting for answers:
    the very attempt the spot-check's first step makes on SMS (its key), so sent once — and not at
    all where that step texted them already. The keys queued now."""
    rows = []
    site = current_site(session)
    for callout in session.scalars(select(CalloutRow).where(CalloutRow.id.in_(sorted(set(callout_ids))),
                                                            CalloutRow.hazard == SPOTCHECK_HAZARD)):
        person = site.people.get(callout.person_id)
        if person is None or not person.reachable_by(Channel.SMS) or CalloutState(callout.state) not in ACKABLE_STATES:
            continue
        rows.append(attempt_values(callout, f"{callout.id}:0:{Channel.SMS.value}:{callout.person_id}", 0,
                                   Purpose.SPOTCHECK.value, Channel.SMS.value, callout.person_id, now))
    return sorted(insert_new_attempts(session, rows)) if rows else []


def one_key(session: Session, now: datetime, attempt: AttemptRow, digits: str, call_id: str) -> bool:
    """A key reported on its own from a spot-check call of a ``ONE_KEY_PROVIDERS`` provider: not an
    answer (the call asked for an SMS reply); recorded, and the questions sent by SMS if they were
    not. True when they are sent now."""
    asked = bool(questions_by_sms(session, now, [attempt.callout_id]))
    callout = session.get(CalloutRow, attempt.callout_id)
    if callout is not None:
        append_event(session, callout.record_id, EventKind.NOT_AN_ANSWER, attempt.recipient_id, now, {
            "callout": callout.id, "person": callout.person_id, "via": AckVia.VOICE.value, "digits": digits,
            "call_sid": call_id, "answer_by": "sms", "asked_again": asked})
    return asked


def open_callouts(session: Session, people: Iterable[str]) -> dict[str, list[CalloutRow]]:
    """The spot-check call-outs still waiting for answers, by person (oldest first)."""
    people = sorted(set(people))
    if not people:
        return {}
    found: dict[str, list[CalloutRow]] = {}
    for row in session.scalars(select(CalloutRow).where(
            CalloutRow.hazard == SPOTCHECK_HAZARD, CalloutRow.person_id.in_(people),
            CalloutRow.state.in_([s.value for s in ACKABLE_STATES])).order_by(CalloutRow.id)):
        found.setdefault(row.person_id, []).append(row)
    return found


# -- on the call -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallTurn:
    """What the call says next: ask ``question`` (``again``: a second time), or, with ``question``
    None, thank and hang up."""

    question: int | None
    again: bool = False
    text: str = ""
    total: int = 0


def ask(session: Session, callout_id: int, question: int, again: bool = False) -> CallTurn:
    callout = session.get(CalloutRow, callout_id)
    questions = questions_of(session, callout.record_id) if callout else ()
    if not 0 <= question < len(questions):
        return CallTurn(None, total=len(questions))
    return CallTurn(question, again, render_question("zh", question + 1, questions[question], again), len(questions))


def next_question(session: Session, callout_id: int, question: int, again: bool) -> CallTurn:
    """What the call asks after question ``question`` was keyed (a replayed webhook gets the same)."""
    answered = session.scalar(select(AnswerRow.id).where(AnswerRow.callout_id == callout_id,
                                                         AnswerRow.question == question)) is not None
    if answered or again:
        return _next_unanswered(session, callout_id, question + 1)
    return ask(session, callout_id, question, again=True)


def call_key(session: Session, now: datetime, attempt: AttemptRow, question: int, again: bool, digits: str,
             call_sid: str) -> CallTurn:
    """A key pressed (or none: ``digits`` empty) on question ``question`` of a spot-check call: 1 是,
    2 否 answers it and asks the next one; anything else asks it once more, then moves on."""
    mark = key_answer(digits)
    detail = {"digits": digits, "question": question, "call_sid": call_sid}
    if mark is not None:
        answer(session, now, attempt.callout_id, {question: mark}, via=AckVia.VOICE, by=attempt.recipient_id,
               detail=detail)
    else:
        not_an_answer(session, now, attempt.callout_id, via=AckVia.VOICE, by=attempt.recipient_id, detail=detail,
                      ask_again=False)
        if not again:
            return ask(session, attempt.callout_id, question, again=True)
    return _next_unanswered(session, attempt.callout_id, question + 1)


def _next_unanswered(session: Session, callout_id: int, after: int) -> CallTurn:
    """The next question from ``after`` on without an answer (an SMS may have answered some)."""
    callout = session.get(CalloutRow, callout_id)
    total = len(questions_of(session, callout.record_id)) if callout else 0
    given = set(session.scalars(select(AnswerRow.question).where(AnswerRow.callout_id == callout_id)))
    for q in range(after, total):
        if q not in given:
            return ask(session, callout_id, q)
    return CallTurn(None, total=total)


def first_question(session: Session, callout_id: int) -> CallTurn:
    return _next_unanswered(session, callout_id, 0)


def call_keys(session: Session, now: datetime, attempt: AttemptRow, dtmf: str, call_id: str,
              provider: str) -> Taken | None:
    """The keys of a whole call in order (an IVR whose report carries every key pressed, as Aliyun's
    VoiceReport does): the first answers question 1, the next question 2 … (keys other than 1 and 2
    end the reading). Missing answers are asked once more by SMS. A report pushed again changes
    nothing. None: nothing was answered (or the report was seen before)."""
    ref = f"{provider}:keys:{call_id}"[:160] if call_id else None
    if first_arrival(session, now, AckVia.VOICE, attempt.recipient_id, dtmf or "", ref) is None:
        return None
    marks: dict[int, str] = {}
    for i, digit in enumerate((dtmf or "").strip()):
        mark = key_answer(digit)
        if mark is None:
            break
        marks[i] = mark
    detail = {"digits": dtmf, "call_sid": call_id}
    if not marks:
        not_an_answer(session, now, attempt.callout_id, via=AckVia.VOICE, by=attempt.recipient_id, detail=detail)
        return None
    taken = answer(session, now, attempt.callout_id, marks, via=AckVia.VOICE, by=attempt.recipient_id, detail=detail)
    if taken.missing:
        not_an_answer(session, now, attempt.callout_id, via=AckVia.VOICE, by=attempt.recipient_id,
                      detail=detail | {"missing": list(taken.missing)})
    return taken


# -- results -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonResult:
    """One person drawn: their answers (``None`` where none was given), and whether they need following up."""

    callout_id: int
    person_id: str
    name: str
    reason: str
    town: str
    state: str
    answers: tuple[str | None, ...]
    answered_at: datetime | None
    via: str | None
    not_answered_reply: int = 0  # replies or keys that were not answers

    @property
    def follow_up(self) -> bool:
        """A 否, or a question without an answer once nothing more is awaited."""
        return NO in self.answers or (None in self.answers and self.state not in ("pending", "notified"))

    @property
    def verdict(self) -> str:
        """ok (全部为是) | no (有否) | open (作答中) | missing (未答全)"""
        if NO in self.answers:
            return "no"
        if None not in self.answers:
            return "ok"
        return "open" if self.state in ("pending", "notified") else "missing"


VERDICT_ZH = {"ok": "全部为是", "no": "有“否”", "open": "作答中", "missing": "未答全"}


@dataclass(frozen=True)
class Result:
    id: str
    headline: str
    at: datetime
    frozen: Frozen
    started: bool
    people: tuple[PersonResult, ...] = field(default_factory=tuple)

    @property
    def questions(self) -> tuple[str, ...]:
        return self.frozen.questions

    def tally(self, question: int) -> dict[str, int]:
        marks = [p.answers[question] for p in self.people]
        return {YES: marks.count(YES), NO: marks.count(NO), "none": marks.count(None)}

    @property
    def follow_up(self) -> tuple[PersonResult, ...]:
        return tuple(p for p in self.people if p.follow_up)

    def count(self, verdict: str) -> int:
        return sum(p.verdict == verdict for p in self.people)


def result(session: Session, record_id: str) -> Result:
    found = results_of(session, [record_id])
    if not found:
        raise UnknownSpotCheck(f"no spot-check {record_id!r}")
    return found[0]


def results_of(session: Session, record_ids: list[str]) -> list[Result]:
    """The results of these spot-checks, in the order asked (ids that are no spot-check are left
    out): four queries for them all, however many (a history page, a workbook of 500, a period)."""
    if not record_ids:
        return []
    rows = {r.id: r for r in session.scalars(select(WarningRow).where(
        WarningRow.id.in_(record_ids), WarningRow.kind == CheckKind.SPOTCHECK.value))}
    if not rows:
        return []
    ids = list(rows)
    callouts: dict[str, list[Any]] = {}
    for c in session.execute(select(CalloutRow.record_id, CalloutRow.id, CalloutRow.person_id, CalloutRow.reason,
                                    CalloutRow.state, CalloutRow.acknowledged_at, CalloutRow.ack_via)
                             .where(CalloutRow.record_id.in_(ids)).order_by(CalloutRow.id)):
        callouts.setdefault(c.record_id, []).append(c)
    answers: dict[int, dict[int, str]] = {}
    for callout_id, question, mark in session.execute(select(AnswerRow.callout_id, AnswerRow.question,
                                                             AnswerRow.answer).where(AnswerRow.record_id.in_(ids))):
        answers.setdefault(callout_id, {})[question] = mark
    wrong = dict(session.execute(select(AttemptRow.callout_id, func.count()).where(
        AttemptRow.record_id.in_(ids), AttemptRow.purpose == Purpose.SPOTCHECK_AGAIN.value)
        .group_by(AttemptRow.callout_id)).all())
    site = current_site(session)
    out = []
    for record_id in dict.fromkeys(record_ids):
        row = rows.get(record_id)
        if row is None:
            continue
        kept = frozen(row)
        total = len(kept.questions)
        order = {p: i for i, p in enumerate(kept.drawn)}
        people = []
        for c in sorted(callouts.get(record_id, []), key=lambda c: order.get(c.person_id, len(order))):
            person = site.people.get(c.person_id)
            given = answers.get(c.id, {})
            people.append(PersonResult(
                c.id, c.person_id, person.name if person else c.person_id, c.reason,
                site.areas.name(town_of(person.area)) if person else "", c.state,
                tuple(given.get(q) for q in range(total)), c.acknowledged_at, c.ack_via, wrong.get(c.id, 0)))
        out.append(Result(row.id, row.headline, row.sent, kept, row.applied_at is not None, tuple(people)))
    return out


def result_event(session: Session, record_id: str) -> dict[str, Any]:
    """What the record keeps of a settled spot-check (``spotcheck_result``): how many answered every
    question 是, said 否 to one, or left some unanswered; per question the 是/否/未答 counts; and the
    follow-up list with the questions each person said 否 to or left unanswered."""
    r = result(session, record_id)
    return {"checked": len(r.people), "ok": r.count("ok"), "no": r.count("no"), "missing": r.count("missing"),
            "questions": [r.tally(q) for q in range(len(r.questions))],
            "follow_up": [{"person": p.person_id, "name": p.name, "town": p.town,
                           "no": [q for q, m in enumerate(p.answers) if m == NO],
                           "missing": [q for q, m in enumerate(p.answers) if m is None]} for p in r.follow_up]}


def history(session: Session, limit: int = 50) -> list[Result]:
    """The latest spot-checks, newest first, with their results."""
    ids = list(session.scalars(select(WarningRow.id).where(WarningRow.kind == CheckKind.SPOTCHECK.value)
                               .order_by(WarningRow.sent.desc()).limit(limit)))
    return results_of(session, ids)


@dataclass(frozen=True)
class PeriodFigures:
    """The spot-checks of a period, per town (``town`` "" for all): people checked, answered every
    question, answered 否 to at least one, left some unanswered."""

    town: str
    checked: int
    complete: int
    said_no: int
    missing: int

    @property
    def rate(self) -> float | None:
        """答全率: the share of those checked who answered every question."""
        return self.complete / self.checked if self.checked else None


def period(session: Session, since: datetime, until: datetime) -> list[PeriodFigures]:
    """Per town and in all, the spot-checks started from ``since`` to ``until``."""
    ids = list(session.scalars(select(WarningRow.id).where(
        WarningRow.kind == CheckKind.SPOTCHECK.value, WarningRow.sent >= since, WarningRow.sent < until)))
    tally: dict[str, list[int]] = {}
    for found in results_of(session, ids):
        for p in found.people:
            if p.verdict == "open":
                continue
            for town in ("", p.town):
                counts = tally.setdefault(town, [0, 0, 0, 0])
                counts[0] += 1
                counts[1] += int(None not in p.answers)
                counts[2] += int(NO in p.answers)
                counts[3] += int(None in p.answers)
    return [PeriodFigures(town, *counts) for town, counts in sorted(tally.items(), key=lambda kv: (kv[0] != "", kv[0]))]


def mark_zh(mark: str | None) -> str:
    return ANSWER_ZH.get(mark or "", "未答")


def to_xlsx(session: Session, record_id: str | None = None, limit: int = 500) -> bytes:
    """Spot-checks as a workbook: 六问抽查 (a row per person drawn, a column per question) and 跟进 (the
    follow-up list), for one spot-check or the latest ones; times in the site's time zone."""
    from openpyxl import Workbook

    from .assessment import write_sheet

    tz = current_site(session).tz
    results = [result(session, record_id)] if record_id else history(session, limit)
    width = max((len(r.questions) for r in results), default=0)
    rows, follow = [], []
    for r in results:
        at = f"{r.at.astimezone(tz):%Y-%m-%d %H:%M}"
        for p in r.people:
            line = [at, r.headline, r.frozen.seed, p.name, p.town, p.reason,
                    *[mark_zh(m) for m in p.answers], *[""] * (width - len(p.answers)), VERDICT_ZH[p.verdict],
                    f"{p.answered_at.astimezone(tz):%H:%M:%S}" if p.answered_at else "", p.via or "", r.id]
            rows.append(line)
            if p.follow_up:
                follow.append([at, r.headline, p.name, p.town, p.reason,
                               "；".join(f"{r.questions[q]}：{mark_zh(m)}" for q, m in enumerate(p.answers)
                                        if m != YES), r.id])
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "六问抽查"
    heads = [f"第{q + 1}问" if len(results) != 1 else results[0].questions[q] for q in range(width)]
    write_sheet(first, ["时间", "抽查", "随机种子", "姓名", "乡镇", "岗位", *heads, "结果", "答全时间", "方式", "编号"],
                rows, ())
    write_sheet(book.create_sheet("跟进"), ["时间", "抽查", "姓名", "乡镇", "岗位", "需跟进", "编号"], follow, ())
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
