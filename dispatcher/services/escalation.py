"""Running due steps: the durable timers. Each pass claims call-outs whose next step is due,
turns the step into queued attempts (one per recipient x channel, each with its unique key),
and moves the timer to the next step. The last step's passing marks the call-out unreached and
runs the plan's final escalation (the 未叫醒 list)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ..db.queue import attempt_values, claim_due_callouts, insert_attempts
from ..db.record_repo import append_event
from ..db.tables import CalloutRow
from ..domain.callouts import CalloutState, FrozenSteps, purpose_for
from ..domain.escalation import CalloutFacts, advance
from ..domain.record import EventKind
from ..domain.rules import PlannedStep
from ..domain.site import Site
from .site import current_site

log = logging.getLogger("jiaoying.escalation")
STEP_RETRY = timedelta(seconds=60)


def advance_due(session: Session, now: datetime, limit: int = 500) -> int:
    """Run every step due by ``now`` for up to ``limit`` call-outs; returns how many advanced."""
    callouts = claim_due_callouts(session, now, limit)
    if not callouts:
        return 0
    site = current_site(session)
    attempts: list[dict[str, Any]] = []
    log_: dict[str, list[dict[str, Any]]] = defaultdict(list)
    unreached: dict[str, list[dict[str, Any]]] = defaultdict(list)
    failed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for callout in callouts:
        try:
            moved = advance(facts_of(callout), now)
            if moved is None:
                raise ValueError(f"step {callout.next_step} of {len(callout.steps)} is not due or does not exist")
            made, skipped = step_attempts(site, callout, moved.step, now)
        except Exception as exc:  # one call-out the engine cannot run must not stop the others
            log.exception("call-out %s: step %s could not be run", callout.id, callout.next_step)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if callout.error is None:
                failed[callout.record_id].append({"callout": callout.id, "person": callout.person_id,
                                                  "step": callout.next_step, "error": error})
            callout.error, callout.next_due = error, now + STEP_RETRY
            continue
        attempts.extend(made)
        entry = {"callout": callout.id, "person": callout.person_id, "step": moved.step.index,
                 "attempts": len(made)}
        if skipped:
            entry["unreachable"] = skipped
        if moved.step.final:
            callout.unreached_at = now
            unreached[callout.record_id].append(entry)
        else:
            log_[callout.record_id].append(entry)
        callout.state, callout.next_step, callout.next_due = moved.state, moved.next_step, moved.next_due
        callout.error = None
    insert_attempts(session, attempts)
    for record, entries in log_.items():
        append_event(session, record, EventKind.STEPS, "engine", now, {"steps": entries})
    for record, entries in failed.items():
        append_event(session, record, EventKind.STEP_FAILED, "engine", now, {"steps": entries})
    for record, entries in unreached.items():
        append_event(session, record, EventKind.UNREACHED, "engine", now, {"callouts": entries})
    return len(callouts)


def facts_of(callout: CalloutRow) -> CalloutFacts:
    """The rules' view of a call-out row (its steps parsed only as needed)."""
    return CalloutFacts(CalloutState(callout.state), FrozenSteps(callout.steps), callout.next_step, callout.next_due)


def step_attempts(site: Site, callout: CalloutRow, step: PlannedStep,
                  now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """The attempts a step makes, and who it could not reach on any of its channels."""
    made, skipped = [], []
    for recipient in step.recipients:
        person = site.people.get(recipient)
        channels = [c for c in step.channels if person is not None and person.reachable_by(c)]
        if not channels:
            skipped.append(recipient)
        purpose = purpose_for(step, recipient, callout.person_id)
        made.extend(attempt_values(callout, f"{callout.id}:{step.index}:{channel.value}:{recipient}", step.index,
                                   purpose.value, channel.value, recipient, now) for channel in channels)
    return made, skipped
