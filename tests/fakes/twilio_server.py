"""A fake Twilio on 127.0.0.1 for tests: the parts of the REST API the ``twilio`` client uses to
send, and the signed webhooks Twilio would send back.

    POST /2010-04-01/Accounts/{AccountSid}/Messages.json   To, From, Body, StatusCallback -> 201 JSON
    POST /2010-04-01/Accounts/{AccountSid}/Calls.json      To, From, Url, StatusCallback... -> 201 JSON

Both check HTTP Basic auth (account sid + auth token; 401 with code 20003 otherwise) and that
the account in the path is the one authenticated. ``fail_next(status, code=, retry_after=)``
queues an error answer, ``hang_next(seconds)`` a request that answers nothing for that long.

Callbacks (status, inbound SMS, voice TwiML fetch, Gather) are signed with twilio's own
``RequestValidator.compute_signature`` and posted through any client with ``.post(url, data=,
headers=)`` — a FastAPI TestClient or an httpx.Client::

    fake = FakeTwilio(); base = fake.start()     # -> JIAOYING_TWILIO_API_BASE
    ...; fake.status(client, sid, "delivered"); fake.inbound_sms(client, "+86...", "收到")
    fake.stop()
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator

HOST = "127.0.0.1"
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<kind>Messages|Calls)\.json$")


class Poster(Protocol):
    def post(self, url: str, *, data: Any = ..., headers: Any = ...) -> Any: ...


@dataclass(frozen=True)
class Received:
    kind: str  # "Messages" | "Calls"
    sid: str
    params: dict[str, list[str]]
    at: float = field(default_factory=time.time)

    def first(self, name: str) -> str:
        return self.params.get(name, [""])[0]

    @property
    def to(self) -> str:
        return self.first("To")


@dataclass(frozen=True)
class _Fault:
    status: int | None  # None: hang
    code: int | None = None
    retry_after: float | None = None
    hang: float = 0.0


class FakeTwilio:
    def __init__(self, account_sid: str = "AC" + "0" * 31 + "1", auth_token: str = "fake-auth-token",
                 public_url: str = "http://testserver") -> None:
        self.account_sid, self.auth_token, self.public_url = account_sid, auth_token, public_url.rstrip("/")
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._faults: list[_Fault] = []
        self._seq = itertools.count(1)
        self.refused = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(404, {"code": 20404, "message": "not found", "status": 404})

            def _answer(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-twilio", daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{HOST}:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what it received, and faults ------------------------------------------------------

    def received(self, kind: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if kind is None or r.kind == kind]

    def messages(self) -> list[Received]:
        return self.received("Messages")

    def calls(self) -> list[Received]:
        return self.received("Calls")

    def fail_next(self, status: int, *, code: int | None = None, retry_after: float | None = None,
                  count: int = 1) -> None:
        with self._lock:
            self._faults.extend(_Fault(status, code, retry_after) for _ in range(count))

    def hang_next(self, seconds: float, count: int = 1) -> None:
        with self._lock:
            self._faults.extend(_Fault(None, hang=seconds) for _ in range(count))

    # -- the REST side ---------------------------------------------------------------------

    def _handle(self, h: Any) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length).decode() if length else ""
        match = _PATH.match(urlsplit(h.path).path)
        if match is None:
            h._answer(404, {"code": 20404, "message": f"The requested resource {h.path} was not found",
                            "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})
            return
        if not self._authorized(h.headers.get("Authorization", ""), match["account"]):
            with self._lock:
                self.refused += 1
            h._answer(401, {"code": 20003, "message": "Authenticate",
                            "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401},
                      {"WWW-Authenticate": 'Basic realm="Twilio API"'})
            return
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            if fault.status is None:
                time.sleep(fault.hang)
                h.close_connection = True
                return
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            code = fault.code or fault.status
            h._answer(fault.status, {"code": code, "message": f"fake error {code}",
                                     "more_info": f"https://www.twilio.com/docs/errors/{code}",
                                     "status": fault.status}, headers)
            return
        params = parse_qs(body, keep_blank_values=True)
        kind = match["kind"]
        sid = ("SM" if kind == "Messages" else "CA") + f"{next(self._seq):032x}"
        with self._lock:
            self._received.append(Received(kind, sid, params))
        h._answer(201, self._resource(kind, sid, params))

    def _authorized(self, header: str, account: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.account_sid == account and password == self.auth_token

    def _resource(self, kind: str, sid: str, params: dict[str, list[str]]) -> dict[str, Any]:
        first = {k: v[0] for k, v in params.items()}
        now = format_datetime(datetime.now(UTC), usegmt=True)
        base = f"/2010-04-01/Accounts/{self.account_sid}/{kind}/{sid}"
        if kind == "Messages":
            return {"account_sid": self.account_sid, "api_version": "2010-04-01", "body": first.get("Body", ""),
                    "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
                    "error_code": None, "error_message": None, "from": first.get("From"),
                    "messaging_service_sid": None, "num_media": "0", "num_segments": "1", "price": None,
                    "price_unit": "USD", "sid": sid, "status": "queued", "to": first.get("To"),
                    "uri": f"{base}.json", "subresource_uris": {"media": f"{base}/Media.json"}}
        return {"account_sid": self.account_sid, "annotation": None, "answered_by": None,
                "api_version": "2010-04-01", "caller_name": None, "date_created": now, "date_updated": now,
                "direction": "outbound-api", "duration": None, "end_time": None, "forwarded_from": None,
                "from": first.get("From"), "from_formatted": first.get("From"), "group_sid": None,
                "parent_call_sid": None, "phone_number_sid": None, "price": None, "price_unit": "USD",
                "sid": sid, "start_time": None, "status": "queued", "to": first.get("To"),
                "to_formatted": first.get("To"), "uri": f"{base}.json", "queue_time": "0"}

    # -- the webhook side: signed requests to the app ----------------------------------------

    def sign(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        return RequestValidator(token or self.auth_token).compute_signature(url, params)

    def post_signed(self, client: Poster, path_and_query: str, params: dict[str, str], *,
                    signed_url: str | None = None) -> Any:
        """POST ``params`` to the app at ``path_and_query``, signed for ``public_url`` + that path
        (or for ``signed_url``, to play a request meant for another address)."""
        url = self.public_url + path_and_query
        headers = {"X-Twilio-Signature": self.sign(signed_url or url, params)}
        return client.post(url, data=params, headers=headers)

    def status(self, client: Poster, received: Received, status: str, error_code: str | None = None) -> Any:
        """The status callback Twilio sends for a message or call we received."""
        callback = received.first("StatusCallback")
        assert callback.startswith(self.public_url), callback
        params = {"AccountSid": self.account_sid, "To": received.to, "From": received.first("From"),
                  "ApiVersion": "2010-04-01"}
        if received.kind == "Messages":
            params |= {"MessageSid": received.sid, "SmsSid": received.sid, "MessageStatus": status,
                       "SmsStatus": status}
        else:
            params |= {"CallSid": received.sid, "CallStatus": status, "Direction": "outbound-api"}
        if error_code:
            params["ErrorCode"] = error_code
        return self.post_signed(client, callback[len(self.public_url):], params)

    def inbound_sms(self, client: Poster, sender: str, body: str, to: str = "") -> Any:
        sid = "SM" + f"{next(self._seq):032x}"
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid, "From": sender,
                  "To": to or "+15005550006", "Body": body, "NumMedia": "0", "NumSegments": "1",
                  "SmsStatus": "received", "ApiVersion": "2010-04-01"}
        return self.post_signed(client, "/webhooks/twilio/sms", params)

    def call_params(self, call: Received, **extra: str) -> dict[str, str]:
        return {"CallSid": call.sid, "AccountSid": self.account_sid, "From": call.first("From"), "To": call.to,
                "CallStatus": "in-progress", "Direction": "outbound-api", "ApiVersion": "2010-04-01", **extra}

    def fetch_twiml(self, client: Poster, call: Received) -> Any:
        """What Twilio does when the callee answers: POST to the call's Url."""
        url = call.first("Url")
        assert url.startswith(self.public_url), url
        return self.post_signed(client, url[len(self.public_url):], self.call_params(call))

    def gather(self, client: Poster, action: str, call: Received, digits: str) -> Any:
        """The Gather's action, with the digits pressed."""
        assert action.startswith(self.public_url), action
        return self.post_signed(client, action[len(self.public_url):],
                                self.call_params(call, Digits=digits, FinishedOnKey=""))
