"""Plans and roll-calls as JSON for the database, and back. The shapes mirror plans.yaml and checks.yaml."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from ..domain.channels import Channel
from ..domain.checks import RollCall, RollCallTarget, SpotCheck, WeeklyWindow
from ..domain.duty import DutyPosition
from ..domain.hazards import Hazard, Level
from ..domain.plans import (
    Broadcast,
    DutyTarget,
    FinalEscalation,
    Match,
    Plan,
    QuietHours,
    Recipient,
    RoleTarget,
    Scope,
    Step,
    Target,
    TownDutyTarget,
)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": plan.id,
        "name": plan.name,
        "match": {
            "hazards": sorted(h.value for h in plan.match.hazards),
            "levels": sorted(lv.value for lv in plan.match.levels),
            "areas": list(plan.match.areas),
            "senders": list(plan.match.senders),
            "zones": list(plan.match.zones),
        },
        "targets": [_target_to_dict(t) for t in plan.targets],
        "steps": [
            {"after": s.after.total_seconds(), "channels": [c.value for c in s.channels], "to": s.to.value}
            for s in plan.steps
        ],
    }
    if plan.final:
        out["final"] = {
            "after": plan.final.after.total_seconds(),
            "to": [r.value for r in plan.final.to],
            "channels": [c.value for c in plan.final.channels],
        }
    if plan.broadcast:
        out["broadcast"] = {"repeat": plan.broadcast.repeat}
    if plan.quiet_hours:
        q = plan.quiet_hours
        out["quiet_hours"] = {"start": q.start.strftime("%H:%M"), "end": q.end.strftime("%H:%M"),
                              "channels": [c.value for c in q.channels]}
    return out


def _target_to_dict(target: Target) -> dict[str, Any]:
    if isinstance(target, DutyTarget):
        return {"duty": [p.value for p in target.positions]}
    if isinstance(target, TownDutyTarget):
        return {"town_duty": [p.value for p in target.positions]}
    return {"roles": list(target.roles), "scope": [s.value for s in target.scopes], "area": target.area,
            "otherwise": [s.value for s in target.otherwise]}


def plan_from_dict(data: dict[str, Any]) -> Plan:
    match = data["match"]
    final = data.get("final")
    quiet = data.get("quiet_hours")
    return Plan(
        id=data["id"],
        name=data["name"],
        match=Match(
            hazards=frozenset(Hazard(h) for h in match["hazards"]),
            levels=frozenset(Level(lv) for lv in match["levels"]),
            areas=tuple(match.get("areas", ())),
            senders=tuple(match.get("senders", ())),
            zones=tuple(match.get("zones", ())),
        ),
        targets=tuple(_target_from_dict(t) for t in data["targets"]),
        steps=tuple(
            Step(timedelta(seconds=s["after"]), tuple(Channel(c) for c in s["channels"]), Recipient(s["to"]))
            for s in data["steps"]
        ),
        final=FinalEscalation(
            timedelta(seconds=final["after"]),
            tuple(Recipient(r) for r in final["to"]),
            tuple(Channel(c) for c in final["channels"]),
        ) if final else None,
        broadcast=Broadcast(data["broadcast"]["repeat"]) if data.get("broadcast") else None,
        quiet_hours=QuietHours(
            time.fromisoformat(quiet["start"]), time.fromisoformat(quiet["end"]),
            tuple(Channel(c) for c in quiet["channels"]),
        ) if quiet else None,
    )


def _target_from_dict(data: dict[str, Any]) -> Target:
    if "duty" in data:
        return DutyTarget(tuple(DutyPosition(p) for p in data["duty"]))
    if "town_duty" in data:
        return TownDutyTarget(tuple(DutyPosition(p) for p in data["town_duty"]))
    otherwise = tuple(Scope(s) for s in data["otherwise"]) if "otherwise" in data else (Scope.ABOVE,)
    return RoleTarget(tuple(data["roles"]), tuple(Scope(s) for s in data["scope"]), data.get("area"), otherwise)


def rollcall_to_dict(rollcall: RollCall) -> dict[str, Any]:
    """A roll-call as stored (``checks`` table) and frozen on each roll-call's record."""
    weekly = rollcall.weekly
    return {
        "id": rollcall.id, "name": rollcall.name, "at": [t.strftime("%H:%M") for t in rollcall.at],
        "weekly": {"day": weekly.weekday, "from": weekly.start.strftime("%H:%M"), "to": weekly.end.strftime("%H:%M")}
        if weekly else None,
        "answer_within": rollcall.answer_within.total_seconds(), "channels": [c.value for c in rollcall.channels],
        "positions": [p.value for p in rollcall.positions], "rooms": list(rollcall.rooms),
        "tell": [c.value for c in rollcall.tell],
        # only when not the default: a site (and a frozen roll-call) that does not use it reads as before
        **({"call": rollcall.call.value} if rollcall.call is not RollCallTarget.PEOPLE else {}),
    }


def rollcall_from_dict(data: dict[str, Any]) -> RollCall:
    weekly = data.get("weekly")
    return RollCall(
        id=data["id"], name=data["name"], at=tuple(time.fromisoformat(t) for t in data.get("at", ())),
        weekly=WeeklyWindow(int(weekly["day"]), time.fromisoformat(weekly["from"]), time.fromisoformat(weekly["to"]))
        if weekly else None,
        answer_within=timedelta(seconds=data["answer_within"]),
        channels=tuple(Channel(c) for c in data["channels"]),
        positions=tuple(DutyPosition(p) for p in data["positions"]), rooms=tuple(data.get("rooms", ())),
        tell=tuple(Channel(c) for c in data.get("tell", ("sms", "voice"))),
        call=RollCallTarget(data.get("call", RollCallTarget.PEOPLE.value)),
    )


def spotcheck_to_dict(spotcheck: SpotCheck) -> dict[str, Any]:
    """A spot-check as stored (``checks`` table) and frozen on each spot-check's record."""
    return {"id": spotcheck.id, "name": spotcheck.name, "questions": list(spotcheck.questions),
            "roles": list(spotcheck.roles), "size": spotcheck.size, "skip_days": spotcheck.skip_days,
            "answer_within": spotcheck.answer_within.total_seconds(),
            "channels": [c.value for c in spotcheck.channels]}


def spotcheck_from_dict(data: dict[str, Any]) -> SpotCheck:
    return SpotCheck(id=data["id"], name=data["name"], questions=tuple(data["questions"]), roles=tuple(data["roles"]),
                     size=int(data["size"]), skip_days=int(data["skip_days"]),
                     answer_within=timedelta(seconds=data["answer_within"]),
                     channels=tuple(Channel(c) for c in data["channels"]))
