"""Capacity: can a plan meet its own timing under the configured rate limits?

For each step of each plan the call-outs of a warning are added up (step ``k`` of plan ``P`` over
every call-out that plan reaches): how many messages the step sends on each channel if nobody
answers, how long each channel needs at its limit (the first message going at once), and whether
the slowest channel is done before the plan's next step is due. 506 voice calls at 1/s take
8.4 minutes, longer than the 3 minutes a step leaves before the next one: the plan cannot keep
its own timing, and :func:`capacity` says so in a sentence.

Counting rules, kept simple on purpose:

* a message is one recipient on one channel of a step; a recipient reached by the escalations of
  several call-outs (one superior above several village cadres) counts once per call-out, as the
  dispatcher calls once per call-out;
* given ``reachable``, a recipient without an address for a channel is not counted on it;
* a channel without a limit is instant;
* the deadline of a step is the time until the plan's next step (for the last step, until the
  final escalation, or until the call-out is marked unreached); the final escalation has none;
* each plan is measured on its own. Limits are shared by every plan of a warning, so plans whose
  steps coincide slow each other further; ``first_round`` alone adds up all plans (the first
  steps of every plan start together with the warning).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from .channels import Channel
from .limits import RateLimit
from .rules import Resolution


@dataclass(frozen=True)
class ChannelLoad:
    channel: Channel
    messages: int
    limit: RateLimit | None  # None: unlimited, the whole step goes at once

    @property
    def time(self) -> timedelta:
        return self.limit.time_for(self.messages) if self.limit else timedelta(0)


@dataclass(frozen=True)
class StepLoad:
    plan_id: str
    index: int
    after: timedelta  # when the step starts, from the warning
    channels: tuple[ChannelLoad, ...]  # in the order the plan names them
    deadline: timedelta | None  # time until the plan's next step; None for the final escalation
    next_label: str = ""  # what comes at the deadline: "step 2", "the final escalation", …
    final: bool = False

    @property
    def time(self) -> timedelta:
        """How long the step takes to send its last message: its slowest channel."""
        return max((c.time for c in self.channels), default=timedelta(0))

    @property
    def late(self) -> tuple[ChannelLoad, ...]:
        """The channels that are not done before the next step is due."""
        if self.deadline is None:
            return ()
        return tuple(c for c in self.channels if c.time > self.deadline)

    @property
    def fits(self) -> bool:
        return not self.late

    @property
    def label(self) -> str:
        return "final escalation" if self.final else f"step {self.index}"

    def warnings(self) -> list[str]:
        out = []
        for c in self.late:
            assert c.limit is not None and self.deadline is not None
            noun = c.channel.kind.noun[c.messages != 1]
            out.append(f"{self.label} ({c.channel.value}) of plan {self.plan_id}: {c.messages} {noun} at "
                       f"{c.limit} take {span(c.time)}, longer than the {span(self.deadline)} until "
                       f"{self.next_label}")
        return out


@dataclass(frozen=True)
class Capacity:
    limits: Mapping[Channel, RateLimit]
    steps: tuple[StepLoad, ...]
    first_round: timedelta  # when the last message of every plan's first step has gone out

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.steps for w in s.warnings()]

    @property
    def fits(self) -> bool:
        return all(s.fits for s in self.steps)


def capacity(resolution: Resolution, limits: Mapping[Channel, RateLimit],
             reachable: Callable[[str, Channel], bool] | None = None) -> Capacity:
    """The load of every step of every plan of ``resolution`` under ``limits``; pure."""
    # plan -> step index -> (after, final, channel -> messages)
    plans: dict[str, dict[int, tuple[timedelta, bool, dict[Channel, int]]]] = {}
    for callout in resolution.callouts:
        steps = plans.setdefault(callout.plan_id, {})
        for step in callout.steps:
            after, final, counts = steps.setdefault(step.index, (step.after, step.final, {}))
            for channel in step.channels:
                n = sum(1 for r in step.recipients if reachable is None or reachable(r, channel))
                counts[channel] = counts.get(channel, 0) + n

    loads: list[StepLoad] = []
    for plan_id, steps in plans.items():
        order = sorted(steps.items(), key=lambda item: (item[1][0], item[0]))
        for i, (index, (after, final, counts)) in enumerate(order):
            nxt = order[i + 1] if i + 1 < len(order) else None
            if final and not counts:
                continue  # the implicit end of a plan without a final escalation: sends nothing
            channels = tuple(ChannelLoad(c, n, limits.get(c)) for c, n in counts.items())
            if nxt is None:
                loads.append(StepLoad(plan_id, index, after, channels, None, "", final))
                continue
            next_index, (next_after, next_final, next_counts) = nxt
            if not next_final:
                label = f"step {next_index}"
            elif next_counts:
                label = "the final escalation"
            else:
                label = "the call-out is marked unreached"
            loads.append(StepLoad(plan_id, index, after, channels, next_after - after, label, final))

    first: dict[Channel, int] = {}
    starts: list[timedelta] = []
    for steps in plans.values():
        index = min(steps, key=lambda k: (steps[k][0], k))
        after, _, counts = steps[index]
        starts.append(after)
        for channel, n in counts.items():
            first[channel] = first.get(channel, 0) + n
    slowest = max((ChannelLoad(c, n, limits.get(c)).time for c, n in first.items()), default=timedelta(0))
    first_round = (min(starts) + slowest) if starts else timedelta(0)
    return Capacity(dict(limits), tuple(loads), first_round)


def span(t: timedelta) -> str:
    """``8.4 min``, ``3 min``, ``45 s``."""
    seconds = t.total_seconds()
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{round(seconds / 60, 1):g} min"
