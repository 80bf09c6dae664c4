"""Rate limits enforced across every worker: a pacing meter that hands out send slots.

A worker reserves up to N slots for a channel before claiming that many attempts. Slots are spaced
exactly 1/rate apart from the channel's "next free" time, so no provider sees more than its limit in
any window, however many workers share it; reservations reach at most ``horizon`` seconds ahead,
so a red attempt queued a moment later is never stuck behind minutes of orange ones. Unused slots
are handed back when no one reserved after them.

``RedisPacer`` keeps the meter in Redis (production: all Celery workers share it; Celery's own
``rate_limit`` is per worker). ``MemoryPacer`` keeps it in the process (embedded mode: one worker).

``Pacing`` is what a worker's batch uses: the slots it holds, and the rule that keeps every
message inside its own slot — never before it, and never more than ``lateness_allowed`` after it.
A message that missed its slot (the event loop was busy, the worker was descheduled) does not go
anyway: it would fall into the next slot, which another worker may be using. It takes a new slot
at the back of the meter instead. With slots 1 % wider than the limit this holds every window to
the limit whatever the workers' timing: any limit+1 messages have limit+1 distinct slots spanning
at least window/0.99, and none is sent more than a fraction of the 1 % late.

On a meter with one sender (``MemoryPacer``: the embedded worker) the window itself is kept as well:
the meter remembers when its last ``limit`` messages went, and a message goes no sooner than the
window (plus ``window_guard``, 4 ms for a per-second limit) after the one ``limit`` places before it.
That holds every window by itself, so this meter paces only 0.5 % under the limit, and a late message
goes at once: only the messages ``limit``, ``2 × limit`` … places after it may have to wait, and
the slack left in each window absorbs that wait again. (Moving every later slot back by its
lateness — the rule until 2026-12-02 — added up along a queue.) And a slot whose message is stopped
at the last look (the official answered meanwhile) is not lost: the messages after it move forward
one slot, waking early if they were asleep. On the drill's re-calls, where many are answered while
they wait, the lost slots had added up to ~3 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from ..channels.base import TransientError
from ..domain.channels import Channel
from ..domain.limits import RateLimit

HORIZON_SECONDS = 2.0
# Pace a little under the limit: a message a few milliseconds late must not put one too many into
# the provider's window. 97 % (until 2026-12-01) cost the last call of a 506-call queue 5 s; at 99 %
# the rate-limit bench still sees no window over the limit.
MARGIN = 0.99
# A sole sender keeps the window itself (``MemoryPacer.admit``), so its margin only has to leave room
# for a late message to be absorbed: half of it. Over the drill's 676 calls the other half was ~1.1 s.
SOLE_MARGIN = 0.995
# How late after its slot a message may still go: 60 % of the slack the margin leaves in one
# window (6 ms for a per-second limit, 0.36 s for a per-minute one); the rest is for the time
# between the check and the provider's own clock.
LATENESS_SHARE = 0.6
# A message that keeps missing its slot (a worker starved of CPU) is given back to the queue.
TURN_TRIES = 5
# A new slot for a message that missed its own: at the back of the meter, however far that is.
BACK_OF_THE_METER = 3600.0
# A booking's first slot is no sooner than this from now: a worker reserves before it claims the
# attempts from the database and renders them, and on an idle meter a first slot at "now" was
# already stale by then (a red message sent to the back of the meter, behind orange ones).
READY_LEAD = 0.05
# The last look before a hand-over (was the call-out answered meanwhile?) is taken this long before
# the slot, so the database round trip does not make the message late for it.
CHECK_LEAD = 0.05


def lateness_allowed(limit: RateLimit) -> float:
    return limit.per_seconds * (1 / MARGIN - 1) * LATENESS_SHARE


def window_guard(limit: RateLimit) -> float:
    """What a window is widened by when a sole sender keeps it itself: the part of the margin's slack
    that ``lateness_allowed`` leaves for the time between our clock and the provider's (4 ms for a
    per-second limit)."""
    return limit.per_seconds * (1 / MARGIN - 1) * (1 - LATENESS_SHARE)


@dataclass(frozen=True)
class Slots:
    granted: int
    first_in: float  # seconds from now until the first slot
    spacing: float  # seconds between slots
    end: str = ""  # the meter's value after this reservation (to hand unused slots back)

    def delay(self, i: int) -> float:
        return max(0.0, self.first_in + i * self.spacing)


UNLIMITED = Slots(granted=1 << 30, first_in=0.0, spacing=0.0)


class MemoryPacer:
    def __init__(self, limits: Mapping[Channel, RateLimit], now: Callable[[], float] = time.monotonic,
                 sole_sender: bool = True) -> None:
        self.limits, self._now = dict(limits), now
        # One worker uses this meter (the embedded one): a late slot can move the later ones back.
        self.sole_sender = sole_sender
        self._next_free: dict[Channel, float] = {}
        self._went: dict[Channel, deque[float]] = {}  # sole sender: when its last ``limit`` messages went
        self._lock = threading.Lock()

    def reserve(self, channel: Channel, want: int, horizon: float = HORIZON_SECONDS, lead: float = 0.0) -> Slots:
        limit = self.limits.get(channel)
        if limit is None:
            return UNLIMITED
        spacing = self.spacing(channel)
        with self._lock:
            now = self._now()
            start = max(now + lead, self._next_free.get(channel, now))
            room = int((now + horizon - start) / spacing) + (1 if start <= now + horizon else 0)
            granted = max(0, min(want, room))
            if granted:
                self._next_free[channel] = start + granted * spacing
        return Slots(granted, start - now, spacing)

    def spacing(self, channel: Channel) -> float:
        """Seconds between two slots of a limited channel: the limit, paced under by the margin."""
        return 1.0 / (self.limits[channel].per_second * (SOLE_MARGIN if self.sole_sender else MARGIN))

    def shift(self, channel: Channel, delta: float) -> None:
        """Move the channel's next free slot by ``delta`` seconds (a slot was given back: negative)."""
        with self._lock:
            if channel in self._next_free:
                self._next_free[channel] += delta

    def admit(self, channel: Channel, now: float) -> float:
        """A sole sender's message about to go at ``now``: 0 if the window has room (it is counted as
        gone), else how many seconds until it has."""
        limit = self.limits.get(channel)
        if limit is None:
            return 0.0
        with self._lock:
            went = self._went.setdefault(channel, deque(maxlen=max(1, int(limit.count))))
            if len(went) == went.maxlen and (wait := went[0] + limit.per_seconds + window_guard(limit) - now) > 0:
                return wait
            went.append(now)
            return 0.0

    def release(self, channel: Channel, slots: Slots, used: int) -> None:
        limit = self.limits.get(channel)
        if limit is None or used >= slots.granted:
            return
        with self._lock:
            end = self._next_free.get(channel)
            now = self._now()
            if end is not None and abs(end - (now + slots.first_in + slots.granted * slots.spacing)) < 0.05:
                self._next_free[channel] = end - (slots.granted - used) * slots.spacing


_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local spacing = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local lead = tonumber(ARGV[4])
local nf = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now + lead, nf)
local room = 0
if start <= now + horizon then room = math.floor((now + horizon - start) / spacing) + 1 end
local n = math.max(0, math.min(want, room))
local finish = string.format('%.6f', start + n * spacing)
if n > 0 then redis.call('SET', KEYS[1], finish, 'PX', 600000) end
return {n, string.format('%.6f', start - now), finish}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], string.format('%.6f', tonumber(ARGV[1]) - tonumber(ARGV[2])), 'PX', 600000)
  return 1
end
return 0
"""


class RedisPacer:
    """The same meter in Redis, atomic by Lua, on Redis's own clock (workers' clocks may differ)."""

    sole_sender = False  # shared by every worker: another's slot may follow a late one

    def __init__(self, limits: Mapping[Channel, RateLimit], url: str, prefix: str = "jiaoying:pace:") -> None:
        import redis

        self.limits, self.prefix = dict(limits), prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._reserve = self._redis.register_script(_RESERVE)
        self._release = self._redis.register_script(_RELEASE)
        self._ends: dict[Channel, str] = {}

    def reserve(self, channel: Channel, want: int, horizon: float = HORIZON_SECONDS, lead: float = 0.0) -> Slots:
        if self.limits.get(channel) is None:
            return UNLIMITED
        spacing = self.spacing(channel)
        granted, first_in, end = self._reserve(keys=[self.prefix + channel.value],
                                               args=[spacing, want, horizon, lead])
        return Slots(int(granted), float(first_in), spacing, end.decode() if isinstance(end, bytes) else str(end))

    def spacing(self, channel: Channel) -> float:
        return 1.0 / (self.limits[channel].per_second * MARGIN)

    def release(self, channel: Channel, slots: Slots, used: int) -> None:
        """Hand unused slots back if nobody reserved after us (a leftover gap is the safe side)."""
        if self.limits.get(channel) is None or used >= slots.granted or not slots.end:
            return
        self._release(keys=[self.prefix + channel.value], args=[slots.end, (slots.granted - used) * slots.spacing])


Pacer = MemoryPacer | RedisPacer


@dataclass(frozen=True)
class Turn:
    """One send slot on this worker's monotonic clock. The meter's clock was read somewhere between
    ``earliest`` and ``at`` (the reservation's round trip): send at ``at`` or later, judge lateness
    from ``earliest`` — both on the safe side."""

    earliest: float
    at: float
    channel: Channel | None = None

    def later(self, delta: float) -> Turn:
        return Turn(self.earliest + delta, self.at + delta, self.channel)


@dataclass(frozen=True)
class Booking:
    channel: Channel
    slots: Slots
    before: float
    after: float

    @property
    def granted(self) -> int:
        return self.slots.granted

    def turn(self, i: int) -> Turn:
        return Turn(self.before + self.slots.delay(i), self.after + self.slots.delay(i), self.channel)


class Pacing:
    """A worker's use of the shared meter: reserve, hold slots for claimed attempts, wait its turn."""

    def __init__(self, pacer: Pacer, limits: Mapping[Channel, RateLimit],
                 now: Callable[[], float] = time.monotonic, tries: int = TURN_TRIES, lead: float = READY_LEAD) -> None:
        self.pacer, self.limits, self._now, self.tries, self.lead = pacer, dict(limits), now, tries, lead
        self._allowed = {channel: lateness_allowed(limit) for channel, limit in self.limits.items()}
        self._held: dict[int, Turn] = {}
        self.missed: dict[Channel, int] = {}  # slots given up because the message was late for them
        self.late: dict[Channel, int] = {}  # sole sender: messages that went late for their slot (window kept)
        self.given_back: dict[Channel, int] = {}  # sole sender: slots of stopped messages the next ones took
        self._moved: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def paced(self, channel: Channel) -> bool:
        return channel in self.limits

    def reserve(self, channel: Channel, want: int, horizon: float = HORIZON_SECONDS) -> Booking:
        before = self._now()
        slots = self.pacer.reserve(channel, want, horizon, self.lead)
        return Booking(channel, slots, before, self._now())

    def hold(self, booking: Booking, attempt_ids: list[int], per: int = 1) -> None:
        """Give the claimed attempts the booking's slots, in order, ``per`` attempts to a slot (a
        batch provider's request carries several); hand the unused slots back. Attempts beyond the
        granted slots (an over-claim) hold none: ``turn`` reserves theirs at the back of the meter —
        the slots after the granted ones are the next reservation's, another worker's included."""
        used = -(-len(attempt_ids) // per)
        self.pacer.release(booking.channel, booking.slots, used)
        if self.paced(booking.channel):
            granted = attempt_ids[:booking.granted * per]
            self._held.update((attempt_id, booking.turn(i // per)) for i, attempt_id in enumerate(granted))

    def forget(self, attempt_ids: list[int]) -> None:
        """Drop the slots held for these attempts (they go in a request whose slot another holds)."""
        for attempt_id in attempt_ids:
            self._held.pop(attempt_id, None)

    async def turn(self, attempt_id: int, channel: Channel, again: bool = False,
                   ready: Callable[[], Awaitable[None]] | None = None) -> None:
        """Return when the attempt may be handed over: inside its slot. A retry (``again``) is a new
        message to the provider and takes a new slot. TransientError if no slot could be kept.
        ``ready`` (the last look before the hand-over) is awaited shortly before each slot; what it
        raises stops the hand-over."""
        held = self._held.pop(attempt_id, None)
        if not self.paced(channel):
            if ready is not None:
                await ready()
            return
        turn = None if again else held
        sole = getattr(self.pacer, "sole_sender", False)  # nobody else's slot follows: keep the window
        try:
            for _ in range(self.tries):
                if turn is None:
                    turn = self.reserve(channel, 1, BACK_OF_THE_METER).turn(0)
                self._held[attempt_id] = turn
                if ready is not None:
                    turn = await self._until(attempt_id, CHECK_LEAD, sole)
                    try:
                        await ready()
                    except BaseException:
                        if sole:  # stopped: the ones after it take its slot
                            self._give_back(attempt_id, channel)
                        raise
                turn = await self._until(attempt_id, 0.0, sole)
                if sole:
                    while (wait := self.pacer.admit(channel, self._now())) > 0:  # type: ignore[union-attr]
                        await asyncio.sleep(wait)
                    if self._now() - turn.earliest > self._allowed[channel]:
                        self.late[channel] = self.late.get(channel, 0) + 1
                    return
                if self._now() - turn.earliest <= self._allowed[channel]:
                    return
                self.missed[channel] = self.missed.get(channel, 0) + 1
                turn = None
        finally:
            self._held.pop(attempt_id, None)
        raise TransientError(f"{channel.value}: missed its send slot {self.tries} times (worker overloaded); "
                             "queued again", unsent=True)


    async def _until(self, attempt_id: int, lead: float, sole: bool) -> Turn:
        """Sleep until ``lead`` seconds before the attempt's slot, which (on a sole sender's meter) may
        move forward while it sleeps; returns the slot."""
        while (wait := self._held[attempt_id].at - lead - self._now()) > 0:
            if not sole:
                await asyncio.sleep(wait)
                break
            try:
                await asyncio.wait_for(self._moves().wait(), wait)
            except TimeoutError:
                break  # slept the whole wait: the slot did not move
        return self._held[attempt_id]

    def _moves(self) -> asyncio.Event:
        """Set when held slots move forward (one event per running loop, replaced after each move)."""
        loop = asyncio.get_running_loop()
        if self._moved is None or self._moved[0] is not loop:
            self._moved = (loop, asyncio.Event())
        return self._moved[1]

    def _give_back(self, attempt_id: int, channel: Channel) -> None:
        """The stopped attempt's slot goes to the next one: every later slot of the channel, held or not
        yet granted, one slot sooner (the window log still holds every window to the limit)."""
        stopped = self._held.get(attempt_id)
        if stopped is None or channel not in self.limits:
            return
        spacing = self.pacer.spacing(channel)
        self._held = {a: t.later(-spacing) if t.channel == channel and t.at > stopped.at else t
                      for a, t in self._held.items()}
        self.pacer.shift(channel, -spacing)  # type: ignore[union-attr]  # sole_sender: a MemoryPacer
        self.given_back[channel] = self.given_back.get(channel, 0) + 1
        self._moves().set()
        self._moved = None


def make_pacer(limits: Mapping[Channel, RateLimit], broker_url: str) -> Pacer:
    return RedisPacer(limits, broker_url) if broker_url.startswith("redis") and limits else MemoryPacer(limits)
