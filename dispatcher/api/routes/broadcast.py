"""``POST /webhooks/broadcast/receipt``: playback receipts from the rural broadcast platform.

The body is checked against ``X-Jiaoying-Signature`` (hex HMAC-SHA256 over ``timestamp + "." +
body`` with JIAOYING_BROADCAST_SECRET) and ``X-Jiaoying-Timestamp`` (within 5 minutes) before it is
even parsed. Refused: 403 (bad, missing or old signature; no secret configured), 422 (unreadable
receipt — not JSON, nested too deeply, a field missing or holding NUL, a time with no UTC form — or
an area not in the order), 404 (an id we never issued). Nothing is recorded on the
warning for a refused receipt; forged ones are logged.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...channels.broadcast import ReceiptRefused, verify
from ...services.broadcasts import record_receipt
from ..deps import ClockDep, SettingsDep, UnitOfWorkDep

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)


class Receipt(BaseModel):
    model_config = ConfigDict(extra="allow")  # vendors add fields; the raw payload is kept
    id: str = Field(max_length=64)
    area: str = Field(pattern=r"^\d{6,12}$")
    state: Literal["playing", "completed", "failed"]
    at: datetime
    detail: str = Field(default="", max_length=1000)


@router.post("/webhooks/broadcast/receipt", summary="A broadcast platform's playback receipt (signed)")
async def broadcast_receipt(request: Request, settings: SettingsDep, clock: ClockDep,
                            uow: UnitOfWorkDep) -> dict[str, Any]:
    body = await request.body()
    now = clock()
    try:
        verify(settings.broadcast_secret, request.headers.get("x-jiaoying-timestamp"),
               request.headers.get("x-jiaoying-signature"), body, now)
    except ReceiptRefused as exc:
        log.warning("broadcast receipt refused from %s: %s", request.client.host if request.client else "?", exc)
        raise HTTPException(403, f"receipt refused: {exc}") from None
    try:
        receipt = Receipt.model_validate(json.loads(body))
    except RecursionError:  # nested deeper than Python's JSON reader goes: no receipt is
        raise HTTPException(422, "unreadable receipt: nested too deeply") from None
    except (ValueError, ValidationError) as exc:
        raise HTTPException(422, f"unreadable receipt: {exc}"[:500]) from None
    try:
        with uow as session:
            outcome = record_receipt(session, now, receipt.model_dump())
    except LookupError as exc:
        raise HTTPException(404, str(exc).strip("'\"")) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": receipt.id, "area": receipt.area, "outcome": outcome}
