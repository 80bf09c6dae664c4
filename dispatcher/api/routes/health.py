"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ...db.session import transaction
from ...services.readiness import database_checks
from ..deps import ClockDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database, schema, site, broker, scheduler and workers all making progress")
def readyz(settings: SettingsDep, clock: ClockDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:  # its own transaction: a database that cannot be reached is a check's answer, not an error
        with transaction(settings.database_url, write=False) as session:
            for name, answer in database_checks(session, settings.database_url, clock()):
                checks[name] = answer  # one by one: those made before a failure stand
    except Exception as exc:  # readiness reports any failure rather than raising it
        checks.setdefault("database", f"unreachable: {type(exc).__name__}")
    if settings.broker_url:
        checks["broker"] = broker_check(settings.broker_url)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


def broker_check(url: str) -> str:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return "ok"
    except redis.RedisError as exc:
        return f"unreachable: {type(exc).__name__} (work waits in the database)"
