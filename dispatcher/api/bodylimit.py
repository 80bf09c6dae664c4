"""Request bodies are capped before they are read, and an unsigned webhook is refused before any of
its body is read: a 300 MB unsigned POST to a webhook once took the server from 128 MB to 992 MB,
because the body was read whole to check a signature it never had.

An ASGI middleware, so it holds for every route, whatever the route does with its body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WEBHOOK_LIMIT = 64 * 1024  # a provider's callback is a few hundred bytes


@dataclass(frozen=True)
class Rule:
    prefix: str
    limit: int
    signature: str | None = None  # a header the request must carry before its body is read


def rules(intake_limit: int) -> list[Rule]:
    """The caps, most specific prefix first."""
    return [
        Rule("/webhooks/twilio/", WEBHOOK_LIMIT, "x-twilio-signature"),
        Rule("/webhooks/broadcast/", WEBHOOK_LIMIT, "x-jiaoying-signature"),
        Rule("/webhooks/", WEBHOOK_LIMIT),
        Rule("/api/", intake_limit),
        Rule("/", WEBHOOK_LIMIT),  # the board's forms and the confirm pages
    ]


class _TooLarge(HTTPException):
    """Raised from the body's reader: the app's own handler answers 413 (or this middleware does)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is over the limit of {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, intake_limit: int) -> None:
        self.app, self.rules = app, rules(intake_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        rule = next(r for r in self.rules if scope["path"].startswith(r.prefix))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if rule.signature and not headers.get(rule.signature, "").strip():
            await _answer(send, 403, f"webhook refused: {rule.signature} is missing")
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > rule.limit:
            await _answer(send, 413, f"the body is {declared} bytes; the limit is {rule.limit} bytes")
            return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > rule.limit:
                    raise _TooLarge(rule.limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge as exc:
            if not started:
                await _answer(send, 413, str(exc.detail))


async def _answer(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
