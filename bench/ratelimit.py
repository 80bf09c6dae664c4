#!/usr/bin/env python
"""Rate-limit benchmark (SPEC section 7, "Rate limits").

    .venv/bin/python bench/ratelimit.py [--quick] [--redis] [--only limits spacing priority]

For each configured limit the engine is saturated (far more queued than the limit lets through)
and the fake provider's log is checked: zero sliding-window violations and at least 95 % of the
allowed rate used; red before orange when saturated.

What runs (in this process, everything in a temporary folder, every thread stopped at the end):
the engine as ``jiaoying serve`` runs it — ``EmbeddedRuntime``: a scheduler thread and a worker
thread, each with its own Engine — on a fresh SQLite database per scenario; the simulator adapters
write to an in-memory ``SimOutbox`` (the fake provider: each message's arrival is the monotonic
time the adapter handed it over). With ``--redis`` every scenario runs a second time with a
Redis on 127.0.0.1 (tests/support/servers.py) as broker URL and TWO worker threads, each with its
own Engine and its own ``RedisPacer`` on the same Redis key — the limit must hold across workers.

Scenarios:

- limits: three warnings at once, each to its own group of officials: SMS (sms=10/s), voice
  (voice=3/s) and IM (im=20/min, the robot's limit: 60 messages ≈ 3 min; --quick: 25 ≈ 72 s).
  Per channel: messages, elapsed (first → last arrival), allowed rate, achieved rate
  ((n-1)/elapsed, the first message going at once), % of the allowed rate used, and the
  sliding-window check: for every arrival t, the messages of that channel in [t, t + window)
  (window = 1 s or 60 s); a count above the limit is a violation.
- spacing: voice=3/s and callee_spacing_seconds=S (default 10 s; the providers' real rule is often
  60 s: --spacing 60). Each of 6 officials gets 4 calls: a plan calling at 0, 1 s and 2 s plus a
  second warning (another hazard) calling at 0 — so two calls to one person are queued at once.
  A violation: two calls to the same person less than S apart. "% used": for each person the
  ideal time for 4 calls (3·S) / what it took. Also a run WITHOUT a voice rate limit (spacing set,
  voice unlimited) to check the spacing does not depend on a rate limit.
- priority: sms=10/s; an orange warning to 100 officials, then (once 20 have gone out) a red one
  to 30 others. Red before orange: no orange message between the first and the last red one.
  (Orange slots already reserved before the red warning came — at most the 2 s pacing horizon —
  may still go out first; that is by design and is shown.)
- batch: SMS through a batch provider's simulator (requests of 100 numbers, as Aliyun's
  SendBatchSms) at sms=5/s, which counts requests as the provider does: 3,000 officials (--quick:
  1,000) in 30 (10) requests; the sliding-window check runs on the requests' times, and the row
  says how full the requests were.

The figures are noisy on two shared cores; repeat before concluding.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (  # noqa: E402
    NOISE_NOTE,
    Rig,
    fmt,
    machine,
    pace,
    percentile,
    person,
    redis_server,
    render,
    write_site,
)

from dispatcher.channels.simulator import SimSent  # noqa: E402
from dispatcher.domain.channels import Channel  # noqa: E402
from dispatcher.domain.limits import parse_limits  # noqa: E402

COUNTY = "330599"
T1, T2 = f"{COUNTY}101", f"{COUNTY}102"
AREAS = [{"code": COUNTY, "name": "压测县", "children": [{"code": T1, "name": "一镇"}, {"code": T2, "name": "二镇"}]}]
FLAT = [{"code": COUNTY, "name": "压测县"}]


def plan(pid: str, hazard: str, level: str, roles: list[str], steps: list[tuple[str, list[str]]]) -> dict[str, Any]:
    return {"id": pid, "name": pid, "match": {"hazards": [hazard], "levels": [level]},
            "targets": [{"roles": roles, "scope": "affected"}],
            "steps": [{"after": after, "channels": channels, "to": "self"} for after, channels in steps]}


class ThreadTally:
    """Which thread handed each message over (to show both workers sent)."""

    def __init__(self) -> None:
        self.by_thread: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, sent: SimSent) -> None:
        with self._lock:
            self.by_thread[threading.current_thread().name] += 1

    def text(self) -> str:
        return " ".join(f"{name.removeprefix('jiaoying-')}={n}" for name, n in sorted(self.by_thread.items()))


# -- scenario: each channel's limit -------------------------------------------------------------

def scenario_limits(mode: str, args: argparse.Namespace, broker: str, workers: int, workdir: Path) -> list[tuple]:
    n_sms, n_voice, n_im = (100, 45, 25) if args.quick else (200, 90, 60)
    people: list[dict[str, Any]] = []
    for group, n, im in (("s", n_sms, False), ("v", n_voice, False), ("i", n_im, True)):
        people += [person(f"{group}{k}", len(people) + k, COUNTY, [f"{group}_off"], phone=not im, im=im)
                   for k in range(n)]
    people.append(person("duty", 99999, COUNTY, ["duty_officer"]))
    site = write_site(workdir / f"site-limits-{mode}", FLAT,
                      {"s_off": "短信组", "v_off": "语音组", "i_off": "IM组", "duty_officer": "值班员"}, people, [
                          plan("sms", "rainstorm", "red", ["s_off"], [("0", ["sms"])]),
                          plan("voice", "typhoon", "red", ["v_off"], [("0", ["voice"])]),
                          plan("im", "flash_flood", "red", ["i_off"], [("0", ["im"])]),
                      ], duty=("duty", "duty"))
    limits_text = "sms=10/s,voice=3/s,im=20/min"
    limits = parse_limits(limits_text)
    expected = {"sms": n_sms, "voice": n_voice, "im": n_im}
    longest = max(limits[Channel(c)].time_for(n).total_seconds() for c, n in expected.items())
    rig = Rig(site, rate_limits=limits_text, broker_url=broker, workers=workers, workdir=workdir)
    tally = ThreadTally()
    rig.outbox.subscribe(tally)
    print(f"  [{mode}] limits: {n_sms} SMS, {n_voice} calls, {n_im} IM messages; ~{longest:.0f} s ...",
          file=sys.stderr, flush=True)
    rows = []
    try:
        rig.start()
        for hazard in ("rainstorm", "typhoon", "flash_flood"):
            rig.post(hazard, "red", [COUNTY], f"limits-{hazard}")

        def done() -> bool:
            got = Counter(m.message.channel.value for m in rig.outbox.messages())
            return all(got[c] >= n for c, n in expected.items())

        finished = rig.wait_until(done, longest * 1.5 + 30)
        time.sleep(0.5)
    finally:
        rig.stop()
    messages = rig.outbox.messages()
    for channel, limit in sorted(limits.items(), key=lambda kv: kv[0].value):
        times = [m.at_monotonic for m in messages if m.message.channel is channel]
        keys = Counter(m.message.key for m in messages if m.message.channel is channel)
        dups = sum(1 for c in keys.values() if c > 1)
        p = pace(times, limit.count, limit.per_seconds)
        note = "" if finished else f"TIMEOUT: {len(times)}/{expected[channel.value]}"
        rows.append((mode, f"{channel.value} {limit}", str(p.n), fmt(p.elapsed, ".1f"), fmt(p.allowed, ".3f"),
                     fmt(p.achieved, ".3f"), fmt(p.used_pct, ".1f"), f"{p.worst}/{int(limit.count)}",
                     str(p.violations), str(p.near_misses), fmt(p.min_gap * 1000, ".1f"), str(dups),
                     "yes" if p.ok() and dups == 0 and finished else "NO", note))
    return rows + [("", f"  sent by: {tally.text()}", *([""] * 12))]


# -- scenario: a batch provider (its limit counts requests) ----------------------------------------

def scenario_batch(mode: str, args: argparse.Namespace, broker: str, workers: int, workdir: Path) -> list[tuple]:
    """SMS through a batch provider (100 numbers a request, as Aliyun's SendBatchSms): sms=5/s is 5
    requests a second; the sliding-window check runs on the requests' times."""
    n = 1000 if args.quick else 3000
    size = 100
    people = [person(f"b{k}", k, COUNTY, ["b_off"], phone=True) for k in range(n)]
    people.append(person("duty", 99999, COUNTY, ["duty_officer"]))
    site = write_site(workdir / f"site-batch-{mode}", FLAT, {"b_off": "批量组", "duty_officer": "值班员"}, people,
                      [plan("sms", "rainstorm", "red", ["b_off"], [("0", ["sms"])])], duty=("duty", "duty"))
    limits_text = "sms=5/s"
    limit = parse_limits(limits_text)[Channel.SMS]
    rig = Rig(site, rate_limits=limits_text, broker_url=broker, workers=workers, workdir=workdir, sms_batch=size)
    longest = limit.time_for(-(-n // size)).total_seconds()
    print(f"  [{mode}] batch: {n} SMS in requests of {size} at {limit}; ~{longest:.0f} s ...",
          file=sys.stderr, flush=True)
    try:
        rig.start()
        rig.post("rainstorm", "red", [COUNTY], "batch")
        finished = rig.wait_until(lambda: len(rig.outbox.messages()) >= n, longest * 1.5 + 60)
        time.sleep(0.5)
    finally:
        rig.stop()
    times = sorted(t for t, _ in rig.requests)
    sizes = [k for _, k in rig.requests]
    keys = Counter(m.message.key for m in rig.outbox.messages())
    dups = sum(1 for c in keys.values() if c > 1)
    p = pace(times, limit.count, limit.per_seconds)
    full = sum(1 for k in sizes if k == size)
    note = (f"{sum(sizes)} messages in {len(sizes)} requests ({full} full)"
            + ("" if finished else f"; TIMEOUT: {len(rig.outbox.messages())}/{n}"))
    return [(mode, f"sms {limit} (requests of {size})", str(p.n), fmt(p.elapsed, ".1f"), fmt(p.allowed, ".3f"),
             fmt(p.achieved, ".3f"), fmt(p.used_pct, ".1f"), f"{p.worst}/{int(limit.count)}", str(p.violations),
             str(p.near_misses), fmt(p.min_gap * 1000, ".1f"), str(dups),
             "yes" if p.ok() and dups == 0 and finished else "NO", note)]


# -- scenario: per-callee spacing ---------------------------------------------------------------

def scenario_spacing(mode: str, args: argparse.Namespace, broker: str, workers: int, workdir: Path,
                     rate_limits: str = "voice=3/s", people_n: int = 6) -> list[tuple]:
    spacing = args.spacing
    people = [person(f"v{k}", k, COUNTY, ["v_off"]) for k in range(people_n)]
    people.append(person("duty", 99999, COUNTY, ["duty_officer"]))
    site = write_site(workdir / f"site-spacing-{mode}-{rate_limits or 'nolimit'}", FLAT,
                      {"v_off": "语音组", "duty_officer": "值班员"}, people, [
                          plan("three", "rainstorm", "red", ["v_off"],
                               [("0", ["voice"]), ("1s", ["voice"]), ("2s", ["voice"])]),
                          plan("one", "typhoon", "red", ["v_off"], [("0", ["voice"])]),
                      ], duty=("duty", "duty"))
    calls = 4
    label = rate_limits or "voice unlimited"
    rig = Rig(site, rate_limits=rate_limits, callee_spacing=spacing, broker_url=broker, workers=workers,
              workdir=workdir)
    print(f"  [{mode}] spacing {spacing:g} s ({label}): {people_n} people x {calls} calls; "
          f"~{(calls - 1) * spacing:.0f} s ...", file=sys.stderr, flush=True)
    try:
        rig.start()
        rig.post("rainstorm", "red", [COUNTY], "spacing-a")
        rig.post("typhoon", "red", [COUNTY], "spacing-b")
        finished = rig.wait_until(lambda: len(rig.outbox) >= people_n * calls, (calls - 1) * spacing * 1.5 + 30)
        time.sleep(0.5)
    finally:
        rig.stop()
    per: dict[str, list[float]] = defaultdict(list)
    seq: dict[str, list[SimSent]] = defaultdict(list)
    for m in rig.outbox.messages():
        per[m.message.to.person_id].append(m.at_monotonic)
        seq[m.message.to.person_id].append(m)
    close = [f"{a.message.key}->{b.message.key} {b.at_monotonic - a.at_monotonic:.2f}s"
             for ms in seq.values() for a, b in zip(ms, ms[1:], strict=False)
             if b.at_monotonic - a.at_monotonic < spacing]
    gaps = [b - a for ts in per.values() for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)]
    violations = sum(1 for g in gaps if g < spacing)
    used = [(len(ts) - 1) * spacing / (max(ts) - min(ts)) * 100 for ts in per.values() if len(ts) > 1]
    n = sum(len(ts) for ts in per.values())
    ok = finished and violations == 0 and used and min(used) >= 95.0
    return [(mode, f"voice spacing {spacing:g}s ({label})", str(n),
             fmt(max((max(ts) for ts in per.values()), default=0) - min((min(ts) for ts in per.values()),
                                                                        default=0), ".1f"),
             fmt(1 / spacing, ".3f") + "/callee", fmt(percentile([len(ts) - 1 for ts in per.values()], 50) /
                                                     percentile([max(ts) - min(ts) for ts in per.values()], 50)
                                                     if per else float("nan"), ".3f") + "/callee",
             fmt(min(used, default=float("nan")), ".1f") + " (min)",
             f"gap min {fmt(min(gaps, default=float('nan')), '.2f')} s", str(violations), "-",
             f"p50 {fmt(percentile(gaps, 50), '.2f')} s", "-", "yes" if ok else "NO",
             ("" if finished else f"TIMEOUT: {n}/{people_n * calls}; ")
             + (f"too close (attempt keys callout:step:channel:person): {', '.join(close[:4])}" if close else ""))]


# -- scenario: red before orange ----------------------------------------------------------------

def scenario_priority(mode: str, args: argparse.Namespace, broker: str, workers: int, workdir: Path) -> list[tuple]:
    n_orange, n_red = 100, 30
    people = [person(f"o{k}", k, T1, ["off"]) for k in range(n_orange)]
    people += [person(f"r{k}", 1000 + k, T2, ["off"]) for k in range(n_red)]
    people.append(person("duty", 99999, COUNTY, ["duty_officer"]))
    site = write_site(workdir / f"site-priority-{mode}", AREAS, {"off": "责任人", "duty_officer": "值班员"}, people, [
        plan("red", "rainstorm", "red", ["off"], [("0", ["sms"])]),
        plan("orange", "rainstorm", "orange", ["off"], [("0", ["sms"])]),
    ], duty=("duty", "duty"))
    rig = Rig(site, rate_limits="sms=10/s", broker_url=broker, workers=workers, workdir=workdir)
    print(f"  [{mode}] priority: {n_orange} orange SMS, then {n_red} red, at 10/s ...", file=sys.stderr, flush=True)
    try:
        rig.start()
        rig.post("rainstorm", "orange", [T1], "orange")
        rig.wait_until(lambda: len(rig.outbox) >= 20, 30, poll=0.02)
        red_at = rig.post("rainstorm", "red", [T2], "red")
        finished = rig.wait_until(lambda: len(rig.outbox) >= n_orange + n_red, (n_orange + n_red) / 10 * 1.5 + 30)
        time.sleep(0.5)
    finally:
        rig.stop()
    sms = sorted(rig.outbox.messages(), key=lambda m: m.at_monotonic)
    reds = [i for i, m in enumerate(sms) if m.message.level.value == "red"]
    if not reds:
        return [(mode, "red before orange", str(len(sms)), *(["-"] * 9), "NO", "no red message arrived")]
    first, last = reds[0], reds[-1]
    between = sum(1 for m in sms[first:last + 1] if m.message.level.value != "red")
    before = sum(1 for m in sms[:first] if m.message.level.value != "red" and m.at_monotonic >= red_at)
    orange_left = sum(1 for m in sms[last + 1:] if m.message.level.value != "red")
    p = pace([m.at_monotonic for m in sms], 10, 1)
    detail = (f"red queued at t; first red +{sms[first].at_monotonic - red_at:.2f} s, last red "
              f"+{sms[last].at_monotonic - red_at:.2f} s; {before} orange (already-reserved slots) went out after t "
              f"before the first red, {between} orange between first and last red, {orange_left} orange after")
    ok = finished and between == 0 and p.violations == 0
    return [(mode, "sms 10/s red>orange", str(len(sms)), fmt(p.elapsed, ".1f"), fmt(p.allowed, ".3f"),
             fmt(p.achieved, ".3f"), fmt(p.used_pct, ".1f"), f"{p.worst}/10", str(p.violations), str(p.near_misses),
             fmt(p.min_gap * 1000, ".1f"), "0", "yes" if ok else "NO", detail if finished else "TIMEOUT; " + detail)]


# -- main ---------------------------------------------------------------------------------------

HEADER = ("mode", "limit", "msgs", "elapsed s", "allowed/s", "achieved/s", "% used", "worst window",
          "violations", "near-miss<5ms", "min gap ms", "dup keys", "target met", "notes")


def run_mode(mode: str, args: argparse.Namespace, broker: str, workers: int, workdir: Path) -> list[tuple]:
    rows: list[tuple] = []
    if "limits" in args.only:
        rows += scenario_limits(mode, args, broker, workers, workdir)
    if "spacing" in args.only:
        rows += scenario_spacing(mode, args, broker, workers, workdir)
        rows += scenario_spacing(mode, args, broker, workers, workdir, rate_limits="", people_n=3)
    if "priority" in args.only:
        rows += scenario_priority(mode, args, broker, workers, workdir)
    if "batch" in args.only:
        rows += scenario_batch(mode, args, broker, workers, workdir)
    return rows


def interrupted(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages (IM: 25 at 20/min ≈ 72 s)")
    parser.add_argument("--redis", action="store_true", help="also: RedisPacer shared by two worker Engines")
    parser.add_argument("--redis-only", action="store_true", help="only the Redis, two-worker mode")
    parser.add_argument("--spacing", type=float, default=10.0, help="callee_spacing_seconds (default 10)")
    parser.add_argument("--only", nargs="+", choices=["limits", "spacing", "priority", "batch"],
                        default=["limits", "spacing", "priority", "batch"])
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, interrupted)
    print(machine())
    print(NOISE_NOTE)
    print("fake provider: in-memory SimOutbox (arrival = monotonic time the adapter handed the message over)\n")
    rows: list[tuple] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jy-bench-rl-") as tmp:
        workdir = Path(tmp)
        try:
            if not args.redis_only:
                rows += run_mode("embedded", args, "", 1, workdir)
            if args.redis or args.redis_only:
                with redis_server() as redis:
                    print(f"  Redis at {redis.url} (pid {redis.process.pid if redis.process else '?'})",
                          file=sys.stderr, flush=True)
                    rows += run_mode("redis x2 workers", args, redis.url, 2, workdir)
        except KeyboardInterrupt:
            print("interrupted; threads and Redis stopped", file=sys.stderr)
            return 130
    print(render([HEADER, *[tuple(str(c) for c in r) for r in rows]]))
    print(f"\ntotal {time.monotonic() - started:.0f} s. Targets: violations 0 and % used >= 95 for every limit; "
          "red before orange (0 orange between the first and the last red).")
    print("near-miss<5ms: windows that are over the limit only because a message came < 5 ms before the window "
          "closed (timer jitter on zero-margin slots); they are counted as violations too.")
    bad = [r for r in rows if r[0] and r[-2] == "NO"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
