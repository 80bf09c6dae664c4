"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ...db import sites_repo
from ...db.migrate import current_revision, head_revision
from ...db.session import transaction
from ..deps import SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database reachable, schema current, a site loaded")
def readyz(settings: SettingsDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        with transaction(settings.database_url) as session:
            session.execute(text("SELECT 1"))
            checks["database"] = "ok"
            rev, head = current_revision(settings.database_url), head_revision(settings.database_url)
            checks["schema"] = "ok" if rev == head else f"at {rev}, expected {head}: run `jiaoying db upgrade`"
            checks["site"] = "ok" if sites_repo.site_digest(session) else "no site loaded: run `jiaoying load`"
    except Exception as exc:  # readiness reports any failure rather than raising it
        checks.setdefault("database", f"unreachable: {type(exc).__name__}")
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
