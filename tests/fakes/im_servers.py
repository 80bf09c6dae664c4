"""Loopback impersonations of the IM robots and the broadcast platform, for the adapter tests.

One threaded HTTP server on 127.0.0.1 answers, by path:

- ``/dingtalk/robot/send?access_token=…`` — checks the token, then the 加签 exactly as DingTalk does
  (timestamp in ms within an hour; sign = base64(HMAC-SHA256(secret, f"{ts}\\n{secret}")) from the
  URL-decoded query); wrong sign → HTTP 200 ``{"errcode": 310000}``.
- ``/wecom/cgi-bin/webhook/send?key=…`` — the key is the secret; wrong key → ``{"errcode": 93000}``.
- ``/feishu/open-apis/bot/v2/hook/<token>`` — timestamp (seconds, within an hour) and sign in the
  JSON body, sign = base64(HMAC-SHA256(key=f"{ts}\\n{secret}", msg=b"")); wrong → ``{"code": 19021}``.
- ``/webhook`` and ``/broadcast`` — X-Jiaoying-Timestamp/X-Jiaoying-Signature (hex HMAC-SHA256 over
  ``ts + "." + body``); wrong → HTTP 401.

Every accepted message is recorded; ``fail_next(kind, status, body)`` answers the next request of
that kind with a business error instead (e.g. DingTalk's 130101 throttle).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DINGTALK_TOKEN = "dt-token-1"
DINGTALK_SECRET = "SECtestsecret-for-the-fake"
WECOM_KEY = "6f0c3d2a-0000-4000-8000-00000000wecom"
FEISHU_TOKEN = "fs-hook-1"
FEISHU_SECRET = "feishu-fake-secret"
WEBHOOK_SECRET = "generic-webhook-secret"
BROADCAST_SECRET = "broadcast-platform-secret"


@dataclass
class Received:
    kind: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = field(repr=False, default=b"")


class FakeIm:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused: list[tuple[str, str]] = []
        self._failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-im", daemon=True)

    # -- the addresses the adapters are configured with -------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dingtalk_url(self) -> str:
        return f"{self.base}/dingtalk/robot/send?access_token={DINGTALK_TOKEN}"

    @property
    def wecom_url(self) -> str:
        return f"{self.base}/wecom/cgi-bin/webhook/send?key={WECOM_KEY}"

    @property
    def feishu_url(self) -> str:
        return f"{self.base}/feishu/open-apis/bot/v2/hook/{FEISHU_TOKEN}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base}/webhook"

    @property
    def broadcast_url(self) -> str:
        return f"{self.base}/broadcast"

    # -- control ------------------------------------------------------------------------------------

    def start(self) -> FakeIm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, kind: str, body: dict[str, Any], status: int = 200) -> None:
        with self._lock:
            self._failures.setdefault(kind, []).append((status, body))

    def of(self, kind: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.kind == kind]

    # -- the services' checks ---------------------------------------------------------------------

    def handle(self, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        kind = path.strip("/").split("/")[0]
        with self._lock:
            queued = self._failures.get(kind)
            failure = queued.pop(0) if queued else None
        if failure is not None:
            return failure
        try:
            body = json.loads(raw)
        except ValueError:
            return (200, {"errcode": 40035, "errmsg": "invalid json"}) if kind != "feishu" else \
                (200, {"code": 9499, "msg": "Bad Request"})
        check = {"dingtalk": self._dingtalk, "wecom": self._wecom, "feishu": self._feishu,
                 "webhook": self._signed(WEBHOOK_SECRET), "broadcast": self._signed(BROADCAST_SECRET)}.get(kind)
        if check is None:
            return 404, {"error": "no such path"}
        refusal = check(path, query, headers, body, raw)
        if refusal is not None:
            with self._lock:
                self.refused.append((kind, json.dumps(refusal[1], ensure_ascii=False)))
            return refusal
        with self._lock:
            self.received.append(Received(kind, path, query, headers, body, raw))
            n = len(self.received)
        return 200, {"dingtalk": {"errcode": 0, "errmsg": "ok"}, "wecom": {"errcode": 0, "errmsg": "ok"},
                     "feishu": {"code": 0, "msg": "success", "data": {}, "StatusCode": 0},
                     "webhook": {"id": f"wh-{n}"}, "broadcast": {"accepted": True, "platform_id": f"EBM-{n}"}}[kind]

    @staticmethod
    def _dingtalk(path: str, query: dict[str, str], headers: dict[str, str], body: Any, raw: bytes):
        if query.get("access_token") != DINGTALK_TOKEN:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        ts, sign = query.get("timestamp", ""), query.get("sign", "")  # parse_qs already URL-decoded
        if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3_600_000:
            return 200, {"errcode": 310000, "errmsg": "invalid timestamp"}
        expected = base64.b64encode(hmac.new(DINGTALK_SECRET.encode(), f"{ts}\n{DINGTALK_SECRET}".encode(),
                                             hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(sign, expected):
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        if body.get("msgtype") not in ("text", "markdown", "actionCard", "link", "feedCard"):
            return 200, {"errcode": 40035, "errmsg": "invalid msgtype"}
        return None

    @staticmethod
    def _wecom(path: str, query: dict[str, str], headers: dict[str, str], body: Any, raw: bytes):
        if query.get("key") != WECOM_KEY:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        if body.get("msgtype") == "text" and len(body["text"]["content"].encode()) > 2048:
            return 200, {"errcode": 40058, "errmsg": "content exceed max length"}
        return None

    @staticmethod
    def _feishu(path: str, query: dict[str, str], headers: dict[str, str], body: Any, raw: bytes):
        if not path.endswith(f"/hook/{FEISHU_TOKEN}"):
            return 200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}
        ts, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
        if not ts.isdigit() or abs(int(ts) - time.time()) > 3600:
            return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
        expected = base64.b64encode(hmac.new(f"{ts}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(sign, expected):
            return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
        if len(raw) > 20 * 1024:
            return 200, {"code": 9499, "msg": "Bad Request"}
        return None

    @staticmethod
    def _signed(secret: str):
        def check(path: str, query: dict[str, str], headers: dict[str, str], body: Any, raw: bytes):
            ts, sig = headers.get("x-jiaoying-timestamp", ""), headers.get("x-jiaoying-signature", "")
            if not ts.isdigit() or abs(int(ts) - time.time()) > 300:
                return 401, {"error": "stale or missing timestamp"}
            expected = hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(sig, expected):
                return 401, {"error": "bad signature"}
            return None

        return check


def _handler(fake: FakeIm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            split = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(split.query).items()}
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = fake.handle(split.path, query, headers, raw)
            data = json.dumps(answer, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

    return Handler
