#!/usr/bin/env python
"""What a scheduler pass costs when there is nothing to do, and what a warning that calls nobody costs.

    .venv/bin/python bench/passes.py [--officials 10000] [--passes 60] [--warnings 20] [--rounds 2]

During a fan-out the scheduler is rung by every posted warning (bench/carriers.py's intake probe
posts one every 100 ms) and by every step brought forward; each ring runs a pass (Engine.tick with
``rung=True``), which does what new work calls for and leaves what only the clock brings about to a
pass at most a second after the last one that did it (docs/engine.md). This measures, on a throw-away
PostgreSQL (tests/support/servers.py) holding a synthetic county (tests/support/bigsite.py):

- ``--passes`` empty passes in a row, as the interval runs them (rung=False) and as a ring does
  (rung=True), alternating ``--rounds`` times: this process's CPU and PostgreSQL's per pass;
- ``--warnings`` blue warnings (no plan matches blue: nobody is called) stored, then applied by one
  pass: CPU per warning.

The engine runs in this process with the services' collector settings (gcpause.tune_for_service).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from _common import fmt, machine, render  # noqa: E402
from fanout import cpu_seconds  # noqa: E402  (bench/fanout.py: a process tree's CPU, reaped children included)

from dispatcher.config import Settings  # noqa: E402
from dispatcher.db.migrate import upgrade  # noqa: E402
from dispatcher.db.session import transaction  # noqa: E402
from dispatcher.gcpause import tune_for_service  # noqa: E402
from dispatcher.intake.schema import parse_warning_dict  # noqa: E402
from dispatcher.runtime.engine import Engine  # noqa: E402
from dispatcher.services.intake import receive_warning  # noqa: E402
from dispatcher.services.site import load_site_files  # noqa: E402
from tests.support.bigsite import COUNTY, write_big_site  # noqa: E402
from tests.support.servers import start_postgres  # noqa: E402


def store_blue(url: str, n: int, tag: str) -> None:
    with transaction(url) as session:
        for i in range(n):
            now = datetime.now(UTC)
            body = {"sender": "big-qx", "identifier": f"{tag}-{i}", "hazard": "rainstorm", "level": "blue",
                    "areas": [COUNTY], "headline": "大县气象台发布暴雨蓝色预警信号", "sent": now.isoformat()}
            receive_warning(session, parse_warning_dict(body), key=None, source_format="json",
                            raw=json.dumps(body), now=now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--officials", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=60)
    parser.add_argument("--warnings", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(machine())
    tune_for_service()
    server = start_postgres()
    rows = [("what", "round", "n", "scheduler CPU ms", "PostgreSQL CPU ms")]
    try:
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_passes")
        url = server.url("bench_passes")
        upgrade(url)
        folder = Path(tempfile.mkdtemp(prefix="jy-bench-passes-"))
        write_big_site(folder, args.officials)
        with transaction(url) as session:
            load_site_files(session, folder, datetime.now(UTC))
        engine = Engine(Settings(database_url=url), lambda: datetime.now(UTC), lambda: {}, name="bench")
        try:
            engine.tick()  # the site read, the first heartbeat
            for n in range(1, args.rounds + 1):
                for rung in (False, True):
                    cpu, db = time.process_time(), cpu_seconds([server.process.pid])
                    for _ in range(args.passes):
                        engine.tick(rung=rung)
                    rows.append(("empty pass, " + ("rung" if rung else "by the interval"), str(n), str(args.passes),
                                 fmt(1e3 * (time.process_time() - cpu) / args.passes),
                                 fmt(1e3 * (cpu_seconds([server.process.pid]) - db) / args.passes)))
                store_blue(url, args.warnings, f"BLUE-{n}")
                cpu, db = time.process_time(), cpu_seconds([server.process.pid])
                applied = engine.tick(rung=True).applied
                rows.append(("a warning calling nobody, applied", str(n), str(applied),
                             fmt(1e3 * (time.process_time() - cpu) / max(1, applied)),
                             fmt(1e3 * (cpu_seconds([server.process.pid]) - db) / max(1, applied))))
        finally:
            engine.close()
    finally:
        server.stop()
    print(render(rows))


if __name__ == "__main__":
    main()
