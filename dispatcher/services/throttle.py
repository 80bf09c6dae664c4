"""Sign-in throttling: backoff per client address and per account name, never a lockout.

Every failed sign-in counts against the address it came from and against the name it tried —
whether or not a user of that name exists, so a throttled answer says nothing about names.

* An address's first ``address_free`` failures cost nothing; after that it must wait 1 s, 2 s,
  4 s … (at most ``address_cap``) after its last failure before it tries again, any name.
* A name's first ``name_free`` failures cost nothing; after that, an address that has itself
  failed on that name may try it again only 1 s, 2 s, 4 s … (at most ``name_cap``) after the
  name's last failure. An address that has not failed on the name is never held back by it: an
  attacker hammering a duty officer's name slows himself down, while the officer, from her own
  desk or phone, gets in at her first right password.
* A success takes back the failures that address made on that name (the officer's own typos,
  so an office behind one NAT address does not pile them up) and no others: signing in to an
  account of one's own buys no more guesses at someone else's.
* Failures are forgotten ``forget_after`` after an address's (or a name's) last one.

The counts live in this process's memory (``max_tracked`` addresses and names at most, the
oldest dropped first) and are lost on restart. With several API processes each keeps its own, so
an address gets that many times the free attempts; a reverse proxy must pass the client's address
(uvicorn ``--proxy-headers --forwarded-allow-ips``) or every client shares the proxy's.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class _Tally:
    count: int = 0
    last: float = 0.0  # the last failure, on the throttle's clock

    def add(self, now: float) -> None:
        self.count, self.last = self.count + 1, now

    def wait(self, now: float, free: int, cap: float) -> float:
        if self.count < free:
            return 0.0
        return max(0.0, self.last + min(cap, 2.0 ** min(self.count - free, 32)) - now)


@dataclass
class _NameTally(_Tally):
    by_address: OrderedDict[str, _Tally] = field(default_factory=OrderedDict)  # who failed on it, oldest first


class LoginThrottle:
    """Thread-safe; ``clock`` is monotonic seconds (tests pass their own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, address_free: int = 5,
                 address_cap: float = 15 * 60, name_free: int = 5, name_cap: float = 30,
                 forget_after: float = 60 * 60, max_tracked: int = 10_000, max_per_name: int = 1_000) -> None:
        self._clock = clock
        self.address_free, self.address_cap = address_free, address_cap
        self.name_free, self.name_cap = name_free, name_cap
        self.forget_after, self.max_tracked, self.max_per_name = forget_after, max_tracked, max_per_name
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, _Tally] = OrderedDict()  # oldest last failure first
        self._names: OrderedDict[str, _NameTally] = OrderedDict()

    def wait(self, address: str, name: str) -> float:
        """Seconds before ``address`` may try ``name`` (0: now)."""
        now = self._clock()
        with self._lock:
            self._forget(now)
            waits = [0.0]
            tally = self._addresses.get(address)
            if tally is not None:
                waits.append(tally.wait(now, self.address_free, self.address_cap))
            named = self._names.get(name)
            mine = named.by_address.get(address) if named is not None else None
            if named is not None and mine is not None and now - mine.last < self.forget_after:
                waits.append(named.wait(now, self.name_free, self.name_cap))
            return max(waits)

    def failed(self, address: str, name: str) -> None:
        now = self._clock()
        with self._lock:
            self._forget(now)
            _newest(self._addresses, address, _Tally, self.max_tracked).add(now)
            named = _newest(self._names, name, _NameTally, self.max_tracked)
            named.add(now)
            _newest(named.by_address, address, _Tally, self.max_per_name).add(now)

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            named = self._names.get(name)
            mine = named.by_address.pop(address, None) if named is not None else None
            if named is None or mine is None:
                return
            named.count = max(0, named.count - mine.count)
            tally = self._addresses.get(address)
            if tally is not None:
                tally.count = max(0, tally.count - mine.count)

    def _forget(self, now: float) -> None:
        horizon = now - self.forget_after
        for table in (self._addresses, self._names):
            while table and next(iter(table.values())).last <= horizon:
                table.popitem(last=False)


def _newest(table: OrderedDict[str, T], key: str, new: Callable[[], T], limit: int) -> T:
    """``table[key]`` (made if missing) moved to the end; the oldest entries dropped past ``limit``."""
    entry = table.pop(key, None) or new()
    table[key] = entry
    while len(table) > limit:
        table.popitem(last=False)
    return entry
