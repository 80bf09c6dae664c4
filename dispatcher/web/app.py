"""The application factory: one app for the API, the webhooks and the duty officers' board."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .. import __version__, accesslog
from ..api import errors
from ..api.bodylimit import BodyLimit
from ..api.replies import ReplyBatcher
from ..api.routes import aliyun, broadcast, callouts, health, links, metrics, plans, tencent, twilio, warnings
from ..board import routes as board
from ..board.actions import Refused
from ..board.pages import http_error_page
from ..config import Settings, get_settings
from ..db.session import transaction
from ..services import users
from ..services.site import warm_site

log = logging.getLogger("jiaoying.app")


class Runtime(Protocol):
    def kick(self) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def production_app() -> FastAPI:
    """One API process of ``jiaoying serve --workers N`` (production mode): settings from the
    environment (an unsafe secret refused), the system clock, no engine in the process."""
    from ..clock import system_clock
    from ..gcpause import tune_for_service
    from ..runtime.wakeup import SchedulerBell

    settings = get_settings()
    settings.require_safe_secret()
    app = create_app(settings, clock=system_clock(settings),
                     runtime=SchedulerBell(settings.broker_url) if settings.broker_url else None)
    tune_for_service()
    return app


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = utc_now,
               runtime: Runtime | None = None) -> FastAPI:
    """The app. With a ``runtime`` (the embedded worker and scheduler) it is started and stopped
    with the app and woken after commits that create work. Without ``settings`` (an ASGI server's
    ``--factory``) the settings come from the environment and an unsafe secret is refused."""
    if settings is None:
        settings = get_settings()
        settings.require_safe_secret()
    accesslog.install()  # link tokens never reach the access log

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The first warning posted after a start must not wait while the county's people are read.
        threading.Thread(target=_warm_site, args=(settings.database_url,), name="jiaoying-warm-site",
                         daemon=True).start()
        users.PASSWORD_CHECKS.prepare()
        if runtime is not None:
            runtime.start()
        try:
            yield
        finally:
            if runtime is not None:
                runtime.stop()

    app = FastAPI(
        title="Jiaoying 叫应",
        version=__version__,
        summary="Warning dispatch and call-out service for county emergency-management offices",
        docs_url="/docs",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.runtime = runtime
    app.state.replies = ReplyBatcher(settings.database_url, clock)  # SMS replies, written in batches
    errors.install(app, page=http_error_page)  # a browser asking for a board page gets the refusal as a page
    app.add_exception_handler(Refused, _refused)
    app.add_middleware(BodyLimit, intake_limit=settings.max_body_bytes)  # before anything reads a body
    for router in (warnings.router, callouts.router, plans.router, health.router, twilio.router, aliyun.router,
                   tencent.router, links.router, broadcast.router, metrics.router, board.router):
        app.include_router(router)
    return app


async def _refused(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return exc.response


def _warm_site(url: str) -> None:
    """Read the loaded site into this process's cache (intake checks every warning's areas with it)."""
    try:
        with transaction(url, write=False) as session:
            warm_site(session)
    except Exception:  # no schema yet, the database away: the first request reads it instead
        log.debug("the site could not be read at start-up", exc_info=True)
