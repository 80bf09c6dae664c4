"""One error shape for every refusal: {"error": sentence, "errors": [{"field", "message"}]} — and, for
a request that wants a page (the board's, which the app factory hands to ``install``), the same
refusal as a page.

A request that fails because the database cannot be reached (down, restarting, refusing
connections) is answered 503 with Retry-After: the client should try again, nothing was done."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..intake.errors import IntakeError
from ..services.errors import Forbidden, NotFound, NotReady

log = logging.getLogger("jiaoying.api")
RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = "数据库暂时不可用，请稍后重试 — the database is unavailable; retry in a few seconds"
# PostgreSQL SQLSTATEs that mean "no usable connection": class 08 (connection exception), the
# server shutting down or starting up, too many connections.
_PG_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
# SQLite: the file cannot be opened or is held by another writer past the busy timeout.
_SQLITE_UNAVAILABLE = ("unable to open database file", "database is locked", "disk i/o error")

# A refused request answered as a page, or None: the request wants the JSON answer.
PageAnswer = Callable[[Request, StarletteHTTPException], Awaitable[Response | None]]


def error_body(message: str, problems: list[dict[str, str]] | None = None) -> dict[str, object]:
    body: dict[str, object] = {"error": message}
    if problems:
        body["errors"] = problems
    return body


def database_unavailable(exc: BaseException) -> bool:
    """A connection-level database failure (the DBAPI lost or could not open its connection), as
    opposed to an error in the statement, which stays a 500."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated:
        return True
    orig, message = exc.orig, _first_line(exc.orig).lower()
    if isinstance(exc, InterfaceError):  # e.g. "the connection is closed"; not a bad parameter
        return "connection" in message and "closed" in message
    if type(orig).__module__.startswith("psycopg"):
        # psycopg gives no SQLSTATE when it could not connect or the connection broke.
        sqlstate = getattr(orig, "sqlstate", None)
        return sqlstate is None or sqlstate.startswith(_PG_UNAVAILABLE)
    return any(m in message for m in _SQLITE_UNAVAILABLE)


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def install(app: FastAPI, page: PageAnswer | None = None) -> None:
    """The app's exception handlers. ``page`` answers an HTTPException as a page when the request
    wants one (it returns None otherwise: the JSON answer)."""

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # a bug, not an outage: the server's 500 and its traceback
        log.warning("%s %s: database unavailable (%s)", request.method, request.url.path,
                    _first_line(getattr(exc, "orig", exc)))
        return JSONResponse(error_body(DATABASE_UNAVAILABLE), status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"})

    app.add_exception_handler(OperationalError, _database)
    app.add_exception_handler(InterfaceError, _database)

    @app.exception_handler(IntakeError)
    async def _intake(_: Request, exc: IntakeError) -> JSONResponse:
        problems = [{"field": p.field, "message": p.message} for p in exc.problems]
        return JSONResponse(error_body(exc.message, problems), status_code=exc.status)

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=403)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=404)

    @app.exception_handler(NotReady)
    async def _not_ready(_: Request, exc: NotReady) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if page is not None and (answer := await page(request, exc)) is not None:
            return answer
        return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p not in ("query", "body", "path")),
             "message": str(e["msg"]).removeprefix("Value error, ")}
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(error_body(message, problems), status_code=422)
