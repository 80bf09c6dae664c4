"""One error shape for every refusal: {"error": sentence, "errors": [{"field", "message"}]} — and, for
a browser asking for a board page, the same refusal as a board page in the board's language."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..intake.errors import IntakeError
from ..services.errors import Forbidden, NotFound, NotReady


def error_body(message: str, problems: list[dict[str, str]] | None = None) -> dict[str, object]:
    body: dict[str, object] = {"error": message}
    if problems:
        body["errors"] = problems
    return body


def _board_page(request: Request) -> bool:
    """A browser asking for a board page (not its event stream, not a script)."""
    return (request.url.path.startswith("/board") and not request.url.path.endswith("/live")
            and "text/html" in request.headers.get("accept", ""))


def install(app: FastAPI) -> None:
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
        if _board_page(request):
            from ..board.pages import error_page

            return await run_in_threadpool(error_page, request, exc.status_code, str(exc.detail), exc)
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
