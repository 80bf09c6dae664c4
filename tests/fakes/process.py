"""A loopback fake as a process of its own (its own GIL, as a real provider would be): the shared
``main`` of ``python -m tests.fakes.aliyun_server`` and ``python -m tests.fakes.tencent_server``."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Callable
from typing import Any, Protocol


class Served(Protocol):
    def start(self, port: int = 0) -> str: ...

    def stop(self) -> None: ...


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
