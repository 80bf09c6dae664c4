"""Call-outs: per-warning lists, and the duty officer's actions (acknowledge on behalf, re-call)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ...db.tables import MAX_ID
from ...domain.callouts import AckVia, CalloutState
from ...intake.schema import text_problem
from ...services import ack, callout_views, drills
from ...services import warnings as queries
from ...services.errors import NotFound
from ...services.users import Role
from ..deps import CallerDep, ClockDep, OfficerDep, SessionDep, UnitOfWorkDep
from .warnings import conceals

router = APIRouter(tags=["callouts"])

CalloutId = Annotated[int, Path(ge=1, le=MAX_ID, description=f"the call-out's id (1 to {MAX_ID})")]


class ManualAck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] = Field(
        description="how the official was reached, e.g. 已通过座机联系本人确认")

    @field_validator("note")
    @classmethod
    def _text(cls, value: str) -> str:
        if problem := text_problem(value):
            raise ValueError(problem)
        return value


@router.get("/api/v1/warnings/{warning_id}/callouts",
            summary="Every call-out of the warning's event; ?state=unreached gives the 未叫醒 list")
def warning_callouts(warning_id: str, session: SessionDep, who: CallerDep,
                     state: Annotated[CalloutState | None, Query(description="only call-outs in this state")] = None,
                     ) -> dict[str, Any]:
    if "\x00" in warning_id:  # PostgreSQL cannot compare text holding NUL: no warning's id has one
        raise NotFound(f"no warning {warning_id}")
    row = queries.get_row(session, warning_id, who.scope)
    record = row.root_id or row.id
    show = who.user is not None and who.user.may(Role.OFFICER)
    callouts = callout_views.list_callouts(session, record, show_phones=show)
    if conceals(who) and drills.concealed(session, [record]):  # a blind drill: as real until revealed
        drills.conceal_callouts(callouts)
    if state is not None:
        callouts = [c for c in callouts if c["state"] == state.value]
    return {"warning": warning_id, "counts": callout_views.counts(session, record), "callouts": callouts}


@router.post("/api/v1/callouts/{callout_id}/ack", summary="Acknowledge on the official's behalf (note required)")
def manual_ack(callout_id: CalloutId, body: ManualAck, clock: ClockDep, who: OfficerDep,
               uow: UnitOfWorkDep) -> dict[str, Any]:
    with uow as session:  # an ignored acknowledgement is recorded too: committed before the 409
        result = ack.acknowledge_callout(session, clock(), callout_id, via=AckVia.MANUAL, by=who.actor,
                                         note=body.note)
    if not result.acknowledged:
        raise HTTPException(409, f"call-out {callout_id} is not open ({result.outcome}); nothing changed")
    return {"callout": callout_id, "outcome": result.outcome}


@router.post("/api/v1/callouts/{callout_id}/recall", summary="Run the call-out's next step now")
def recall(callout_id: CalloutId, clock: ClockDep, who: OfficerDep, uow: UnitOfWorkDep) -> dict[str, Any]:
    try:
        with uow as session:
            done = ack.recall(session, clock(), callout_id, by=who.actor)
            uow.wake()
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"callout": callout_id, "done": done}
