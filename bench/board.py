#!/usr/bin/env python
"""Board benchmark (issue 5): one warning with 2,000 call-outs.

    .venv/bin/python bench/board.py [--officials 2000]

Prints the per-warning board's first render time (server time to the last byte, over a real
HTTP connection to uvicorn on 127.0.0.1) and size, and for live updates: how long after an
acknowledgement the SSE event arrives, and how many bytes it carries compared with the page —
the stream must send the changed rows, not the whole table. Embedded mode, SQLite, in-memory
simulators; everything in a temporary folder and stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from dispatcher.api.app import create_app  # noqa: E402
from dispatcher.channels.registry import build_adapters  # noqa: E402
from dispatcher.channels.simulator import SimOutbox  # noqa: E402
from dispatcher.config import Settings  # noqa: E402
from dispatcher.db.migrate import upgrade  # noqa: E402
from dispatcher.db.session import transaction  # noqa: E402
from dispatcher.domain.callouts import AckVia  # noqa: E402
from dispatcher.runtime.engine import Engine  # noqa: E402
from dispatcher.services import ack  # noqa: E402
from dispatcher.services.keys import create_key  # noqa: E402
from dispatcher.services.site import load_site_files  # noqa: E402
from dispatcher.services.users import Role, create_user  # noqa: E402
from tests.support.bigsite import write_big_site  # noqa: E402

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--officials", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: nproc {os.cpu_count()}; figures are noisy on 2 shared cores")
    with tempfile.TemporaryDirectory(prefix="jy-board-") as tmp:
        site = Path(tmp) / "site"
        n = write_big_site(site, args.officials)
        settings = Settings(database_url=f"sqlite:///{tmp}/board.db", public_url="http://127.0.0.1")
        upgrade(settings.database_url)
        now = lambda: datetime.now(UTC)  # noqa: E731
        with transaction(settings.database_url) as session:
            load_site_files(session, site, now())
            _, token = create_key(session, "qingxi-qx", now())
            create_user(session, "duty", Role.OFFICER, "correct horse battery", now())
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings, clock=now), host="127.0.0.1", port=port,
                                               log_level="warning", timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        engine = Engine(settings, now, lambda: build_adapters(settings, SimOutbox()))
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                wid = client.post("/api/v1/warnings", headers={"Authorization": f"Bearer {token}"}, json={
                    "sender": "qingxi-qx", "identifier": "B-1", "hazard": "rainstorm", "level": "red",
                    "areas": ["330599"], "headline": "暴雨红色预警", "sent": now().isoformat()}).json()["id"]
                engine.tick()
                engine.drain()
                login = client.get("/board/login")
                client.post("/board/login", data={"name": "duty", "password": "correct horse battery",
                                                  "csrf": CSRF.search(login.text).group(1)})
                times, size = [], 0
                for _ in range(5):
                    started = time.perf_counter()
                    page = client.get(f"/board/warnings/{wid}")
                    times.append(time.perf_counter() - started)
                    size = len(page.content)
                rows = page.text.count('<tr id="c-')
                print(f"call-outs: {n}; board page: {size / 1024:.0f} KiB, rows rendered {rows}")
                print(f"first render: median {statistics.median(times) * 1000:.0f} ms, "
                      f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms (target < 1000 ms)")
                held = re.search(r'data-held="([^"]+)"', page.text)
                measure_live(client, base, settings, wid, size, now, held.group(1) if held else "")
        finally:
            engine.close()
            server.should_exit = True
            thread.join(timeout=10)


def measure_live(client: httpx.Client, base: str, settings: Settings, wid: str, page_size: int, now,
                 held: str) -> None:
    """Connect as the page does (``since`` = the version of the rows the page holds), then
    acknowledge three call-outs one by one and time each one's event."""
    from sqlalchemy import select

    from dispatcher.db.tables import CalloutRow

    with transaction(settings.database_url) as session:
        ids = list(session.scalars(select(CalloutRow.id).order_by(CalloutRow.id).limit(3)))
    events: list[tuple[float, int]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=base, cookies=client.cookies, timeout=30) as sse, \
                sse.stream("GET", f"/board/warnings/{wid}/live", params={"since": held}) as stream:
            ready.set()
            buffer = ""
            for chunk in stream.iter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    message, buffer = buffer.split("\n\n", 1)
                    if "\nevent: board\n" in f"\n{message}\n":
                        events.append((time.perf_counter(), len(message.encode())))
                        if len(events) >= 1 + len(ids):
                            return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    time.sleep(1.5)  # the stream's first event (changes since the page was rendered, if any)
    lat, sizes = [], []
    for callout_id in ids:
        before = len(events)
        started = time.perf_counter()
        with transaction(settings.database_url) as session:
            ack.acknowledge_callout(session, now(), callout_id, via=AckVia.MANUAL, by="bench", note="基准测试")
        deadline = time.perf_counter() + 10
        while len(events) == before and time.perf_counter() < deadline:
            time.sleep(0.01)
        if len(events) > before:
            lat.append(events[-1][0] - started)
            sizes.append(events[-1][1])
    listener.join(timeout=5)
    first = events[0][1] if events else 0
    print(f"live: first event after connecting {first / 1024:.1f} KiB; per acknowledgement: event after "
          f"{statistics.median(lat) * 1000:.0f} ms (max {max(lat) * 1000:.0f} ms, target < 1000 ms), "
          f"{statistics.median(sizes) / 1024:.1f} KiB ({100 * statistics.median(sizes) / page_size:.1f} % of the page)")


if __name__ == "__main__":
    main()
