"""A loopback fake as a process of its own (its own GIL, as a real provider would be): the shared
``main`` of ``python -m tests.fakes.aliyun_server`` and ``python -m tests.fakes.tencent_server``."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit


class Served(Protocol):
    def start(self, port: int = 0) -> str: ...

    def stop(self) -> None: ...


class ServedProcess(ABC):
    """What a fake needs as a process of its own, mixed in before the fake's class: TCP_NODELAY on its
    connections, its own handling time per request (``_handled``), and the read-only ``GET /_fake/…``
    paths answered by the subclass's ``_introspect``. The fake provides ``_server``, ``_lock`` and
    ``_handle``; the subclass sets ``self._handled = []``."""

    _server: Any
    _lock: Any
    _handled: list[float]

    def start(self, port: int = 0) -> str:
        url = super().start(port)  # type: ignore[misc]
        # http.server writes a response's headers and its body in two sends: with Nagle's algorithm on,
        # the body waits for the client's delayed ACK (40 ms on Linux) — an artifact of the fake, not of
        # the provider. TCP_NODELAY on every accepted connection (StreamRequestHandler.setup reads this).
        assert self._server is not None
        self._server.RequestHandlerClass.disable_nagle_algorithm = True
        return str(url)

    def _handle(self, h: Any) -> None:
        if h.command == "GET" and urlsplit(h.path).path.startswith("/_fake/"):
            self._introspect(h)
            return
        started = time.perf_counter()
        try:
            super()._handle(h)  # type: ignore[misc]
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._handled.append(elapsed)

    @abstractmethod
    def _introspect(self, h: Any) -> None:
        """Answer a ``GET /_fake/…`` request (each fake its own paths)."""


def serve_fake(name: str, make: Callable[[dict[str, Any]], Served], argv: list[str] | None = None) -> None:
    """Parse ``--port`` and ``--config``/``--config-file`` (a JSON object for ``make``), print the URL
    on the first line, serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=f"The fake {name} on 127.0.0.1, as its own process (prints its "
                                                 "URL on the first line; SIGTERM/SIGINT stop it).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--config", default="{}", help="JSON object (see served_from_config)")
    parser.add_argument("--config-file", help="a file holding that JSON object instead")
    args = parser.parse_args(argv)
    if args.config_file:
        with open(args.config_file, encoding="utf-8") as handle:
            config = json.load(handle)
    else:
        config = json.loads(args.config)
    fake = make(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(fake.start(args.port), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
