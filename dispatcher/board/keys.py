"""Agency keys on the board (admins): the keys issuing departments post warnings with — who holds
one, what it may post, when it was last used — create one (its secret shown once, on this page
only) and revoke one. The same services as ``jiaoying keys``."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..db.session import transaction
from ..db.tables import ApiKeyRow
from ..domain.hazards import Hazard, parse_hazard
from ..intake.schema import text_problem
from ..services import keys
from ..services.users import Role
from ..web.deps import ClockDep, SettingsDep, UnitOfWorkDep
from .actions import FormField, acting, refuse
from .pages import Ctx, context, render, require
from .views import stamp

router = APIRouter()
log = logging.getLogger("jiaoying.board")
_FIELDS = {"agency": "部门", "senders": "发布者标识"}  # create_key's fields, as the form names them
_KEY_ID_LENGTH: int = ApiKeyRow.__table__.c.id.type.length


def _page(ctx: Ctx, request: Request, status: int = 200, **values: object) -> Response:
    with transaction(ctx.settings.database_url, write=False) as session:
        rows = [{"id": r.id, "agency": r.agency, "hazards": r.hazards, "senders": r.senders,
                 "created": stamp(r.created_at), "last_used": stamp(r.last_used_at),
                 "revoked": stamp(r.revoked_at)} for r in keys.list_keys(session)]
    values = {"keys": rows, "hazards": list(Hazard), "created": None, "error": "", "form": {},
              "request_done": request.query_params.get("done", "")} | values
    return render(ctx, request, "keys.html", status, **values)


@router.get("/board/keys")
def keys_page(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    require(ctx, Role.ADMIN)
    return _page(ctx, request)


@router.post("/board/keys")
async def create(request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep) -> Response:
    form = await request.form()
    act = acting(request, settings, clock(), str(form.get("csrf", "")), Role.ADMIN)
    ctx = act.ctx
    agency = str(form.get("agency", "")).strip()
    senders = [s.strip() for s in str(form.get("senders", "")).replace("，", ",").split(",") if s.strip()]
    chosen = [str(h) for h in form.getlist("hazards")]
    entered = {"agency": agency, "senders": ", ".join(senders), "hazards": chosen}
    try:
        hazards = [parse_hazard(h) for h in chosen] or None
        if not agency:
            raise ValueError(ctx.t("请填写部门标识（如 qingxi-qx）。"))
    except ValueError as exc:
        return _page(ctx, request, 422, error=str(exc), form=entered)
    try:
        with uow as session:
            key, token = keys.create_key(session, agency, ctx.now, hazards, senders or None)
    except keys.KeyInputError as exc:  # NUL, too long: nothing was stored (the transaction rolled back)
        problem = exc.problem if ctx.lang == "en" else exc.zh
        return _page(ctx, request, 422, error=f"{ctx.t(_FIELDS[exc.field])}{ctx.t('：')}{problem}", form=entered)
    log.warning("agency key %s created for %s by user %s", key.id, key.agency, act.user.name)
    return _page(ctx, request, 201, created={"id": key.id, "agency": key.agency, "token": token})


@router.post("/board/keys/{key_id}/revoke")
def revoke(key_id: str, request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep,
           csrf: FormField = "", confirm: FormField = "") -> Response:
    act = acting(request, settings, clock(), csrf, Role.ADMIN)
    ctx = act.ctx
    if confirm != "yes":
        return refuse(ctx, request, ctx.t("吊销前请勾选确认。"), 422)
    # An id no key can have (NUL, which PostgreSQL cannot compare; longer than the column) is not
    # looked up: it is no key, as an unknown one.
    if text_problem(key_id) or len(key_id) > _KEY_ID_LENGTH:
        shown = key_id.encode("unicode_escape").decode("ascii")
        return refuse(ctx, request, ctx.t("没有可吊销的密钥 {key}。").format(key=shown[:80]), 404)
    with uow as session:
        revoked = keys.revoke_key(session, key_id, ctx.now)
    if not revoked:
        return refuse(ctx, request, ctx.t("没有可吊销的密钥 {key}。").format(key=key_id), 404)
    log.warning("agency key %s revoked by user %s", key_id, act.user.name)
    return RedirectResponse("/board/keys?done=revoked", status_code=303)
