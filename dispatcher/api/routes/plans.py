"""Plan preview: who a warning would call, and the readiness gaps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...channels.registry import rate_limits
from ...services.preview import preview
from ...services.site import current_site
from ..deps import ClockDep, KeyDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])


@router.get("/preview", summary="Who would be called, by which steps, who cannot be reached, and whether the "
                                "configured rate limits let each step reach everyone in time")
def plan_preview(
    session: SessionDep, clock: ClockDep, _key: KeyDep, settings: SettingsDep,
    hazard: Annotated[str, Query(description="hazard code, e.g. rainstorm")],
    level: Annotated[str, Query(description="blue, yellow, orange or red")],
    areas: Annotated[str, Query(description="comma-separated division codes (may be empty when zones are given)")] = "",
    at: Annotated[datetime | None, Query(
        description="the warning's time with a UTC offset, e.g. 2026-07-16T03:10:00+08:00, in the years "
                    "2000 to 2099 (default: now)")] = None,
    sender: Annotated[str | None, Query(description="apply plans' sender filters for this sender")] = None,
    zones: Annotated[str, Query(description="comma-separated hazard-zone ids of the site (areas.yaml zones)")] = "",
) -> dict[str, Any]:
    codes = [a.strip() for a in areas.split(",") if a.strip()]
    named = [z.strip() for z in zones.split(",") if z.strip()]
    return preview(current_site(session), hazard, level, codes, at or clock(), sender, limits=rate_limits(settings),
                   settings=settings, zones=named)
