#!/usr/bin/env python
"""Period assessment (考核) benchmark: a county's year of call-outs, and the time to assess it.

    .venv/bin/python bench/assessment.py [--callouts 100000] [--postgres] [--repeat 3]

Loads the sample county (rosters/qingxi, 142 officials) into a fresh SQLite database (with
--postgres: a PostgreSQL server started for the run on 127.0.0.1, stopped by PID at the end),
writes ``--callouts`` call-outs spread over 2026 in warnings of ~250 call-outs each (5 % drills;
acknowledged after 1-60 minutes, some by the deputy or a duty officer, some unreached, expired or
cancelled), then times ``services.assessment.assess`` over the whole year and the .xlsx and CSV
exports of the result. Target: the assessment under 2 s for 100,000 call-outs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from dispatcher.db.migrate import upgrade  # noqa: E402
from dispatcher.db.session import engine_for, transaction  # noqa: E402
from dispatcher.db.tables import CalloutRow, WarningRow  # noqa: E402
from dispatcher.services.assessment import assess, to_csv, to_xlsx  # noqa: E402
from dispatcher.services.site import current_site, load_site_files  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PER_WARNING = 250


def generate(url: str, callouts: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with transaction(url) as session:
        load_site_files(session, ROOT / "rosters" / "qingxi", start)
        people = sorted(current_site(session).people)
    n_warnings = max(1, callouts // PER_WARNING)
    written = 0
    for w in range(n_warnings):
        sent = start + timedelta(seconds=rnd.uniform(0, 364 * 86400))
        wid = f"W{w:06d}"
        drill = rnd.random() < 0.05
        count = callouts - written if w == n_warnings - 1 else PER_WARNING
        rows = []
        for i in range(count):
            person = people[(w * 37 + i) % len(people)]
            started = sent + timedelta(seconds=rnd.uniform(0, 120))
            roll = rnd.random()
            acked = by = via = unreached = None
            if roll < 0.80:
                state = "acknowledged"
                acked = started + timedelta(seconds=rnd.expovariate(1 / 420))
                by, via = (person, "sms") if rnd.random() < 0.9 else ("user:duty1", "manual")
            elif roll < 0.88:
                state, unreached = "unreached", started + timedelta(minutes=15)
            elif roll < 0.93:
                state = "cancelled"
            elif roll < 0.98:
                state = "expired"
            else:
                state = "notified"
            rows.append({"warning_id": wid, "record_id": wid, "person_id": person, "plan_id": "bench",
                         "hazard": "rainstorm", "level": "red", "priority": 4, "drill": drill, "reason": "",
                         "state": state, "steps": [], "next_step": 4, "next_due": None, "ack_code": f"{i % 10000:04d}",
                         "started_at": started, "notified_at": started, "acknowledged_at": acked,
                         "acknowledged_by": by, "ack_via": via, "unreached_at": unreached, "closed_at": acked})
        with transaction(url) as session:
            session.execute(insert(WarningRow), [{
                "id": wid, "sender": "bench", "identifier": wid, "msg_type": "alert", "references": [],
                "hazard": "rainstorm", "level": "red", "areas": ["330599"], "headline": "暴雨红色预警",
                "sent": sent, "drill": drill, "status": "expired", "received_at": sent, "source_format": "json",
                "applied_at": sent}])
            session.execute(insert(CalloutRow), rows)
        written += count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callouts", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help="on a PostgreSQL server started for the run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: nproc {os.cpu_count()}; figures are noisy on shared cores")
    server = None
    with tempfile.TemporaryDirectory(prefix="jy-assess-") as tmp:
        if args.postgres:
            from tests.support.servers import start_postgres

            server = start_postgres()
            url = server.url()
        else:
            url = f"sqlite:///{tmp}/assess.db"
        try:
            upgrade(url)
            t0 = time.perf_counter()
            generate(url, args.callouts)
            print(f"{'PostgreSQL' if server else 'SQLite'}: {args.callouts:,} call-outs written in "
                  f"{time.perf_counter() - t0:.1f} s")
            times, cpu, exports = [], [], []
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                with transaction(url, write=False) as session:
                    report = assess(session, current_site(session), date(2026, 1, 1), date(2026, 12, 31))
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                t0 = time.perf_counter()
                book, text = to_xlsx(report), to_csv(report)
                exports.append(time.perf_counter() - t0)
            total = report.real.total.callouts + report.drills.total.callouts
            print(f"assessed {total:,} call-outs (cancelled left out) of {report.real.total.warnings} warnings "
                  f"and {report.drills.total.warnings} drills, {len(report.real.by_person)} people")
            print(f"assess 2026-01-01..2026-12-31: median {statistics.median(times):.2f} s "
                  f"(runs: {', '.join(f'{t:.2f}' for t in times)}; this process's CPU: median "
                  f"{statistics.median(cpu):.2f} s); target < 2 s")
            print(f"exports (.xlsx {len(book) // 1024} KiB + CSV {len(text.encode()) // 1024} KiB): "
                  f"median {statistics.median(exports):.2f} s")
        finally:
            engine_for(url).dispose()
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
