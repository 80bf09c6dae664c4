#!/usr/bin/env python
"""The 叫应 drill (SPEC section 7): 506 flood-control officials, in real time, against real limits.

    .venv/bin/python bench/drill.py [--limits voice=3/s,sms=20/s] [--recalls 1m,2m] [--final 4m45s]
                                    [--callee-spacing 0] [--timeout 480]

Modelled on 勉县 (Shaanxi): 38 county, 72 town (18 towns x 4) and 396 village (18 x 11 villages x 2)
officials, each with a phone and an IM account; every village official's superior is a town
official, every town official's a county official. A red rainstorm warning for the county starts
the plan: step 0 voice + SMS + IM to the official, voice re-calls at --recalls (default 1 and 2
minutes: three calls within 5 minutes), and the final escalation (the 未叫醒 list) at --final
(default 4 min 45 s, so that the list can meet its 5-minute bar: due at 5 min, it could only ever be
late for it) by SMS to the official's superior and the duty leader and chief. Voice is limited
to 3 calls per second (the provider's limit), SMS to 20/s, IM unlimited.

The simulated officials answer the call (a keypress: dispatcher.services.ack.acknowledge_callout):
80 % answer their first call 20-40 s after it reached them, 15 % ignore it and answer the first
re-call 20-40 s after that, 5 % never answer (a stable hash of their id decides).

Nothing is sped up: rate limits cannot be scaled meaningfully, so the drill takes the plan's own
time (~5.5 minutes). The engine runs in this process as ``jiaoying serve`` runs it
(EmbeddedRuntime: a scheduler thread ticking every second and a worker thread) on SQLite in a
temporary folder; the fake providers are the simulators' in-memory SimOutbox (each message's
arrival time is when the adapter handed it over). Every thread is stopped at the end.

Printed: the time until every first call was placed (target <= 3 min; 506 calls at 3/s need
168.3 s at best), the re-calls against their due times (lateness p50/p99/max) and, separately,
the engine's own share of every call's delay (actual time minus the earliest the 3/s limit allowed
for that call, given its due time and the calls before it), when the 未叫醒 list went out to the
superiors (target <= 5 min), and the counts of acknowledged / unreached officials.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import NOISE_NOTE, Rig, fmt, machine, pace, percentile, person, step_of, write_site  # noqa: E402
from sqlalchemy import select  # noqa: E402

from dispatcher.channels.simulator import SimSent  # noqa: E402
from dispatcher.db.session import transaction  # noqa: E402
from dispatcher.db.tables import CalloutRow  # noqa: E402
from dispatcher.domain.callouts import AckVia  # noqa: E402
from dispatcher.domain.channels import Channel  # noqa: E402
from dispatcher.domain.limits import parse_limits  # noqa: E402
from dispatcher.runtime.limits import SOLE_MARGIN as MARGIN  # noqa: E402  (the embedded worker's meter)
from dispatcher.services import ack  # noqa: E402

COUNTY = "610725"  # 勉县's code; the names are made up
TOWNS, VILLAGES_PER_TOWN, TOWN_OFFICIALS, VILLAGE_OFFICIALS, COUNTY_OFFICIALS = 18, 11, 4, 2, 38


def parse_span(text: str) -> float:
    text = text.strip()
    total, num = 0.0, ""
    for ch in text:
        if ch.isdigit():
            num += ch
        else:
            total += int(num or 0) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
    return total + (int(num) if num else 0)


def write_county(folder: Path, recalls: list[str], final: str) -> int:
    towns, people = [], []
    n = 0

    def add(pid: str, area: str, role: str, superior: str | None) -> None:
        nonlocal n
        n += 1
        people.append(person(pid, n, area, [role], im=True, superior=superior))

    people.append(person("shuji", 90001, COUNTY, ["leader"]))  # the county head's superior (not called)
    for c in range(COUNTY_OFFICIALS):
        add(f"c{c}", COUNTY, "county_official", "shuji" if c == 0 else "c0")
    for t in range(TOWNS):
        town = f"{COUNTY}{101 + t:03d}"
        villages = []
        for k in range(TOWN_OFFICIALS):
            add(f"t{t}-{k}", town, "town_official", f"c{1 + (t * TOWN_OFFICIALS + k) % (COUNTY_OFFICIALS - 1)}")
        for v in range(VILLAGES_PER_TOWN):
            village = f"{town}{201 + v:03d}"
            villages.append({"code": village, "name": f"村{t}-{v}"})
            for k in range(VILLAGE_OFFICIALS):
                add(f"v{t}-{v}-{k}", village, "village_official", f"t{t}-{(v + k) % TOWN_OFFICIALS}")
        towns.append({"code": town, "name": f"镇{t}", "children": villages})
    people.append(person("duty-leader", 90002, COUNTY, ["duty_officer"]))
    people.append(person("duty-chief", 90003, COUNTY, ["duty_officer"]))
    steps = [{"after": "0", "channels": ["voice", "sms", "im"], "to": "self"}]
    steps += [{"after": r, "channels": ["voice"], "to": "self"} for r in recalls]
    plan = {"id": "flood-red", "name": "防汛红色叫应", "match": {"hazards": ["rainstorm"], "levels": ["red"]},
            "targets": [{"roles": ["county_official", "town_official", "village_official"], "scope": "affected"}],
            "steps": steps, "final": {"after": final, "to": ["superior", "duty"], "channels": ["sms"]}}
    write_site(folder, [{"code": COUNTY, "name": "勉县(模拟)", "children": towns}],
               {"leader": "县委书记", "county_official": "县级防汛责任人", "town_official": "镇级防汛责任人",
                "village_official": "村级防汛责任人", "duty_officer": "值班员"},
               people, [plan], duty=("duty-leader", "duty-chief"), name="勉县(模拟)")
    return n


# -- the simulated officials -------------------------------------------------------------------

def temperament(pid: str) -> tuple[str, float]:
    """('first' | 'recall' | 'never', seconds until they press 1 after the call they answer)."""
    digest = hashlib.sha256(f"drill:{pid}".encode()).digest()
    roll, delay = digest[0] / 256, 20 + digest[1] / 255 * 20
    return ("first" if roll < 0.80 else "recall" if roll < 0.95 else "never"), delay


class Officials:
    """Answer their phone like people: listen to the outbox, press 1 later (in their own thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._heap: list[tuple[float, int, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-officials", daemon=True)
        self.pressed = 0
        self.errors = 0

    def __call__(self, sent: SimSent) -> None:
        m = sent.message
        if m.channel is not Channel.VOICE or m.purpose.value not in ("alert", "reminder"):
            return
        kind, delay = temperament(m.to.person_id)
        step = step_of(sent)
        if (kind == "first" and step == 0) or (kind == "recall" and step == 1):
            with self._lock:
                heapq.heappush(self._heap, (sent.at_monotonic + delay, int(m.key.split(":")[0]), m.to.person_id))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            due = []
            with self._lock:
                while self._heap and self._heap[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._heap))
            for _, callout_id, pid in due:
                try:
                    with transaction(self.url) as session:
                        ack.acknowledge_callout(session, datetime.now(UTC), callout_id,
                                                via=AckVia.VOICE, by=pid)
                    self.pressed += 1
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    self.errors += 1
                    print(f"  answer failed for {pid}: {exc!r}", file=sys.stderr)
            self._stop.wait(0.05)


# -- the run -----------------------------------------------------------------------------------

def capacity_warnings(rig: Rig) -> list[str]:
    from dispatcher.services.preview import preview
    from dispatcher.services.site import current_site

    try:
        with transaction(rig.url) as session:
            site = current_site(session)
        result = preview(site, "rainstorm", "red", [COUNTY], datetime.now().astimezone(), limits=rig.settings.limits)
        cap = result.get("capacity", {})
        return [f"first round {cap.get('first_round_seconds')} s", *cap.get("warnings", [])]
    except Exception as exc:  # noqa: BLE001
        return [f"(preview failed: {exc!r})"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limits", default="voice=3/s,sms=20/s", help="JIAOYING_RATE_LIMITS (IM unlimited)")
    parser.add_argument("--recalls", default="1m,2m", help="voice re-calls (plan steps), comma-separated")
    parser.add_argument("--final", default="4m45s", help="the final escalation (未叫醒 list to superiors + duty)")
    parser.add_argument("--callee-spacing", type=float, default=0.0, help="callee_spacing_seconds")
    parser.add_argument("--timeout", type=float, default=480.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    recalls = [r.strip() for r in args.recalls.split(",") if r.strip()]
    final_s = parse_span(args.final)
    limits = parse_limits(args.limits)
    voice_rate = limits[Channel.VOICE].per_second if Channel.VOICE in limits else float("inf")

    print(machine())
    print(NOISE_NOTE)
    with tempfile.TemporaryDirectory(prefix="jy-drill-") as tmp:
        workdir = Path(tmp)
        n = write_county(workdir / "site", recalls, args.final)
        print(f"drill: {n} officials ({COUNTY_OFFICIALS} county, {TOWNS * TOWN_OFFICIALS} town, "
              f"{TOWNS * VILLAGES_PER_TOWN * VILLAGE_OFFICIALS} village); limits {args.limits} (others unlimited); "
              f"callee spacing {args.callee_spacing:g} s; plan: voice+sms+im at 0, voice re-calls at "
              f"{', '.join(recalls)}, 未叫醒 list by SMS to superior + duty at {args.final}")
        rig = Rig(workdir / "site", rate_limits=args.limits, callee_spacing=args.callee_spacing, workdir=workdir)
        print("preview (capacity under these limits): " + " | ".join(capacity_warnings(rig)))
        officials = Officials(rig.url)
        rig.outbox.subscribe(officials)
        stopped = False
        try:
            rig.start()
            officials.start()
            t0 = rig.post("rainstorm", "red", [COUNTY], "drill")
            print(f"warning stored at t=0; running in real time for ~{final_s + 20:.0f} s ...", file=sys.stderr,
                  flush=True)
            last_report = 0.0

            def done() -> bool:
                nonlocal last_report
                elapsed = time.monotonic() - t0
                if elapsed - last_report >= 30:
                    last_report = elapsed
                    got = Counter(m.message.channel.value for m in rig.outbox.messages())
                    print(f"  t={elapsed:5.0f} s: sent {dict(got)}, answered {officials.pressed}", file=sys.stderr,
                          flush=True)
                return elapsed > final_s + 5 and rig.queued() == 0

            finished = rig.wait_until(done, args.timeout, poll=1.0)
            time.sleep(1.0)
        except KeyboardInterrupt:
            stopped, finished = True, False
        finally:
            officials.stop()
            rig.stop()
        if stopped:
            print("interrupted; threads stopped", file=sys.stderr)
            return 130
        return report(rig, t0, n, recalls, final_s, voice_rate, limits, finished, officials, args)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def report(rig: Rig, t0: float, n: int, recalls: list[str], final_s: float, voice_rate: float, limits: Any,
           finished: bool, officials: Officials, args: argparse.Namespace) -> int:
    with transaction(rig.url) as session:
        callouts = {c.id: (c.person_id, c.state, [aware(datetime.fromisoformat(s["due"])).timestamp() for s in c.steps],
                           c.started_at, aware(c.unreached_at) if c.unreached_at else None)
                    for c in session.scalars(select(CalloutRow))}
    messages = sorted(rig.outbox.messages(), key=lambda m: m.at_monotonic)
    final_index = len(recalls) + 1
    rel = lambda m: m.at_monotonic - t0  # noqa: E731

    def due_of(m: SimSent) -> float:  # monotonic
        cid = int(m.message.key.split(":")[0])
        return callouts[cid][2][step_of(m)] - rig.wall_offset

    voice = [m for m in messages if m.message.channel is Channel.VOICE]
    first_calls = [m for m in voice if step_of(m) == 0]
    recall_msgs = [m for m in voice if 0 < step_of(m) < final_index]
    finals = [m for m in messages if step_of(m) == final_index]
    step0 = {c.value: [m for m in messages if m.message.channel is c and step_of(m) == 0] for c in Channel}
    applied = min((v[2][0] for v in callouts.values()), default=float("nan")) - rig.wall_offset

    out = []
    out.append(f"\nthe warning was applied (call-outs started) {applied - t0:.2f} s after it was stored")
    out.append(f"messages: {dict(Counter(m.message.channel.value for m in messages))}; "
               f"duplicated attempt keys: {sum(1 for c in Counter(m.message.key for m in messages).values() if c > 1)}")
    for name, ms in step0.items():
        if ms:
            out.append(f"step 0 {name:5s}: {len(ms)} messages, first at {rel(ms[0]):6.2f} s, "
                       f"last at {rel(ms[-1]):6.2f} s")
    ideal_first = (len(first_calls) - 1) / voice_rate if first_calls else float("nan")
    t_first = rel(first_calls[-1]) if first_calls else float("nan")
    out.append(f"ALL FIRST CALLS PLACED: {len(first_calls)}/{n} by t = {t_first:.1f} s "
               f"(target <= 180 s: {'MET' if len(first_calls) == n and t_first <= 180 else 'NOT MET'}; "
               f"{len(first_calls)} calls at {voice_rate:g}/s take {ideal_first:.1f} s at best)")

    # re-calls against their due times
    for i, r in enumerate(recalls, start=1):
        ms = [m for m in recall_msgs if step_of(m) == i]
        late = [m.at_monotonic - due_of(m) for m in ms]
        out.append(f"re-call {i} (due at {r}): {len(ms)} calls, lateness vs due "
                   f"p50 {fmt(percentile(late, 50), '.1f')} s, "
                   f"p99 {fmt(percentile(late, 99), '.1f')} s, max {fmt(max(late, default=float('nan')), '.1f')} s; "
                   f"placed between t={fmt(rel(ms[0]) if ms else float('nan'), '.1f')} and "
                   f"{fmt(rel(ms[-1]) if ms else float('nan'), '.1f')} s")
    late_all = [m.at_monotonic - due_of(m) for m in recall_msgs]
    out.append(f"all re-calls: {len(recall_msgs)}, lateness p50 {fmt(percentile(late_all, 50), '.1f')} s, "
               f"p99 {fmt(percentile(late_all, 99), '.1f')} s, max {fmt(max(late_all, default=float('nan')), '.1f')} s")

    # the engine's own share: actual minus the earliest the voice limit allowed (FIFO in the order sent)
    if voice:
        spacing = 1 / voice_rate if voice_rate != float("inf") else 0.0
        ideal_prev = float("-inf")
        last_call: dict[str, float] = {}
        engine_delay = []
        for m in voice:
            ready = due_of(m)
            if args.callee_spacing:
                ready = max(ready, last_call.get(m.message.to.person_id, float("-inf")) + args.callee_spacing)
            ideal = max(ready, ideal_prev + spacing)
            engine_delay.append(m.at_monotonic - ideal)
            ideal_prev = ideal
            last_call[m.message.to.person_id] = m.at_monotonic
        out.append(f"engine's own share of each call's delay (actual - earliest the {voice_rate:g}/s limit allowed, "
                   f"{len(voice)} calls): p50 {percentile(engine_delay, 50):.2f} s, "
                   f"p99 {percentile(engine_delay, 99):.2f} s, "
                   f"max {max(engine_delay):.2f} s")
        # The same against the rate the meter deliberately paces at (MARGIN under the limit): what is
        # left is the engine's overhead; the difference is the margin's share, which grows along a queue.
        paced = _shares(voice, due_of, voice_rate * MARGIN, args.callee_spacing)
        out.append(f"  of which beyond the paced rate ({voice_rate * MARGIN:.2f}/s, {MARGIN:.0%} of the limit): "
                   f"p50 {percentile(paced, 50):.2f} s, p99 {percentile(paced, 99):.2f} s, max {max(paced):.2f} s")
        # Where the calls fell behind: the longest pauses between two calls while calls were due.
        pauses = sorted(((b.at_monotonic - a.at_monotonic, rel(a), step_of(a), step_of(b))
                         for a, b in zip(voice, voice[1:], strict=False) if due_of(b) < a.at_monotonic), reverse=True)
        slot = 1 / (voice_rate * MARGIN)
        long_ones = [p for p in pauses if p[0] >= 1.5 * slot]  # a slot or more went unused
        out.append(f"  pauses of 1.5 slots or more while calls were due: {len(long_ones)}"
                   + (": longest " + ", ".join(f"{gap * 1000:.0f} ms at t={at:.1f} s (step {s1}->{s2})"
                                               for gap, at, s1, s2 in long_ones[:5]) if long_ones else ""))
        if Channel.VOICE in limits:
            lim = limits[Channel.VOICE]
            p = pace([m.at_monotonic for m in voice], lim.count, lim.per_seconds)
            out.append(f"voice pacing: {p.n} calls, worst 1-s window {p.worst}/{int(lim.count)}, "
                       f"{p.violations} window violations ({p.near_misses} of them by < 5 ms), min gap "
                       f"{p.min_gap * 1000:.1f} ms; while saturated (first {len(first_calls)} calls) "
                       f"{pace([m.at_monotonic for m in first_calls], lim.count, lim.per_seconds).used_pct:.1f} % "
                       f"of the limit used")

    # the 未叫醒 list
    states = Counter(v[1] for v in callouts.values())
    unreached_at = [v[4].timestamp() - rig.wall_offset for v in callouts.values() if v[4] is not None]
    if finals:
        t_list = rel(finals[-1])
        late_f = [m.at_monotonic - due_of(m) for m in finals]
        out.append(f"未叫醒 LIST: {states.get('unreached', 0)} officials marked unreached between "
                   f"t={min(unreached_at) - t0:.1f} and {max(unreached_at) - t0:.1f} s; {len(finals)} SMS to "
                   f"superiors + duty from t={rel(finals[0]):.1f} to {t_list:.1f} s (due at {final_s:g} s; lateness "
                   f"max {max(late_f):.1f} s); target <= 300 s: {'MET' if t_list <= 300 else 'NOT MET'}")
    else:
        out.append("未叫醒 LIST: no final-escalation message went out")
    kinds = Counter(temperament(v[0])[0] for v in callouts.values())
    out.append(f"officials: {len(callouts)} call-outs; states {dict(states)}; simulated temperaments {dict(kinds)}; "
               f"answers pressed {officials.pressed} (failed {officials.errors})")
    if not finished:
        out.append(f"WARNING: not finished within --timeout {args.timeout:g} s")
    print("\n".join(out))
    return 0 if finished else 1


def _shares(voice: list[Any], due_of: Any, rate: float, callee_spacing: float) -> list[float]:
    """Each call's delay beyond the earliest ``rate`` allowed it (FIFO in the order sent)."""
    spacing = 1 / rate if rate != float("inf") else 0.0
    ideal_prev, last_call, shares = float("-inf"), {}, []
    for m in voice:
        ready = due_of(m)
        if callee_spacing:
            ready = max(ready, last_call.get(m.message.to.person_id, float("-inf")) + callee_spacing)
        ideal = max(ready, ideal_prev + spacing)
        shares.append(m.at_monotonic - ideal)
        ideal_prev = ideal
        last_call[m.message.to.person_id] = m.at_monotonic
    return shares


if __name__ == "__main__":
    sys.exit(main())
