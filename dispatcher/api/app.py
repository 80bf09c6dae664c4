"""The application factory: one app for API, webhooks and (later) the board."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from .. import __version__
from ..config import Settings, get_settings
from . import errors
from .routes import health, plans, warnings


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    app = FastAPI(
        title="Jiaoying 叫应",
        version=__version__,
        summary="Warning dispatch and call-out service for county emergency-management offices",
        docs_url="/docs",
    )
    app.state.settings = settings or get_settings()
    app.state.clock = clock
    errors.install(app)
    for router in (warnings.router, plans.router, health.router):
        app.include_router(router)
    return app
