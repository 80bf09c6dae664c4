"""Keeping secrets out of the access log.

An acknowledgement link's token is a bearer credential for one call-out until it expires, and it
travels in the URL path (``/ack/<token>``), which the ASGI server's access log writes out in full.
:class:`RedactSecrets` rewrites the path of every access log record before any handler formats it;
:func:`install` puts it on uvicorn's access logger (the app factory calls it, so ``jiaoying serve``,
the demo and ``uvicorn --factory`` all get it).
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
# /ack/<token> (the acknowledgement link), and query values whose names say they are secrets.
_PATTERNS = (
    (re.compile(r"(/ack/)[^/?#\s\"]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"([?&](?:token|key|secret|signature|password)=)[^&#\s\"]*", re.IGNORECASE), rf"\g<1>{REDACTED}"),
)


def redact(text: str) -> str:
    if "/ack/" not in text and "=" not in text:  # nearly every line: no regular expression run for it
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites the record's arguments (uvicorn passes the path as one of them) and message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    """Put the filter on the access logger once (a logger's filters survive uvicorn's dictConfig)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
