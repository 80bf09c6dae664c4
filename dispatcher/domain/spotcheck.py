"""The 六问 spot-check (``checks.SpotCheck``): whom it draws, how an answer is read, and the call-outs.

**The draw.** The people who may be drawn hold one of the spot-check's roles and can be reached on
one of its channels; anyone drawn in a spot-check started in the last ``skip_days`` is left out,
whether or not they answered (``services.spotchecks.recently_checked``). They are grouped by the
town of their seat; with the seed, each town's people are shuffled, the towns are shuffled, and the
sample takes one from each town in turn until it has ``size``. The same site, the same seed and the
same people left out draw the same sample: the seed is shown and kept, so the draw can be audited.

**An answer** is one 是 or 否 per question, in order, in one reply: ``1 1 2 1 1 1``, ``112111``,
``是是否是是是``, ``是，是，否，是，是，是`` or ``y y n y y y``. Anything else ("好的", five answers to six
questions) is not an answer.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .checks import SpotCheck
from .plans import Recipient
from .rules import PlannedCallout, PlannedStep
from .site import Site

MAX_SIZE = 500  # one spot-check calls at most this many people
YES, NO = "yes", "no"
ANSWER_ZH = {YES: "是", NO: "否"}

_SEPARATORS = re.compile(r"[\s,.;:!?，。；：！？、/|~～\-—_'\"“”‘’()（）【】\[\]]+")
_WORDS = (("不是", "否"), ("没有", "否"), ("yes", "y"), ("no", "n"))
_MARKS = {"1": YES, "是": YES, "对": YES, "有": YES, "y": YES, "√": YES,
          "2": NO, "否": NO, "不": NO, "无": NO, "n": NO, "×": NO}
_FULLWIDTH = {ord("０") + i: ord("0") + i for i in range(10)} | {
    ord(c): c.lower() for c in "YNyn"} | {ord("Ｙ"): "y", ord("Ｎ"): "n", ord("ｙ"): "y", ord("ｎ"): "n"}


def parse_answers(text: str, questions: int) -> tuple[str, ...] | None:
    """The answers in ``text`` to ``questions`` questions (``yes``/``no`` each, in order), or None
    when it is not exactly one answer per question."""
    normalized = _SEPARATORS.sub("", (text or "").translate(_FULLWIDTH).lower())
    for word, mark in _WORDS:
        normalized = normalized.replace(word, mark)
    if not normalized or any(ch not in _MARKS for ch in normalized):
        return None
    answers = tuple(_MARKS[ch] for ch in normalized)
    return answers if len(answers) == questions else None


def key_answer(digits: str) -> str | None:
    """A keypress on the call: 1 是, 2 否, anything else none."""
    return {"1": YES, "2": NO}.get((digits or "").strip())


@dataclass(frozen=True)
class Sample:
    """Who a spot-check calls: ``drawn`` in the order drawn; ``available`` could have been drawn at
    all; ``skipped`` were left out as checked lately; ``short`` says the size asked was more than
    there were."""

    drawn: tuple[str, ...]
    available: int
    skipped: tuple[str, ...]
    size: int  # the size asked for

    @property
    def short(self) -> bool:
        return len(self.drawn) < self.size


def candidates(site: Site, spotcheck: SpotCheck) -> list[str]:
    """Everyone who may be drawn: holds one of its roles and is reachable on one of its channels."""
    roles = frozenset(spotcheck.roles)
    return sorted(p.id for p in site.people.values()
                  if p.has_any_role(roles) and any(p.reachable_by(c) for c in spotcheck.channels))


def town_of(seat: str) -> str:
    """A seat's town (the first nine digits of its code), or the seat itself above the town."""
    return seat[:9] if len(seat) >= 9 else seat


def draw(site: Site, spotcheck: SpotCheck, size: int, seed: int, recently: set[str] | frozenset[str]) -> Sample:
    """Draw ``size`` people, spread over the towns (see the module's note)."""
    pool = candidates(site, spotcheck)
    skipped = tuple(p for p in pool if p in recently)
    towns: dict[str, list[str]] = {}
    for person_id in pool:
        if person_id not in recently:
            towns.setdefault(town_of(site.people[person_id].area), []).append(person_id)
    rng = random.Random(seed)
    order = sorted(towns)
    for town in order:
        rng.shuffle(towns[town])
    rng.shuffle(order)
    drawn: list[str] = []
    depth = 0
    while len(drawn) < size and any(depth < len(towns[t]) for t in order):
        for town in order:
            if depth < len(towns[town]) and len(drawn) < size:
                drawn.append(towns[town][depth])
        depth += 1
    return Sample(tuple(drawn), sum(len(v) for v in towns.values()), skipped, size)


def reason(site: Site, spotcheck: SpotCheck, person_id: str) -> str:
    """Why this person was drawn, in words: their role and seat, e.g. 村防汛责任人（溪口村）."""
    person = site.people[person_id]
    role = next((site.roles.get(r, r) for r in person.roles if r in spotcheck.roles), "")
    return f"{role}（{site.areas.name(person.area)}）" if person.area else role


def plan_spotcheck(site: Site, spotcheck: SpotCheck, drawn: tuple[str, ...],
                   start: datetime) -> tuple[PlannedCallout, ...]:
    """One call-out per person drawn: called at once on the spot-check's channels, and past
    ``answer_within`` without every answer, listed for follow-up (its final step tells nobody)."""
    plan_id = f"spotcheck:{spotcheck.id}"
    return tuple(PlannedCallout(person_id, plan_id, reason(site, spotcheck, person_id), (
        PlannedStep(0, timedelta(0), start, spotcheck.channels, (Recipient.SELF,), (person_id,)),
        PlannedStep(1, spotcheck.answer_within, start + spotcheck.answer_within, (), (Recipient.SELF,), (),
                    final=True),
    )) for person_id in drawn if person_id in site.people)
