"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ...db import sites_repo
from ...db.migrate import head_revision
from ...db.session import transaction
from ...services.heartbeat import engine_health
from ..deps import ClockDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database, schema, site, broker, scheduler and workers all making progress")
def readyz(settings: SettingsDep, clock: ClockDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        with transaction(settings.database_url, write=False) as session:
            session.execute(text("SELECT 1"))
            checks["database"] = "ok"
            rev = MigrationContext.configure(session.connection()).get_current_revision()
            head = head_revision(settings.database_url)
            checks["schema"] = "ok" if rev == head else f"at {rev}, expected {head}: run `jiaoying db upgrade`"
            checks["site"] = "ok" if sites_repo.site_digest(session) else "no site loaded: run `jiaoying load`"
            checks.update(engine_health(session, clock()))
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
