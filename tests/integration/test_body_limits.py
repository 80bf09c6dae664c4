"""Bodies are capped before they are read, and an unsigned webhook is refused before any of its body
is read. Called at the ASGI level with a body that arrives in 64 KiB chunks, so the test counts how
much of it the app pulled: a 300 MB POST must not be read to learn that it is unsigned or too big."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dispatcher.api.app import create_app
from dispatcher.config import Settings

CHUNK = b"x" * 65536


class Upload:
    """An endless request body; counts the chunks the app asked for."""

    def __init__(self, chunks: int) -> None:
        self.left, self.pulled = chunks, 0

    async def receive(self) -> dict[str, Any]:
        self.pulled += 1
        self.left -= 1
        return {"type": "http.request", "body": CHUNK, "more_body": self.left > 0}


def call(app: Any, path: str, headers: dict[str, str], upload: Upload) -> tuple[int, bytes]:
    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, upload.receive, send))
    return answer["status"], answer["body"]


@pytest.fixture
def app(settings: Settings) -> Any:
    return create_app(settings.model_copy(update={"twilio_auth_token": "t" * 32}))


@pytest.mark.parametrize("path", ["/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/broadcast/receipt"])
def test_an_unsigned_webhook_is_refused_before_its_body_is_read(app: Any, path: str) -> None:
    upload = Upload(4800)  # bad input: 300 MB, unsigned, no Content-Length
    status, body = call(app, path, {"content-type": "application/x-www-form-urlencoded"}, upload)
    assert status == 403 and b"signature" in body.lower()
    assert upload.pulled == 0


def test_a_signed_looking_webhook_is_cut_off_at_64_kib(app: Any) -> None:
    upload = Upload(4800)  # bad input: 300 MB with a (forged) signature header, streamed without a length
    status, body = call(app, "/webhooks/twilio/sms", {"content-type": "application/x-www-form-urlencoded",
                                                      "x-twilio-signature": "forged"}, upload)
    assert status == 413 and b"65536 bytes" in body
    assert upload.pulled <= 2


def test_a_declared_oversized_body_is_refused_unread(app: Any) -> None:
    upload = Upload(4800)  # bad input: Content-Length of 300 MB on the board's login form
    status, _ = call(app, "/board/login", {"content-type": "application/x-www-form-urlencoded",
                                           "content-length": str(4800 * 65536)}, upload)
    assert status == 413 and upload.pulled == 0


def test_intake_keeps_its_own_limit(app: Any, auth: dict[str, str]) -> None:
    upload = Upload(4800)  # bad input: a 300 MB warning
    status, body = call(app, "/api/v1/warnings", {"content-type": "application/json", **auth}, upload)
    assert status == 413 and b"262144 bytes" in body
    assert upload.pulled <= 5
