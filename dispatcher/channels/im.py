"""IM robots: DingTalk custom robot, WeCom group robot, Feishu custom bot, and a generic JSON webhook.

One ``ImAdapter`` serves ``Channel.IM`` and posts each message to **every configured robot** (an
office that keeps both a DingTalk and a WeCom duty group gets the warning in both). It succeeds if
at least one robot took the message (the others' errors go into ``SendResult.status``): retrying
after a partial success would post a second time to the robots that already have it. When every
robot failed it raises the error the engine should act on: transient if any failure was transient
(worth a retry), else configuration if any was, else permanent.

None of the robots can call back, so the message carries the per-official signed link
(``OutboundMessage.link``) as a button, and mentions the official by phone where the robot can.
All three IM APIs answer HTTP 200 on business errors: ``errcode``/``code`` != 0 is a failure.

Each robot declares its limit (``per_minute``, ``per_second``); the adapter's ``default_limit`` is
the strictest configured robot's, which the engine's shared meter keeps (a DingTalk robot that
gets more than 20 a minute is throttled for 10 minutes) unless JIAOYING_RATE_LIMITS says otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import Settings
from ..domain.channels import Channel
from ..domain.hazards import Level
from ..domain.limits import RateLimit
from .base import (
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    error_for_status,
)
from .registry import AdapterDeps, register

if TYPE_CHECKING:  # httpx is imported by the first send: a process that never posts to a robot skips it
    import httpx

__all__ = ["DingTalkRobot", "FeishuBot", "GenericWebhook", "ImAdapter", "Robot", "WeComRobot", "dingtalk_sign",
           "feishu_sign", "webhook_signature"]

TIMEOUT = 10.0  # seconds, for connecting and for each read
Clock = Callable[[], float]  # unix seconds


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}")), not yet URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """base64(HMAC-SHA256(key=f"{timestamp_s}\\n{secret}", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, timestamp + "." + body)): the generic webhook's and the broadcast
    contract's signature (X-Jiaoying-Signature)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


_MOBILE_ID = re.compile(r"(\+86)?1\d{10}")  # a mainland mobile, as a DingTalk account is often written


def _mobile(phone: str | None) -> str | None:
    """The robots want mainland numbers without +86."""
    if not phone:
        return None
    return phone[3:] if phone.startswith("+86") else phone.lstrip("+")


def _clip_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit - 3].decode("utf-8", "ignore") + "…"


_FEISHU_COLOURS = {Level.RED: "red", Level.ORANGE: "orange", Level.YELLOW: "yellow", Level.BLUE: "blue"}


class Robot(ABC):
    """One robot endpoint: builds the request, reads the business answer."""

    kind: ClassVar[str]
    per_minute: ClassVar[int]
    per_second: ClassVar[int | None] = None

    def __init__(self, url: str, secret: str = "", clock: Clock = time.time) -> None:
        self.url, self.secret, self.clock = url, secret, clock

    @abstractmethod
    def request(self, message: OutboundMessage) -> tuple[str, bytes, dict[str, str]]:
        """The robot's URL, body and headers for this message (signed as the robot requires)."""

    def check(self, response: httpx.Response, message: OutboundMessage) -> str:
        """The provider id on success; raises a ChannelError otherwise."""
        _http_status(self.kind, response)
        data = _json(self.kind, response)
        code = data.get("errcode", data.get("code", data.get("StatusCode", 0)))
        if code in (0, "0", None):
            inner = data.get("data") if isinstance(data.get("data"), dict) else {}
            return str(data.get("msgid") or inner.get("message_id") or message.key)
        text = f"{self.kind} errcode {code}: {data.get('errmsg') or data.get('msg') or ''}".strip()
        raise self.classify(int(code), text)

    def classify(self, code: int, text: str) -> ChannelError:
        return PermanentError(text)

    async def send(self, client: httpx.AsyncClient, message: OutboundMessage) -> str:
        import httpx

        url, body, headers = self.request(message)
        try:
            response = await client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self.kind} timed out: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"{self.kind} unreachable: {exc!r}") from exc
        return self.check(response, message)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _http_status(kind: str, response: httpx.Response) -> None:
    if error := error_for_status(response.status_code, f"{kind} answered HTTP {response.status_code}",
                                 response.headers.get("retry-after")):
        raise error


def _json(kind: str, response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise TransientError(f"{kind} answered something that is not JSON: {response.text[:200]!r}") from None
    if not isinstance(data, dict):
        raise TransientError(f"{kind} answered unexpected JSON: {response.text[:200]!r}")
    return data


class DingTalkRobot(Robot):
    """钉钉自定义机器人: markdown with the link, @-mention by mobile; signed in the query (加签)."""

    kind = "dingtalk"
    per_minute = 20  # going over it throttles the robot for 10 minutes (errcode 130101)

    def request(self, message: OutboundMessage) -> tuple[str, bytes, dict[str, str]]:
        url = self.url
        if self.secret:
            ts = int(self.clock() * 1000)
            query = urllib.parse.urlencode({"timestamp": ts, "sign": dingtalk_sign(self.secret, ts)})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        mobile = _mobile(message.to.phone)
        text = f"{message.text}"
        if message.link:
            text += f"\n\n[👉 确认收到]({message.link})"
        if mobile:
            text += f"\n\n@{mobile}"  # the mention only shows when the number is also in the text
        at: dict[str, Any] = {"atMobiles": [mobile] if mobile else [], "isAtAll": False}
        account = message.to.im.get("dingtalk")
        if account and _MOBILE_ID.fullmatch(account):
            # Counties often write the DingTalk account as the phone it was opened with: DingTalk
            # mentions a number through atMobiles only (as a userId it would mention nobody).
            number = _mobile(account)
            if number not in at["atMobiles"]:
                at["atMobiles"].append(number)
                text += f" @{number}" if mobile else f"\n\n@{number}"
        elif account:
            at["atUserIds"] = [account]
        body = {"msgtype": "markdown", "markdown": {"title": message.subject, "text": text}, "at": at}
        return url, _dumps(body), {}

    def classify(self, code: int, text: str) -> ChannelError:
        if code == 130101:  # send too fast: throttled for 10 minutes
            return TransientError(text, retry_after=600.0)
        if code in (310000, 300001, 400013, 400101, 400102):  # sign/keyword/IP, invalid or disabled token
            return ConfigurationError(text)
        if code in (-1,):  # system busy
            return TransientError(text, retry_after=5.0)
        return PermanentError(text)


class WeComRobot(Robot):
    """企业微信群机器人: text with the link (only text carries mentioned_mobile_list); the key in
    the URL is the secret, so the URL is never logged."""

    kind = "wecom"
    per_minute = 20

    def request(self, message: OutboundMessage) -> tuple[str, bytes, dict[str, str]]:
        content = message.text
        if message.link and message.link not in content:
            content += f"\n确认收到请点击：{message.link}"
        mobile = _mobile(message.to.phone)
        text: dict[str, Any] = {"content": _clip_bytes(content, 2048)}
        if mobile:
            text["mentioned_mobile_list"] = [mobile]
        if message.to.im.get("wecom"):
            text["mentioned_list"] = [message.to.im["wecom"]]
        return self.url, _dumps({"msgtype": "text", "text": text}), {}

    def classify(self, code: int, text: str) -> ChannelError:
        if code == 45009:  # API frequency limit
            return TransientError(text, retry_after=60.0)
        if code in (93000, 40001, 40014, 42001, 93004):  # invalid webhook key, robot disabled
            return ConfigurationError(text)
        if code == -1:
            return TransientError(text, retry_after=5.0)
        return PermanentError(text)


class FeishuBot(Robot):
    """飞书自定义机器人: an interactive card with a 确认收到 button; timestamp and sign in the body."""

    kind = "feishu"
    per_minute = 100
    per_second = 5

    def request(self, message: OutboundMessage) -> tuple[str, bytes, dict[str, str]]:
        markdown = message.text
        if message.to.im.get("feishu"):
            markdown = f"<at id={message.to.im['feishu']}></at>\n{markdown}"
        elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": markdown}}]
        if message.link:
            elements.append({"tag": "action", "actions": [{
                "tag": "button", "text": {"tag": "plain_text", "content": "确认收到"}, "type": "primary",
                "url": message.link}]})
        body: dict[str, Any] = {"msg_type": "interactive", "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": message.subject},
                       "template": _FEISHU_COLOURS.get(message.level, "blue")},
            "elements": elements}}
        if self.secret:
            ts = int(self.clock())
            body = {"timestamp": str(ts), "sign": feishu_sign(self.secret, ts), **body}
        return self.url, _dumps(body), {}

    def classify(self, code: int, text: str) -> ChannelError:
        if code == 11232:  # frequency limited
            return TransientError(text, retry_after=1.0)
        if code in (19021, 19001, 19024):  # sign mismatch, invalid token, key-word/IP check
            return ConfigurationError(text)
        return PermanentError(text)


class GenericWebhook(Robot):
    """Any other system: POST JSON {key, to, purpose, subject, text, link, level, drill}, signed with
    X-Jiaoying-Timestamp and X-Jiaoying-Signature = hex(HMAC-SHA256(secret, ts + "." + body)).
    2xx is success (an ``id`` in a JSON answer becomes the provider id)."""

    kind = "webhook"
    per_minute = 600

    def request(self, message: OutboundMessage) -> tuple[str, bytes, dict[str, str]]:
        if not self.secret:  # the receiver could not tell us from anyone else: refuse to send unsigned
            raise ConfigurationError("JIAOYING_IM_WEBHOOK_SECRET is not set for the generic IM webhook")
        body = _dumps({"key": message.key, "to": {"id": message.to.person_id, "name": message.to.name,
                                                  "phone": message.to.phone, "im": dict(message.to.im)},
                       "purpose": message.purpose.value, "subject": message.subject, "text": message.text,
                       "link": message.link, "level": message.level.value, "drill": message.drill})
        ts = str(int(self.clock()))
        headers = {"X-Jiaoying-Timestamp": ts, "X-Jiaoying-Signature": webhook_signature(self.secret, ts, body),
                   "Idempotency-Key": message.key}
        return self.url, body, headers

    def check(self, response: httpx.Response, message: OutboundMessage) -> str:
        _http_status(self.kind, response)
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("id"):
            return str(data["id"])
        return f"webhook:{message.key}"


def robots_from(settings: Settings, clock: Clock = time.time) -> list[Robot]:
    robots: list[Robot] = []
    if settings.dingtalk_webhook_url:
        robots.append(DingTalkRobot(settings.dingtalk_webhook_url, settings.dingtalk_secret, clock))
    if settings.wecom_webhook_url:
        robots.append(WeComRobot(settings.wecom_webhook_url, clock=clock))
    if settings.feishu_webhook_url:
        robots.append(FeishuBot(settings.feishu_webhook_url, settings.feishu_secret, clock))
    if settings.im_webhook_url:
        robots.append(GenericWebhook(settings.im_webhook_url, settings.im_webhook_secret, clock))
    return robots


class ImAdapter(ChannelAdapter):
    channel = Channel.IM
    provider = "im"

    def __init__(self, robots: Sequence[Robot], *, timeout: float | httpx.Timeout = TIMEOUT) -> None:
        self.robots = list(robots)  # which robots took a message shows in the provider id ("dingtalk:…")
        self._timeout = timeout

    @property
    def kinds(self) -> str:
        return "+".join(r.kind for r in self.robots)

    @classmethod
    def default_limit(cls, settings: Settings) -> RateLimit | None:
        """Every message goes to every robot: the slowest robot sets the pace."""
        limits = [RateLimit(r.per_minute, 60) for r in robots_from(settings)]
        limits += [RateLimit(r.per_second, 1) for r in robots_from(settings) if r.per_second]
        return min(limits, key=lambda limit: limit.per_second, default=None)

    async def send(self, message: OutboundMessage) -> SendResult:
        if not self.robots:
            raise ConfigurationError("no IM robot is configured (JIAOYING_DINGTALK_WEBHOOK_URL, …)")
        ids: list[str] = []
        errors: list[tuple[str, ChannelError]] = []
        import httpx

        # One client per send: the engine may call adapters from different event loops.
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            for robot in self.robots:
                try:
                    ids.append(f"{robot.kind}:{await robot.send(client, message)}")
                except ChannelError as exc:
                    errors.append((robot.kind, exc))
        if ids:
            status = "sent" if not errors else "partial: " + "; ".join(f"{k}: {e}" for k, e in errors)
            return SendResult(",".join(ids)[:64], status)
        raise _worst(errors)


def _worst(errors: list[tuple[str, ChannelError]]) -> ChannelError:
    text = "; ".join(f"{kind}: {exc}" for kind, exc in errors)
    transient = [e for _, e in errors if isinstance(e, TransientError)]
    if transient:
        waits = [e.retry_after for e in transient if e.retry_after is not None]
        return TransientError(text, min(waits) if waits else None)
    if any(isinstance(e, ConfigurationError) for _, e in errors):
        return ConfigurationError(text)
    return PermanentError(text)


def _configured(settings: Settings) -> bool:
    return bool(settings.dingtalk_webhook_url or settings.wecom_webhook_url or settings.feishu_webhook_url
                or settings.im_webhook_url)


@register(Channel.IM, "im", configured=_configured, adapter=ImAdapter,
          needs=("JIAOYING_DINGTALK_WEBHOOK_URL", "JIAOYING_WECOM_WEBHOOK_URL", "JIAOYING_FEISHU_WEBHOOK_URL",
                 "JIAOYING_IM_WEBHOOK_URL: any one"))
def build(deps: AdapterDeps) -> ChannelAdapter:
    return ImAdapter(robots_from(deps.settings))
