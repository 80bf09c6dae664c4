"""E-mail over SMTP with aiosmtplib: STARTTLS when ``smtp_starttls``, a timeout on connect and on
every command, a plain-text and an HTML part (both with the acknowledgement link).

Errors: connection failures, timeouts and 4xx replies are transient; 5xx replies permanent;
authentication failures (and a server that cannot do the STARTTLS we require) are configuration.
"""

from __future__ import annotations

import html
import re
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from ..config import Settings
from ..domain.channels import Channel
from .base import (
    ChannelAdapter,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from .registry import AdapterDeps, register

__all__ = ["EmailAdapter", "build_email"]

_LEVEL_COLOURS = {"red": "#d4251c", "orange": "#f08300", "yellow": "#e6b800", "blue": "#1769e0"}
_URL = re.compile(r"(https?://[^\s<>\"'）)]+)")


def build_email(settings: Settings, message: OutboundMessage) -> EmailMessage:
    if not message.to.email:
        raise PermanentError(f"{message.to.person_id} has no e-mail address")
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = formataddr((message.to.name, message.to.email))
    mail["Subject"] = message.subject
    domain = settings.smtp_from.rpartition("@")[2].strip("> ") or "jiaoying.local"
    mail["Message-ID"] = make_msgid(idstring=re.sub(r"[^A-Za-z0-9.-]", "-", message.key), domain=domain)
    mail["X-Jiaoying-Key"] = message.key
    if message.level.value == "red":
        mail["X-Priority"] = "1"
        mail["Importance"] = "high"
    text = message.text
    if message.link and message.link not in text:
        text += f"\n\n确认收到请打开：{message.link}\n"
    mail.set_content(text)
    mail.add_alternative(_html(message, text), subtype="html")
    return mail


def _html(message: OutboundMessage, text: str) -> str:
    body = _URL.sub(r'<a href="\1">\1</a>', html.escape(text, quote=True)).replace("\n", "<br>\n")
    colour = _LEVEL_COLOURS.get(message.level.value, "#1769e0")
    button = ""
    if message.link:
        href = html.escape(message.link, quote=True)
        button = (f'<p style="margin:24px 0"><a href="{href}" style="display:inline-block;padding:12px 28px;'
                  f'background:#1a7f37;color:#fff;font-size:18px;font-weight:bold;border-radius:8px;'
                  f'text-decoration:none">确认收到</a></p>')
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(message.subject)}'
            f'</title></head><body style="font-family:sans-serif;font-size:16px;line-height:1.6">'
            f'<div style="border-left:6px solid {colour};padding-left:12px">{body}</div>{button}</body></html>')


class EmailAdapter(ChannelAdapter):
    channel = Channel.EMAIL
    provider = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: OutboundMessage) -> SendResult:
        s = self.settings
        if not s.smtp_host or not s.smtp_from:
            raise ConfigurationError("JIAOYING_SMTP_HOST and JIAOYING_SMTP_FROM must be set")
        mail = build_email(s, message)
        import aiosmtplib  # by the first mail, not by every process that reads the adapters

        try:
            refused, _reply = await aiosmtplib.send(
                mail, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username or None,
                password=s.smtp_password or None, start_tls=s.smtp_starttls, use_tls=False, timeout=s.smtp_timeout)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ConfigurationError(f"SMTP authentication failed: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _by_codes([r.code for r in exc.recipients], f"SMTP refused the recipient: {exc}") from exc
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected,
                aiosmtplib.SMTPConnectTimeoutError, aiosmtplib.SMTPReadTimeoutError) as exc:
            raise TransientError(f"SMTP server unreachable: {exc!r}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_codes([exc.code], f"SMTP answered {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPException as exc:  # e.g. STARTTLS required but not offered
            raise ConfigurationError(f"SMTP: {exc}") from exc
        except OSError as exc:
            raise TransientError(f"SMTP connection failed: {exc!r}") from exc
        if refused:
            raise _by_codes([r.code for r in refused.values()], f"SMTP refused: {refused}")
        return SendResult(str(mail["Message-ID"]).strip("<>")[:64])


def _by_codes(codes: list[int], text: str) -> TransientError | PermanentError:
    if any(400 <= c < 500 for c in codes) or not codes:
        return TransientError(text, retry_after=60.0)
    return PermanentError(text)


@register(Channel.EMAIL, "smtp", configured=lambda s: bool(s.smtp_host and s.smtp_from), adapter=EmailAdapter,
          needs=("JIAOYING_SMTP_HOST", "JIAOYING_SMTP_FROM"))
def build(deps: AdapterDeps) -> ChannelAdapter:
    return EmailAdapter(deps.settings)
