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

As a process (benchmarks: the fake then has its own GIL): ``python -m tests.fakes.twilio_server --port P --config
'{"account_sid": "AC...", "auth_token": "..."}'`` prints its URL and serves ``ServedTwilio`` (read-only
``GET /_fake/summary`` and ``GET /_fake/arrivals``) until SIGTERM.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator

from tests.fakes.process import ServedProcess, serve_fake

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

    def start(self, port: int = 0) -> str:
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

        self._server = ThreadingHTTPServer((HOST, port), Handler)
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


class ServedTwilio(ServedProcess, FakeTwilio):
    """The fake as its own process (``python -m tests.fakes.twilio_server``), so a benchmark's engine does not
    share its GIL. Besides the API it answers two read-only, unauthenticated introspection paths (the shapes of
    ``ServedAliyun``'s):

    ``GET /_fake/summary``   {"requests", "send_requests", "codes": {"201": accepted, "401": refused},
                             "actions": {"Messages"|"Calls": accepted}, "accepted_numbers", "unique_numbers",
                             "refused_numbers", "first_at", "last_new_at", "handle_s", "handle_ms": {"p50", "p99",
                             "max"}} — counts of accepted Messages (one number each: Twilio sends one message a
                             request); ``first_at``/``last_new_at``: time.time() of the first accepted message and
                             of the last ``To`` accepted for the first time; ``refused_numbers``: requests refused
                             401 (bad credentials); ``handle_s``: the summed wall time of the API requests
    ``GET /_fake/arrivals``  {"messages": [{"at", "number", "key", "code", "sid"}]} — one record per accepted
                             Messages request: ``number`` the ``To`` as sent (E.164), ``key`` the ``attempt`` query
                             parameter of its ``StatusCallback`` (Twilio has no field for our id: the adapter puts
                             the attempt key there), ``code`` "201", ``at`` time.time() on arrival
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handled: list[float] = []  # seconds each API request took to handle
        self._cursor = 0  # how far into _received the summary has read
        self._first_seen: dict[str, float] = {}
        self._actions: dict[str, int] = {}

    def start(self, port: int = 0) -> str:
        url = super().start(port)
        # FakeTwilio answers every GET 404 itself; here GET /_fake/... goes through _handle to _introspect.
        assert self._server is not None
        handler = self._server.RequestHandlerClass
        stock_get = handler.do_GET  # type: ignore[attr-defined]
        fake = self

        def do_get(h: Any) -> None:
            if urlsplit(h.path).path.startswith("/_fake/"):
                fake._handle(h)
            else:
                stock_get(h)

        handler.do_GET = do_get  # type: ignore[attr-defined]
        return url

    def _introspect(self, h: Any) -> None:
        path = urlsplit(h.path).path
        if path == "/_fake/summary":
            h._answer(200, self.summary())
        elif path == "/_fake/arrivals":
            h._answer(200, {"messages": self.arrivals()})
        else:
            h._answer(404, {"code": 20404, "message": f"The requested resource {path} was not found", "status": 404})

    @staticmethod
    def attempt_key(received: Received) -> str:
        """The ``attempt`` query parameter of the request's StatusCallback ("" without one)."""
        query = urlsplit(received.first("StatusCallback")).query
        return parse_qs(query).get("attempt", [""])[0]

    def arrivals(self) -> list[dict[str, Any]]:
        return [{"at": r.at, "number": r.to, "key": self.attempt_key(r), "code": "201", "sid": r.sid}
                for r in self.messages()]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            fresh, self._cursor = self._received[self._cursor:], len(self._received)
            handled = sorted(self._handled)
            for r in fresh:
                self._actions[r.kind] = self._actions.get(r.kind, 0) + 1
                if r.kind == "Messages" and r.at < self._first_seen.get(r.to, math.inf):
                    self._first_seen[r.to] = r.at
            accepted = self._actions.get("Messages", 0)
            seen = self._first_seen.values()
            return {"requests": len(handled), "send_requests": accepted + self.refused,
                    "codes": {"201": accepted, "401": self.refused}, "actions": dict(self._actions),
                    "accepted_numbers": accepted, "unique_numbers": len(self._first_seen),
                    "refused_numbers": self.refused, "first_at": min(seen, default=None),
                    "last_new_at": max(seen, default=None), "handle_s": sum(handled),
                    "handle_ms": _quantiles_ms(handled)}


def _quantiles_ms(ordered: list[float]) -> dict[str, float | None]:
    if not ordered:
        return {"p50": None, "p99": None, "max": None}
    return {"p50": ordered[len(ordered) // 2] * 1000, "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            * 1000, "max": ordered[-1] * 1000}


def served_from_config(config: Mapping[str, Any]) -> ServedTwilio:
    """A ServedTwilio from a JSON config: ``account_sid``, ``auth_token`` (the REST API's Basic auth) and
    ``public_url`` (only for the callbacks the in-test helpers sign; the process posts none)."""
    known = {"account_sid", "auth_token", "public_url"}
    unknown = set(config) - known
    if unknown:
        raise SystemExit(f"twilio fake: unknown config keys {sorted(unknown)} (known: {sorted(known)})")
    return ServedTwilio(**{k: str(config[k]) for k in known if k in config})


def main(argv: list[str] | None = None) -> None:
    serve_fake("Twilio REST API (Messages, Calls)", served_from_config, argv)


if __name__ == "__main__":
    main()
