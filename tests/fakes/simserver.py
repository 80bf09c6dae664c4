"""A loopback provider for the simulator's endpoint mode: minimal HTTP/1.1 with keep-alive on
``asyncio.start_server``, fast enough for tens of thousands of requests a second.

    POST /            JSON {"key", "channel", "to", "purpose", "text"} -> {"id": "<seq>"}
    GET  /?key=K      {"id": ...} of the first message with that key, or 404
    GET  /stats       {"received": N, "unique": M, "duplicates": [keys sent more than once]}
    GET  /timing      {"received": N, "unique": M, "first_at": t, "last_new_at": t} — wall-clock
                      (time.time()) of the first message and of the last first-time key, for benchmarks
    GET  /arrivals    {"keys": {key: [t, ...]}} — wall clock (time.time()) at which each message with
                      that key arrived (read off the socket, before any latency): faults/benchmarks
    POST /fault       {"status": 500|429|..., "count": N, "retry_after": s} or {"hang": true, "count": N}
    POST /latency     {"min": s, "max": s}: every later POST / waits a uniformly random time in that
                      range before it is answered (and recorded), like a slow provider's API
    POST /outage      {"seconds": S, "status": 503} answers every request but the control paths with
                      that status for S seconds; {"seconds": S, "drop": true} closes each connection
                      unanswered instead (the provider unreachable); {"seconds": 0} ends it
    POST /reset       forget everything (the latency and any outage included)

In a test: ``server = SimServer(); url = server.start(); ...; server.stop()``.
As a process: ``python -m tests.fakes.simserver --port P`` (prints its URL on the first line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
CONTROL_PATHS = ("/stats", "/timing", "/arrivals", "/fault", "/latency", "/outage", "/reset")


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # None: hang (answer nothing, then drop the connection)
    retry_after: float | None = None
    record: bool = False  # a hang that still keeps the message: the "sent, answer lost" case


class SimState:
    """What the server received, and the faults queued for the next requests. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._received: list[dict[str, Any]] = []
            self._counts: Counter[str] = Counter()
            self._ids: dict[str, str] = {}
            self._seq = 0
            self._faults: list[Fault] = []
            self._first_at: float | None = None
            self._last_new_at: float | None = None
            self._arrivals: dict[str, list[float]] = {}
            self._outage: tuple[float, int | None] | None = None  # (until, status); None status: drop

    def add(self, message: dict[str, Any], arrived: float | None = None) -> str:
        with self._lock:
            self._seq += 1
            key, provider_id = str(message["key"]), str(self._seq)
            self._received.append(message)
            self._arrivals.setdefault(key, []).append(time.time() if arrived is None else arrived)
            if not self._counts[key]:
                self._last_new_at = time.time()
                if self._first_at is None:
                    self._first_at = self._last_new_at
            self._counts[key] += 1
            self._ids.setdefault(key, provider_id)
            return provider_id

    def id_for(self, key: str) -> str | None:
        with self._lock:
            return self._ids.get(key)

    def queue_faults(self, fault: Fault, count: int) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def start_outage(self, seconds: float, status: int | None) -> None:
        with self._lock:
            self._outage = (time.monotonic() + seconds, status) if seconds > 0 else None

    def outage(self) -> Fault | None:
        """The fault every request meets while an outage lasts (a drop is a hang of no length)."""
        with self._lock:
            if self._outage is None:
                return None
            until, status = self._outage
            if time.monotonic() >= until:
                self._outage = None
                return None
            return Fault(status)

    def arrivals(self) -> dict[str, list[float]]:
        with self._lock:
            return {key: list(times) for key, times in self._arrivals.items()}

    @property
    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._received)

    @property
    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"received": len(self._received), "unique": len(self._counts),
                    "duplicates": sorted(k for k, n in self._counts.items() if n > 1)}

    def timing(self) -> dict[str, Any]:
        """Cheap to poll: no copies, no sorting."""
        with self._lock:
            return {"received": len(self._received), "unique": len(self._counts),
                    "first_at": self._first_at, "last_new_at": self._last_new_at}


class SimServer:
    def __init__(self, port: int = 0, hang_seconds: float = 30.0, latency: float = 0.0) -> None:
        self.port = port
        self.hang_seconds = hang_seconds
        self.latency = latency  # seconds each POST takes, like a provider's API round trip
        self.latency_range: tuple[float, float] | None = None  # POST /latency: random in [min, max]
        self.state = SimState()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def received(self) -> list[dict[str, Any]]:
        return self.state.received

    @property
    def counts(self) -> Counter[str]:
        return self.state.counts

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def fail_next(self, n: int = 1, status: int = 500, retry_after: float | None = None) -> None:
        self.state.queue_faults(Fault(status, retry_after), n)

    def hang_next(self, n: int = 1, *, record: bool = False) -> None:
        self.state.queue_faults(Fault(None, record=record), n)

    def set_latency(self, low: float, high: float | None = None) -> None:
        """Every later POST waits a random time in [low, high] (``low`` alone: exactly that)."""
        high = low if high is None else high
        self.latency_range = (low, high) if high else None

    def outage(self, seconds: float, status: int | None = 503) -> None:
        """For ``seconds``, answer everything but the control paths with ``status`` (None: drop)."""
        self.state.start_outage(seconds, status)

    def arrivals(self) -> dict[str, list[float]]:
        return self.state.arrivals()

    # -- running in a background thread ---------------------------------------------------------

    def start(self) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(ready.set))
            except BaseException as exc:  # surfaced to start() below
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="simserver", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError("simserver did not start") from (failure[0] if failure else None)
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    # -- the server itself ----------------------------------------------------------------------

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until ``stop()`` (or ``request_stop()`` from the loop's own thread)."""
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._connection, HOST, self.port, backlog=2048)
        self.port = server.sockets[0].getsockname()[1]
        if on_ready is not None:
            on_ready()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        except asyncio.CancelledError:
            # Only serve() cancels, at shutdown; Python 3.11's stream callback would log a re-raise.
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection should close."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"

        arrived = time.time()
        url = urlsplit(target)
        control = url.path in CONTROL_PATHS
        outage = None if control else self.state.outage()
        if outage is not None and outage.status is None:
            return False  # dropped: the connection closes unanswered
        fault = outage or (None if control else self.state.next_fault())
        if fault is not None and fault.status is None:
            if fault.record and method == "POST":
                self._route(method, url.path, url.query, body, arrived)
            await asyncio.sleep(self.hang_seconds)
            return False
        if fault is not None:
            assert fault.status is not None
            extra = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            writer.write(_response(fault.status, {"error": "injected fault"}, extra, keep_alive))
        else:
            if method == "POST" and url.path == "/":
                delay = random.uniform(*self.latency_range) if self.latency_range else self.latency
                if delay:
                    await asyncio.sleep(delay)
            status, payload = self._route(method, url.path, url.query, body, arrived)
            writer.write(_response(status, payload, {}, keep_alive))
        await writer.drain()
        return keep_alive

    def _route(self, method: str, path: str, query: str, body: bytes,
               arrived: float | None = None) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/stats":
            return 200, self.state.stats()
        if method == "GET" and path == "/timing":
            return 200, self.state.timing()
        if method == "GET" and path == "/arrivals":
            return 200, {"keys": self.state.arrivals()}
        if method == "POST" and path == "/reset":
            self.state.reset()
            self.latency_range = None
            return 200, {"ok": True}
        if method == "POST" and path == "/fault":
            return self._fault(body)
        if method == "POST" and path == "/latency":
            return self._latency(body)
        if method == "POST" and path == "/outage":
            return self._outage(body)
        if method == "POST":
            message = _json_object(body)
            if message is None or not isinstance(message.get("key"), str) or not message["key"]:
                return 400, {"error": "expected a JSON object with a non-empty 'key'"}
            return 200, {"id": self.state.add(message, arrived)}
        if method == "GET":
            key = parse_qs(query).get("key", [""])[0]
            found = self.state.id_for(key) if key else None
            return (200, {"id": found}) if found else (404, {"error": "unknown key"})
        return 405, {"error": f"method {method} not allowed"}

    def _fault(self, body: bytes) -> tuple[int, dict[str, Any]]:
        spec = _json_object(body) or {}
        count = int(spec.get("count", 1))
        if spec.get("hang"):
            self.state.queue_faults(Fault(None, record=bool(spec.get("record"))), count)
        else:
            retry_after = spec.get("retry_after")
            self.state.queue_faults(Fault(int(spec.get("status", 500)), None if retry_after is None
                                          else float(retry_after)), count)
        return 200, {"queued": count}

    def _latency(self, body: bytes) -> tuple[int, dict[str, Any]]:
        spec = _json_object(body) or {}
        try:
            low = float(spec.get("min", 0.0))
            high = float(spec.get("max", low))
        except (TypeError, ValueError):
            return 400, {"error": "min and max must be numbers of seconds"}
        if not 0 <= low <= high <= 60:
            return 400, {"error": "expected 0 <= min <= max <= 60"}
        self.latency_range = (low, high) if high else None
        return 200, {"min": low, "max": high}

    def _outage(self, body: bytes) -> tuple[int, dict[str, Any]]:
        spec = _json_object(body) or {}
        try:
            seconds = float(spec.get("seconds", 0))
            status = None if spec.get("drop") else int(spec.get("status", 503))
        except (TypeError, ValueError):
            return 400, {"error": "seconds must be a number, status a whole number"}
        if not 0 <= seconds <= 3600 or (status is not None and not 400 <= status <= 599):
            return 400, {"error": "expected 0 <= seconds <= 3600 and an error status (400-599)"}
        self.state.start_outage(seconds, status)
        return 200, {"seconds": seconds, "status": status}


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _response(status: int, payload: dict[str, Any], headers: dict[str, str], keep_alive: bool) -> bytes:
    body = json.dumps(payload, ensure_ascii=False).encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _main(port: int) -> None:
    server = SimServer(port)
    loop = asyncio.get_running_loop()

    def ready() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_stop)
        print(server.url, flush=True)

    await server.serve(ready)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback fake provider for the simulator adapters.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.port))


if __name__ == "__main__":
    main()
