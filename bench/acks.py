"""Acknowledgements through the real webhook endpoint: a burst of signed SMS replies.

A `jiaoying serve` process (embedded: SQLite, its own worker and scheduler) with a synthetic county,
a red warning to every official, and once step 0 is out every official replies "收到" at once: each
reply a signed POST to /webhooks/twilio/sms from a client on loopback, ``--concurrency`` in flight.
Prints replies per second, the answer's p50/p99, and how many call-outs were acknowledged; then
how long after the burst the last reminder that was still queued had been cancelled (an answer
stops that official's pending steps).

    .venv/bin/python bench/acks.py [--officials 1500] [--concurrency 64] [--database URL]

Loopback only; bounded in count and time; stops the server by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import machine, percentile  # noqa: E402
from dispatcher.db.migrate import upgrade  # noqa: E402
from dispatcher.db.session import transaction  # noqa: E402
from dispatcher.db.tables import CalloutRow  # noqa: E402
from dispatcher.services.keys import create_key  # noqa: E402
from dispatcher.services.site import current_site, load_site_files  # noqa: E402
from tests.support.bigsite import write_big_site  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

TOKEN = "bench-twilio-auth-token-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--officials", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="jy-bench-acks-"))
    url = args.database or f"sqlite:///{work / 'acks.db'}"
    upgrade(url)
    site = work / "site"
    write_big_site(site, args.officials)
    with transaction(url) as session:
        load_site_files(session, site, _now())
        _, key = create_key(session, "qingxi-qx", _now())
        phones = sorted({p.phone for p in current_site(session).people.values() if p.phone})
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {**os.environ, "JIAOYING_DATABASE_URL": url, "JIAOYING_SECRET_KEY": secrets.token_urlsafe(32),
           "JIAOYING_PUBLIC_URL": public, "JIAOYING_TWILIO_AUTH_TOKEN": TOKEN}
    server = subprocess.Popen([sys.executable, "-m", "dispatcher", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: httpx.get(f"{public}/healthz", timeout=1).status_code == 200, 60, "the server")
        posted = httpx.post(f"{public}/api/v1/warnings", headers={"Authorization": f"Bearer {key}"}, json={
            "sender": "qingxi-qx", "identifier": f"ACKS-{time.time_ns()}", "hazard": "rainstorm", "level": "red",
            "areas": ["330599"], "headline": "压测：暴雨红色预警", "sent": _now().isoformat()}, timeout=30)
        assert posted.status_code == 202, posted.text
        _wait(lambda: 0 < _count(url, ("notified",)) == _count(url, ("pending", "notified")), 120,
              "step 0 to every official")
        called = _count(url, ("notified",))
        timings = asyncio.run(_burst(public, phones, args.concurrency))
        elapsed = timings.pop()
        acknowledged = _count(url, ("acknowledged",))
        print(f"replies: {len(phones)} with {args.concurrency} in flight, "
              f"{len(phones) / elapsed:.0f} per second ({elapsed:.2f} s); answer p50 "
              f"{percentile(timings, 0.5) * 1000:.0f} ms, p99 {percentile(timings, 0.99) * 1000:.0f} ms; "
              f"acknowledged {acknowledged} of {called} call-outs")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


async def _burst(public: str, phones: list[str], concurrency: int) -> list[float]:
    """aiohttp, not httpx: on this machine httpx's client tops out near 300 requests a second even
    against a trivial server, which would measure the client, not the webhook."""
    import aiohttp

    url = f"{public}/webhooks/twilio/sms"
    validator = RequestValidator(TOKEN)
    gate = asyncio.Semaphore(concurrency)
    timings: list[float] = []
    forms = [{"MessageSid": f"SM{i:032d}", "AccountSid": "AC" + "0" * 32, "From": phone, "To": "+15005550006",
              "Body": "收到"} for i, phone in enumerate(phones)]
    signed = [(form, {"X-Twilio-Signature": validator.compute_signature(url, form)}) for form in forms]

    async def reply(session: aiohttp.ClientSession, form: dict[str, str], headers: dict[str, str]) -> None:
        async with gate:
            started = time.perf_counter()
            async with session.post(url, data=form, headers=headers) as answer:
                await answer.read()
                assert answer.status == 200, answer.status
            timings.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(reply(session, form, headers) for form, headers in signed))
        timings.append(time.perf_counter() - started)
    return timings


def _count(url: str, states: tuple[str, ...]) -> int:
    with transaction(url, write=False) as session:
        return session.scalar(select(func.count()).where(CalloutRow.state.in_(states))) or 0


def _wait(done, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if done():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


if __name__ == "__main__":
    main()
