"""Warnings: intake (JSON or CAP 1.2) and reading back."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ... import csvsafe, privacy
from ...db.session import transaction
from ...intake.cap import parse_cap
from ...intake.schema import WarningIn, parse_warning_dict, parse_warning_json
from ...services import warnings as queries
from ...services.callout_views import counts
from ...services.callouts import cancel_event
from ...services.intake import receive_warning
from ...services.keys import check_event_scope
from ...services.site import warm_site
from ...services.users import Role
from ..deps import Caller, CallerDep, ClockDep, KeyDep, SessionDep, SettingsDep, UnitOfWorkDep

router = APIRouter(prefix="/api/v1/warnings", tags=["warnings"])

JSON_TYPES = {"application/json"}
CAP_TYPES = {"application/cap+xml", "application/xml", "text/xml"}


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(content_type: str, body: bytes) -> tuple[WarningIn, str]:
    media = content_type.split(";")[0].strip().lower()
    if media in JSON_TYPES:
        return parse_warning_json(body), "json"
    if media in CAP_TYPES:
        return parse_warning_dict(parse_cap(body)), "cap"
    accepted = ", ".join(sorted(JSON_TYPES | CAP_TYPES))
    raise HTTPException(415, f"Content-Type {media or '(none)'!r} is not accepted; use one of: {accepted}")


@router.post(
    "",
    status_code=202,
    summary="Post a warning, update or cancel (JSON or CAP 1.2 XML)",
    responses={200: {"description": "a repeat of a warning already received"},
               400: {"description": "unreadable body"}, 401: {"description": "no valid key"},
               403: {"description": "the key may not post this"}, 413: {"description": "body too large"},
               415: {"description": "unsupported Content-Type"}, 422: {"description": "invalid field"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": WarningIn.model_json_schema()},
        "application/cap+xml": {"schema": {"type": "string"}},
    }}},
)
async def post_warning(request: Request, key: KeyDep, settings: SettingsDep, clock: ClockDep,
                       uow: UnitOfWorkDep) -> JSONResponse:
    body = await read_limited(request, settings.max_body_bytes)
    draft, fmt = parse_body(request.headers.get("content-type", ""), body)

    def store() -> Any:
        if settings.is_sqlite:  # after a start or a reload, the site is read here, not under the one write lock
            with transaction(settings.database_url, write=False) as session:
                warm_site(session)
        # (PostgreSQL has no such lock, and the transaction below reads the site before it writes:
        # a read here would be two more round trips to the server for every post.)
        with uow as session:
            result = receive_warning(session, draft, key=key, source_format=fmt,
                                     raw=body.decode("utf-8", "replace"), now=clock())
            if result.created:
                uow.wake()
        return result

    result = await run_in_threadpool(store)  # committed before we answer
    answer = {"id": result.id, "status": "accepted" if result.created else "duplicate",
              "warning_status": result.status, "links": queries.links(result.id)}
    if result.status == "expired":
        answer["note"] = ("已过期：预警在收到时已超过有效期（expires），已记录，不叫应任何人。 "
                          "Already expired when received: recorded, nobody is called.")
    return JSONResponse(answer, status_code=202 if result.created else 200)


def conceals(who: Caller) -> bool:
    """Whether this caller is shown a blind drill (双盲) not yet revealed as a real warning, as the board
    shows it: a viewer or an officer. Admins read the truth; an agency key reads only its own
    senders' messages, never the county's drills (services/warnings)."""
    return who.user is not None and not who.user.may(Role.ADMIN)


@router.get("", summary="List warnings (an agency sees its own)")
def list_warnings(session: SessionDep, who: CallerDep,
                  active: Annotated[bool | None, Query(description="only active (true) or ended (false)")] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    return {"warnings": queries.list_warnings(session, who.scope, active, limit, conceal=conceals(who))}


@router.get("/{warning_id}", summary="One warning: the rules engine's decision and call-out counts by state")
def get_warning(warning_id: str, session: SessionDep, who: CallerDep) -> dict[str, Any]:
    out = queries.get_warning(session, warning_id, who.scope, conceal=conceals(who))
    out["callouts"] = counts(session, out["root_id"] or out["id"])
    return out


@router.get("/{warning_id}/record", summary="The warning's record (一事一档), every event in order; ?format=csv")
def get_record(warning_id: str, session: SessionDep, who: CallerDep,
               format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Any:
    events = queries.record(session, warning_id, who.scope, conceal=conceals(who))
    if who.user is None or not who.user.may(Role.OFFICER):  # agencies and viewers: numbers masked
        events = privacy.mask_events(events)
    if format == "csv":
        return Response(record_csv(events), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="record-{warning_id}.csv"'})
    return {"warning": warning_id, "events": events}


def record_csv(events: list[dict[str, Any]]) -> str:
    return csvsafe.document(["seq", "at", "actor", "kind", "data", "hash"], (
        [e["seq"], e["at"], e["actor"], e["kind"], json.dumps(e["data"], ensure_ascii=False), e["hash"]]
        for e in events))


@router.post("/{warning_id}/cancel", summary="Cancel the warning's whole event: every pending step stops")
def cancel_warning(warning_id: str, clock: ClockDep, who: CallerDep, uow: UnitOfWorkDep) -> dict[str, Any]:
    if who.user is not None and not who.user.may(Role.ADMIN):
        raise HTTPException(403, f"user {who.user.name} ({who.user.role.value}) may not cancel warnings: "
                                 "it needs the admin role")
    with uow as session:
        row = queries.get_row(session, warning_id, who.scope)  # an agency may cancel only its own
        if who.key is not None:  # and only within its key's hazards, for every message of the event
            check_event_scope(session, who.key, [row])
        applied = cancel_event(session, warning_id, clock(), who.actor)
        uow.wake()
    return {"warning": warning_id, "status": "cancelled", "callouts_cancelled": applied.cancelled,
            "notices": applied.notices}
