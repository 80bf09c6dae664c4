"""A real SMTP server on 127.0.0.1 for the tests (aiosmtpd): it keeps what it accepts and refuses some
recipients as a real server would (``nobody@…`` for good, ``busy@…`` for now)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.servers import free_port


class MailSink:
    """aiosmtpd handler: keeps what it accepts; some recipients are refused like a real server."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy@"):
            return "451 4.3.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[MailSink, int]]:
    """The server and its port, stopped on leaving."""
    sink = MailSink()
    port = free_port()  # Controller(port=0) fails: start() probes the port it was given
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()
