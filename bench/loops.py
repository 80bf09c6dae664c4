#!/usr/bin/env python
"""The engine's HTTP sending on asyncio's and on uvloop's event loop: CPU per post.

    .venv/bin/python bench/loops.py [--posts 10000] [--pairs 3] [--concurrency 64]

A worker hands IM and webhook messages over one HTTP POST each (``channels.http.LoopSession``, an
aiohttp session in the engine's own event loop); in a 10,000-official fan-out those posts are the
biggest share of a worker's CPU. This sends ``--posts`` JSON bodies shaped like the simulator
channel's (``channels.simulator``) to the simulator server (``python -m tests.fakes.simserver`` in
a process of its own, on 127.0.0.1), ``--concurrency`` at a time as ``dispatch.deliver`` does, on
each kind of loop in turn (``--pairs`` times, alternating, so that a change of the machine's state
falls on both), and prints this process's user+system CPU per post and the wall time. 200 posts
warm each loop's session before the measurement. Nothing but loopback traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import fmt, machine, render  # noqa: E402

from dispatcher.channels.http import LoopSession  # noqa: E402
from dispatcher.runtime.engine import event_loop  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

WARM_UP = 200
TEXT = "【青溪县应急管理局】青溪县气象台发布暴雨红色预警信号，请立即回复“收到”或点击链接确认。"


async def _send(url: str, posts: int, concurrency: int, tag: str) -> tuple[float, float]:
    session = LoopSession(10.0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            body = {"key": f"{tag}:{i}", "channel": "im", "to": f"p{i}", "purpose": "alert", "text": TEXT}
            reply = await session.request("POST", url, data=json.dumps(body, ensure_ascii=False).encode(),
                                          headers={"Content-Type": "application/json"})
            if reply.status_code >= 300:
                raise RuntimeError(f"the simulator answered {reply.status_code}")

    try:
        await asyncio.gather(*(one(i) for i in range(-WARM_UP, 0)))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(posts)))
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await session.aclose()


def measure(kind: str, url: str, posts: int, concurrency: int, run: int) -> tuple[float, float]:
    loop = event_loop() if kind == "uvloop" else asyncio.new_event_loop()
    if kind == "uvloop" and type(loop).__module__.split(".")[0] != "uvloop":
        raise SystemExit("uvloop is not installed: the engine runs on asyncio's loop here")
    try:
        return loop.run_until_complete(_send(url, posts, concurrency, f"{kind}-{run}-{time.time()}"))
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(machine())
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.fakes.simserver", "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    rows = [("run", "loop", "posts", "CPU us/post", "wall s")]
    try:
        import urllib.request

        for _ in range(150):
            try:
                urllib.request.urlopen(f"{url}timing", timeout=1).close()  # noqa: S310 - loopback only
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the simulator server did not start")
        for run in range(1, args.pairs + 1):
            for kind in ("asyncio", "uvloop"):
                cpu, wall = measure(kind, url, args.posts, args.concurrency, run)
                rows.append((str(run), kind, str(args.posts), fmt(cpu / args.posts * 1e6, ".0f"), fmt(wall)))
                print(f"  run {run} {kind}: {cpu / args.posts * 1e6:.0f} us CPU a post, {wall:.2f} s", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(render(rows))


if __name__ == "__main__":
    main()
