"""Liveness that means progress: the scheduler and each worker stamp a heartbeat when they make a
pass, and readiness compares queued work with the last sign of progress (a worker that is alive
but consuming nothing passes any PID or TCP check)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.queue import claimable
from ..db.tables import AttemptRow, CalloutRow, HeartbeatRow, WarningRow
from ..domain.callouts import OPEN_STATES, Purpose
from ..domain.channels import Channel

SCHEDULER_STALE_S = 30
QUEUE_STALE_S = 60


def beat(session: Session, name: str, role: str, now: datetime, info: dict[str, Any] | None = None) -> None:
    row = session.get(HeartbeatRow, name)
    if row is None:
        session.add(HeartbeatRow(name=name, role=role, at=now, info=info or {}))
    else:
        row.at, row.info = now, info or {}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the engine, said for the API and logs (English) and for the board (Chinese)."""

    check: str
    en: str
    zh: str


def engine_health(session: Session, now: datetime) -> dict[str, str]:
    """Readiness checks for the call-out engine (/readyz); each value is "ok" or a sentence."""
    problems = engine_problems(session, now)
    return {check: "; ".join(p.en for p in problems if p.check == check) or "ok" for check in CHECKS}


CHECKS = ("scheduler", "workers", "channels", "escalations", "warnings", "timers", "rollcalls", "drills",
          "forwarding")


def engine_problems(session: Session, now: datetime) -> list[Problem]:
    """What the board's banner and /readyz report, in the order of CHECKS; empty when all is well."""
    problems: list[Problem] = []
    last = session.scalar(select(func.max(HeartbeatRow.at)).where(HeartbeatRow.role == "scheduler"))
    age = (now - last).total_seconds() if last else None
    if age is None:
        problems.append(Problem("scheduler", "no scheduler has run", "调度器从未运行"))
    elif age >= SCHEDULER_STALE_S:
        problems.append(Problem("scheduler", f"no scheduler pass for {age:.0f} s", f"调度器已 {age:.0f} 秒没有运行"))
    # Attempts a worker could take now; one waiting for its retry time is not a stalled worker's fault.
    oldest = session.scalar(select(func.min(func.coalesce(AttemptRow.not_before, AttemptRow.created_at)))
                            .where(claimable(now)))
    waiting = (now - oldest).total_seconds() if oldest else 0.0
    if waiting >= QUEUE_STALE_S:
        queued = session.scalar(select(func.count()).where(claimable(now))) or 0
        problems.append(Problem("workers", f"stalled: {queued} attempts queued, the oldest waiting {waiting:.0f} s",
                                f"发送停滞：{queued} 条待发，最早的已等待 {waiting:.0f} 秒"))
    problems += _halted_channels(session, now)
    problems += _final_escalations(session, now)
    problems += _stuck(session)
    problems += _missed_rollcalls(session, now)
    problems += _missed_drills(session, now)
    overdue = session.scalar(select(func.min(CalloutRow.next_due)).where(CalloutRow.state.in_(OPEN_STATES)))
    late = (now - overdue).total_seconds() if overdue else 0.0
    if late >= QUEUE_STALE_S:
        problems.append(Problem("timers", f"escalation steps overdue by {late:.0f} s",
                                f"升级步骤已逾期 {late:.0f} 秒未执行"))
    problems += _forwarding(session, now)
    return problems


def _forwarding(session: Session, now: datetime) -> list[Problem]:
    """Forwarding (services/forwarding.py): a forwarding file the scheduler cannot use, a target that
    refused our key or the warning (not retried), one failing for longer than QUEUE_STALE_S."""
    from .forwarding import problems as forwarding_problems

    since = now - timedelta(seconds=QUEUE_STALE_S)
    found: list[Problem] = []
    for (info,) in session.execute(select(HeartbeatRow.info).where(HeartbeatRow.role == "scheduler",
                                                                   HeartbeatRow.at >= since)):
        error = (info or {}).get("forwarding_error")
        if error and not any(error in p.en for p in found):
            found.append(Problem("forwarding", f"the forwarding file cannot be used: {error}",
                                 f"转发配置文件有误，无法使用：{error}"))
    return found + [Problem("forwarding", en, zh) for en, zh in forwarding_problems(session, now, QUEUE_STALE_S)]


def _halted_channels(session: Session, now: datetime) -> list[Problem]:
    """Providers a live worker has halted on a configuration error (credentials refused, template
    not approved, account in arrears): nothing goes out on that channel until someone fixes it."""
    since = now - timedelta(seconds=QUEUE_STALE_S)
    halted: dict[str, str] = {}
    simulated: set[str] = set()
    failing: dict[str, tuple[str, str]] = {}
    for (info,) in session.execute(select(HeartbeatRow.info).where(HeartbeatRow.role.in_(("worker", "scheduler")),
                                                                   HeartbeatRow.at >= since)):
        for channel, reason in sorted(((info or {}).get("halted") or {}).items()):
            halted.setdefault(str(channel), str(reason))
        simulated |= {str(c) for c in (info or {}).get("simulated") or ()}
        for channel, why in sorted(((info or {}).get("failover") or {}).items()):
            on = ((info or {}).get("providers") or {}).get(channel, "none")
            failing.setdefault(str(channel), (str(on), str(why)))
    problems = [Problem("channels", f"{channel} halted ({reason}): fix the provider's configuration; its messages wait",
                        f"{_channel_zh(channel)}通道已停发（{reason}）：请修正服务商配置，相关消息在排队等待")
                for channel, reason in sorted(halted.items())]
    problems += [Problem("channels", f"{channel} failed over: on {on} ({why})",
                         f"{_channel_zh(channel)}通道已切换到 {on}（{why}）")
                 for channel, (on, why) in sorted(failing.items())]
    if simulated:  # production with JIAOYING_ALLOW_SIMULATORS=1
        names = ", ".join(sorted(simulated))
        problems.append(Problem("channels", f"{names} on the simulator (JIAOYING_ALLOW_SIMULATORS=1): "
                                            "these messages reach no phone",
                                f"{'、'.join(_channel_zh(c) for c in sorted(simulated))}通道使用模拟器"
                                "（JIAOYING_ALLOW_SIMULATORS=1）：这些消息不会到达任何手机"))
    return problems


def _final_escalations(session: Session, now: datetime) -> list[Problem]:
    """The 未叫醒 list is the last message of a call-out: one that a provider refused is retried until
    it goes or the call-out is answered, and loud meanwhile."""
    count, since = session.execute(
        select(func.count(), func.min(AttemptRow.created_at)).where(
            AttemptRow.purpose == Purpose.UNREACHED, AttemptRow.status.in_(("queued", "sending")),
            AttemptRow.not_before.is_not(None))).one()
    if not count:
        return []
    seconds = (now - since).total_seconds()
    return [Problem("escalations", f"{count} final escalation(s) not delivered, retrying for {seconds:.0f} s",
                    f"{count} 条未叫醒通报未送出，已重试 {seconds:.0f} 秒")]


def _missed_rollcalls(session: Session, now: datetime) -> list[Problem]:
    """Scheduled duty roll-calls of the last day that never ran (the scheduler was away past their
    catch-up window), as the last scheduler pass found them (services/rollcalls.missed)."""
    since = now - timedelta(seconds=QUEUE_STALE_S)
    missed: set[str] = set()
    for (info,) in session.execute(select(HeartbeatRow.info).where(HeartbeatRow.role == "scheduler",
                                                                   HeartbeatRow.at >= since)):
        missed |= {str(m) for m in (info or {}).get("missed_rollcalls") or ()}
    if not missed:
        return []
    names = sorted(missed)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return [Problem("rollcalls", f"{len(names)} scheduled roll-call(s) did not run: {shown}",
                    f"{len(names)} 次定时值班点名未按时进行：{shown}")]


def _missed_drills(session: Session, now: datetime) -> list[Problem]:
    """Scheduled drills of the last day that never ran: the engine reached them later than their
    catch-up (services/drills.missed). Naming one reveals nothing: it will not run."""
    from .drills import missed

    found = missed(session, now)
    if not found:
        return []
    shown = ", ".join(f"{d}@{at.isoformat()}" for d, at in found[:5]) + (
        f" and {len(found) - 5} more" if len(found) > 5 else "")
    return [Problem("drills", f"{len(found)} scheduled drill(s) did not run: {shown}",
                    f"{len(found)} 次定时演练未按时进行：{shown}")]


def _stuck(session: Session) -> list[Problem]:
    """Warnings and call-outs the engine could not process (it tries again; the others carry on)."""
    warnings = session.execute(select(WarningRow.id, WarningRow.apply_error).where(
        WarningRow.applied_at.is_(None), WarningRow.apply_error.is_not(None)).order_by(WarningRow.received_at)).all()
    callouts = session.scalar(select(func.count()).where(
        CalloutRow.state.in_(OPEN_STATES), CalloutRow.error.is_not(None))) or 0
    problems = []
    if warnings:
        first = warnings[0]
        problems.append(Problem("warnings",
                                f"{len(warnings)} warning(s) could not be applied ({first.id}: {first.apply_error})",
                                f"{len(warnings)} 条预警未能启动叫应（{first.id}：{first.apply_error}）"))
    if callouts:
        problems.append(Problem("warnings", f"{callouts} call-out(s) could not run their step",
                                f"{callouts} 个叫应未能执行升级步骤"))
    return problems


def _channel_zh(channel: str) -> str:
    try:
        return Channel(channel).zh
    except ValueError:
        return channel
