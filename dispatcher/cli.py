"""The ``jiaoying`` command. Errors go to stderr with a non-zero exit."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_carriers import carriers_app
from .cli_db import transaction
from .cli_drill import drill_app
from .cli_forwarding import forwarding_app
from .cli_lang import LangOption, checked_lang
from .cli_report import report
from .cli_rollcall import rollcall_app
from .cli_spotcheck import spotcheck_app
from .cli_workbook import export_app, import_app
from .config import Settings, UnsafeSecret, project_root
from .config import get_settings as _load_settings

app = typer.Typer(help="Jiaoying 叫应 — warning dispatch and call-out service.", no_args_is_help=True,
                  add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Agency API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Duty-officer logins.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(carriers_app, name="carriers")
app.add_typer(forwarding_app, name="forwarding")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(rollcall_app, name="rollcall")
app.add_typer(drill_app, name="drill")
app.add_typer(spotcheck_app, name="spotcheck")
app.command("report")(report)

out = Console()
err = Console(stderr=True)


def now() -> datetime:
    return datetime.now(UTC)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def get_settings() -> Settings:
    """The settings from the environment; a bad JIAOYING_* value is an error message, not a traceback."""
    from pydantic import ValidationError

    try:
        return _load_settings()
    except ValidationError as exc:
        problems = "; ".join(
            (f"JIAOYING_{'_'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "")
            + str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise fail(problems) from None


def server_settings() -> Settings:
    """Settings for a process that signs links and sessions: refused with an unsafe secret."""
    settings = get_settings()
    try:
        settings.require_safe_secret()
    except UnsafeSecret as exc:
        raise fail(f"refusing to start: {exc}") from None
    return settings


def database_url(settings: Settings | None = None) -> str:
    """The database of a command that uses one, checked first: a database never upgraded (no
    schema), one whose schema is behind the code, or one that cannot be reached is one line and
    exit 1 — and a SQLite file that does not exist is not created by the check or the command."""
    from .db.migrate import schema_problem

    url = (settings or get_settings()).database_url
    problem = schema_problem(url)
    if problem:
        raise fail(escape(problem))
    return url


def refuse_missing_providers(settings: Settings) -> None:
    """Production: a channel a loaded plan uses with no provider configured is a refusal, not the
    simulator (JIAOYING_ALLOW_SIMULATORS=1 allows it, shown on the board)."""
    from .services.providers import SIMULATOR_HINT, startup_problems

    problems = startup_problems(settings)
    if problems:
        raise fail("refusing to start: " + "; ".join(problems) + SIMULATOR_HINT * any(
            "no provider is configured" in p for p in problems))


def default_site_dir() -> Path:
    configured = get_settings().site_dir
    return Path(configured) if configured else project_root() / "rosters" / "qingxi"


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (SQLite file or PostgreSQL from JIAOYING_DATABASE_URL)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .db.migrate import current_revision, unreachable, upgrade

    settings = get_settings()
    url = settings.database_url
    try:
        upgrade(url)
        revision = current_revision(url)
    except SQLAlchemyError as exc:
        raise fail(escape(unreachable(url, exc))) from None
    out.print(f"database at revision {revision}")
    provision_secret(settings)


def provision_secret(settings: Settings) -> None:
    """No secret configured: create one in the secret file (outside the database), for SQLite or an
    explicit JIAOYING_SECRET_FILE; else say that the servers will need one."""
    from . import secretfile

    if settings.secret_origin != "default":
        return
    path = settings.secret_path
    if not (settings.is_sqlite or settings.secret_file):
        err.print(f"note: no secret key is configured; `jiaoying serve` and `jiaoying scheduler` need "
                  f"JIAOYING_SECRET_KEY (at least {secretfile.MIN_LENGTH} random characters) or "
                  "JIAOYING_SECRET_FILE", highlight=False, soft_wrap=True)
        return
    if secretfile.create(path):
        err.print(f"created a new secret key in {path} (mode 0600; keep it out of backups of the database, "
                  "or set JIAOYING_SECRET_KEY instead)", highlight=False, soft_wrap=True)


@app.command()
def validate(site_dir: Annotated[Path, typer.Argument(help="rosters/<site>")]) -> None:
    """Check a site's files; print every problem as file:line: message."""
    from .sites import check_site

    site, problems = check_site(site_dir)
    for problem in problems:
        err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
    if problems:
        raise fail(f"{len(problems)} problem(s) in {site_dir}")
    assert site is not None
    from .domain.readiness import site_gaps
    from .services.carrier_gaps import template_gaps

    gaps = [g.message for g in site_gaps(site)] + [g["message"] for g in template_gaps(site, get_settings())]
    for gap in gaps:
        err.print(f"readiness gap: {gap}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"{site_dir}: ok — {len(site.areas)} areas, {len(site.people)} officials, "
              f"{len(site.plans)} plans" + (f"; {len(gaps)} readiness gap(s) above" if gaps else ""))


@app.command()
def load(site_dir: Annotated[Path, typer.Argument(help="rosters/<site>")]) -> None:
    """Validate a site and sync it into the database in one transaction."""
    from .services.site import load_site_files
    from .sites import SiteInvalid

    url = database_url()
    try:
        with transaction(url) as session:
            report = load_site_files(session, site_dir, now())
    except SiteInvalid as exc:
        for problem in exc.problems:
            err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        raise fail(f"{len(exc.problems)} problem(s); nothing was loaded") from None
    out.print(f"loaded {site_dir}: {report.summary()}")


@app.command()
def preview(
    hazard: Annotated[str, typer.Option(help="hazard code, e.g. rainstorm")],
    level: Annotated[str, typer.Option(help="blue | yellow | orange | red")],
    areas: Annotated[str, typer.Option(help="comma-separated division codes")] = "",
    at: Annotated[str | None, typer.Option(help="the warning's time, ISO 8601 (default: now)")] = None,
    sender: Annotated[str | None, typer.Option(help="apply plans' sender filters")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    zones: Annotated[str, typer.Option(help="comma-separated hazard-zone ids (areas.yaml zones)")] = "",
    lang: LangOption = "zh",
) -> None:
    """Show who a warning would call, with which steps and why, and the readiness gaps."""
    from .channels.registry import rate_limits
    from .intake.errors import IntakeError
    from .services.errors import NotReady
    from .services.preview import preview as run_preview
    from .services.site import current_site

    lang = checked_lang(lang)
    when = datetime.fromisoformat(at) if at else now()
    if when.tzinfo is None:
        raise fail("--at needs a UTC offset, e.g. 2026-07-16T03:10:00+08:00")
    codes = [a.strip() for a in areas.split(",") if a.strip()]
    url = database_url()
    try:
        with transaction(url) as session:
            result = run_preview(current_site(session), hazard, level, codes, when, sender,
                                 limits=rate_limits(get_settings()), settings=get_settings(),
                                 zones=[z.strip() for z in zones.split(",") if z.strip()])
    except (IntakeError, NotReady) as exc:
        raise fail(str(exc)) from None
    if as_json:
        out.print_json(json.dumps(result, ensure_ascii=False))
    else:
        print_preview(result, lang)


def print_preview(result: dict[str, Any], lang: str = "zh") -> None:
    from .views import preview_table

    # Eight columns: a pipe or a file gets every cell whole (rich would cut them to 80 columns with
    # "…", as in CI); a terminal, as wide as it is.
    console = Console(width=None if sys.stdout.isatty() else 220)
    for renderable in preview_table(result, lang):
        console.print(renderable)


@app.command()
def post(
    file: Annotated[Path, typer.Argument(help="a warning as JSON or CAP 1.2 XML")],
    url: Annotated[str, typer.Option(help="the server")] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(envvar="JIAOYING_API_KEY", help="agency API key")] = "",
    local: Annotated[bool, typer.Option("--local", help="write to the database directly")] = False,
) -> None:
    """Post a warning file to a running server (or straight into the database with --local)."""
    if not file.is_file():
        raise fail(f"{file}: no such file")
    body = file.read_bytes()
    is_xml = body.lstrip().startswith(b"<")
    ctype = "application/cap+xml" if is_xml else "application/json"
    if local:
        result = _post_local(body, ctype)
        typer.echo(json.dumps(result, ensure_ascii=False))  # machine-readable: no wrapping, no markup
        return
    import httpx

    if not key:
        raise fail("an API key is needed: --key or JIAOYING_API_KEY (create one with `jiaoying keys create`)")
    try:
        response = httpx.post(f"{url.rstrip('/')}/api/v1/warnings", content=body, timeout=30,
                              headers={"Content-Type": ctype, "Authorization": f"Bearer {key}"})
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {url}: {exc}") from None
    if response.status_code >= 400:
        raise fail(f"{response.status_code}: {response.json().get('error', response.text)}")
    typer.echo(json.dumps(response.json(), ensure_ascii=False))


def _post_local(body: bytes, ctype: str) -> dict[str, Any]:
    from .api.routes.warnings import parse_body
    from .intake.errors import IntakeError
    from .services.errors import NotReady
    from .services.intake import receive_warning

    url = database_url()
    try:
        draft, fmt = parse_body(ctype, body)
        with transaction(url) as session:
            result = receive_warning(session, draft, key=None, source_format=fmt,
                                     raw=body.decode("utf-8", "replace"), now=now())
    except (IntakeError, NotReady) as exc:
        raise fail(str(exc)) from None
    return {"id": result.id, "status": "accepted" if result.created else "duplicate"}


@keys_app.command("create")
def keys_create(
    agency: Annotated[str, typer.Option(help="the agency, e.g. qingxi-qx")],
    hazards: Annotated[str, typer.Option(help="comma-separated hazards it may post (default: all)")] = "",
    senders: Annotated[str, typer.Option(help="sender ids it may post as (default: the agency)")] = "",
) -> None:
    """Create an API key; the key is printed once, alone on the last line."""
    from .domain.hazards import parse_hazard
    from .services.keys import create_key

    try:
        hazard_list = [parse_hazard(h) for h in hazards.split(",") if h.strip()] or None
    except ValueError as exc:
        raise fail(str(exc)) from None
    sender_list = [s.strip() for s in senders.split(",") if s.strip()] or None
    url = database_url()
    try:
        with transaction(url) as session:
            key, token = create_key(session, agency, now(), hazard_list, sender_list)
    except ValueError as exc:  # a name no key can carry (too long, NUL): said plainly, nothing stored
        raise fail(str(exc)) from None
    scope = ", ".join(sorted(h.value for h in key.hazards)) if key.hazards else "all hazards"
    err.print(f"key {key.id} for {key.agency} ({scope}; senders {', '.join(sorted(key.senders))}). "
              "Store it now: it is not shown again.")
    print(token)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the secrets)."""
    from .services.keys import list_keys

    url = database_url()
    table = Table("id", "agency", "hazards", "senders", "created", "revoked")
    with transaction(url) as session:
        for row in list_keys(session):
            table.add_row(row.id, row.agency, ",".join(row.hazards or ["*"]), ",".join(row.senders),
                          f"{row.created_at:%Y-%m-%d %H:%M}", f"{row.revoked_at:%Y-%m-%d}" if row.revoked_at else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (k_…)."""
    from .services.keys import revoke_key

    with transaction(database_url()) as session:
        if not revoke_key(session, key_id, now()):
            raise fail(f"no active key {key_id}")
    out.print(f"revoked {key_id}")


@app.command()
def record(
    warning: Annotated[str | None, typer.Argument(help="warning id (any message of its event)")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="check that no event, no row it describes and no record was changed or removed")] = False,
    all_records: Annotated[bool, typer.Option(
        "--all", help="with --verify: every record, and the ledger that chains them (finds deleted records)")] = False,
    old_secret_files: Annotated[list[Path] | None, typer.Option(
        "--old-secret-file", help="a file holding a secret used before a rotation (repeatable): "
                                  "what it signed is verified too")] = None,
) -> None:
    """Print a warning's record; --verify checks it against the record key (from the secret key,
    kept outside the database): exit 1 if anything was changed or removed, 2 if it cannot be verified."""
    from . import secretfile
    from .db import record_repo
    from .domain.record import Keyring
    from .services import warnings as queries
    from .services.errors import NotFound

    def verdict(problems: list[str], unverified: list[str], notes: list[str], subject: str) -> None:
        for note in notes:
            err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
        for p in problems:
            err.print(f"TAMPERED: {p}", markup=False, highlight=False, soft_wrap=True)
        for u in unverified:
            err.print(f"CANNOT VERIFY: {u}", markup=False, highlight=False, soft_wrap=True)
        if problems:
            raise fail(f"校验未通过 — {subject}: something was changed or removed after it was written")
        if unverified:
            raise fail(f"无法完全校验 — {subject}: not everything can be verified with this secret", code=2)

    if all_records and warning:
        raise fail("give a warning id or --all, not both")
    if not all_records and not warning:
        raise fail("give a warning id, or --verify --all for every record")
    verify = verify or all_records
    settings = get_settings()
    database_url(settings)
    keys = None
    if verify:
        problem = settings.secret_problem()
        if problem:
            raise fail(f"无法校验 — the record cannot be verified without the secret key: {problem}", code=2)
        older = []
        for path in old_secret_files or []:
            secret = secretfile.read(path)
            if not secret:
                raise fail(f"no secret in {path}", code=2)
            older.append(secret)
        keys = Keyring.of(settings.secret_key, *older)
    if all_records:
        assert keys is not None
        with record_repo.snapshot(settings.database_url) as session:
            result = record_repo.check_all(session, keys)
        verdict(result.problems, result.unverified, [], "the records")
        unkeyed = (f"; {result.unkeyed_records} written before keying (unkeyed, checked by their plain hash chain)"
                   if result.unkeyed_records else "")
        out.print(f"校验通过 — {len(result.records)} records, {result.entries} ledger entries: chains intact, "
                  f"rows agree, no record missing (key {keys.current.id}){unkeyed}", highlight=False)
        return
    assert warning is not None
    with record_repo.snapshot(settings.database_url) if verify else transaction(settings.database_url) as session:
        try:
            events = queries.record(session, warning, None)
            root = queries.get_row(session, warning, None)
        except NotFound as exc:
            raise fail(str(exc)) from None
        checked = record_repo.check(session, root.root_id or root.id, keys) if keys is not None else None
        head = record_repo.head(session, root.root_id or root.id)
    for ev in events:
        out.print(f"{ev['seq']:>4} {ev['hash'][:16]} {ev['at']} {ev['actor']:<22} {ev['kind']:<12} "
                  f"{json.dumps(ev['data'], ensure_ascii=False)}", highlight=False, markup=False)
    if checked is None:
        return
    verdict(checked.problems, checked.unverified, checked.notes, f"the record of {warning}")
    ledger = f", ledger entry {head.ledger_seq}" if head.ledger_seq else ""
    out.print(f"校验通过 — record of {warning}: {checked.count} events, hash chain intact, rows agree; "
              f"head {head.short} (event {head.count}, key {head.key_id or 'none: written before keying'}){ledger}",
              highlight=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API processes on the port (production mode only: "
                                                                 "each takes webhooks and requests)")] = 1,
) -> None:
    """Run the API; without JIAOYING_BROKER_URL also the embedded worker and scheduler."""
    import uvicorn

    from .api.app import create_app
    from .clock import system_clock
    from .db.session import lock_file
    from .gcpause import tune_for_service
    from .runtime.embedded import EmbeddedRuntime, default_adapters
    from .runtime.wakeup import SchedulerBell

    settings = server_settings()
    if workers > 1 and not settings.broker_url:
        raise fail("--workers needs the production mode (JIAOYING_BROKER_URL set): in the embedded mode "
                   "each process would run its own worker and scheduler")
    if not settings.broker_url and settings.worker_processes() and lock_file(settings.database_url) is None:
        raise fail("JIAOYING_EMBEDDED_WORKER=process needs a SQLite database file (JIAOYING_DATABASE_URL="
                   "sqlite:///path): other processes cannot open an in-memory one")
    database_url(settings)
    refuse_missing_providers(settings)
    database = settings.database_url.split("@")[-1]
    # Open board streams (SSE) must not hold a restart hostage: they reconnect by themselves.
    options = {"host": host, "port": port, "log_level": "info", "timeout_graceful_shutdown": 3}
    if workers > 1:
        err.print(f"jiaoying serve: production, {workers} API processes; database {database}")
        uvicorn.run("dispatcher.api.app:production_app", factory=True, workers=workers, **options)
        return
    clock = system_clock(settings)
    runtime = SchedulerBell(settings.broker_url) if settings.broker_url else EmbeddedRuntime(
        settings, clock, default_adapters(settings), processes=settings.worker_processes())
    mode = ("production (Celery workers and `jiaoying scheduler` do the sending)" if settings.broker_url
            else f"embedded, {settings.embedded_worker} worker")
    err.print(f"jiaoying serve: {mode}; database {database}")
    server_app = create_app(settings, clock=clock, runtime=runtime)
    tune_for_service()
    uvicorn.run(server_app, **options)


@app.command()
def scheduler(interval: Annotated[float, typer.Option(help="seconds between passes")] = 1.0) -> None:
    """Production timer loop: apply warnings, run due steps, wake the Celery workers."""
    import logging

    from .gcpause import tune_for_service
    from .runtime.scheduler import run_scheduler

    settings = get_settings()
    if not settings.broker_url:
        raise fail("JIAOYING_BROKER_URL is not set: the scheduler wakes Celery workers through the broker "
                   "(the embedded `jiaoying serve` needs no scheduler)")
    settings = server_settings()
    database_url(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    refuse_missing_providers(settings)
    tune_for_service()
    run_scheduler(settings, interval)


ROLE_NAMES = {"viewer": "查看员 viewer", "officer": "值班员 officer", "admin": "管理员 admin"}


def read_new_password(password_stdin: bool) -> str:
    """A new password: one line of stdin (--password-stdin), else typed twice at a hidden prompt;
    two different entries are an error (nothing is changed)."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("新密码 new password", hide_input=True)
    second = typer.prompt("再输入一次 repeat it", hide_input=True)
    if first != second:
        raise fail("两次输入的密码不一致 (the two passwords differ); nothing was changed")
    return first


def _check_user(url: str, name: str) -> None:
    """No such user: said before a password is asked for."""
    from .services.users import check_user

    try:
        with transaction(url, write=False) as session:
            check_user(session, name)
    except ValueError as exc:
        raise fail(escape(str(exc))) from None


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help="viewer | officer | admin")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Create a duty-officer login (password from a prompt, twice, or --password-stdin)."""
    from .services.users import Role, create_user

    try:
        chosen = Role(role)
    except ValueError:
        raise fail(f"unknown role {escape(repr(role))}; accepted: viewer, officer, admin") from None
    url = database_url()
    password = read_new_password(password_stdin)
    try:
        with transaction(url) as session:
            user = create_user(session, name, chosen, password, now())
    except ValueError as exc:
        raise fail(escape(str(exc))) from None
    out.print(f"user {user.name} created ({user.role.value})", markup=False, highlight=False)


@users_app.command("list")
def users_list() -> None:
    """Every login: role, whether it is disabled, its latest board sign-in (Beijing time)."""
    from .rendering import BEIJING
    from .services.users import list_users

    url = database_url()
    with transaction(url, write=False) as session:
        accounts = list_users(session)
    table = Table("登录名 login", "角色 role", "已停用 disabled", "最近登录 last sign-in", "创建 created")
    for a in accounts:
        table.add_row(escape(a.name), ROLE_NAMES[a.role.value], "" if a.active else "是 yes",
                      f"{a.last_sign_in.astimezone(BEIJING):%Y-%m-%d %H:%M}" if a.last_sign_in else "从未 never",
                      f"{a.created_at.astimezone(BEIJING):%Y-%m-%d}")
    out.print(table)
    if not accounts:
        err.print("no users yet: `jiaoying users create NAME --role officer`", markup=False, highlight=False)


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="login name")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Set a user's password (prompt, twice, or --password-stdin); ends every board sign-in made
    with the old one."""
    from .services.users import set_password

    url = database_url()
    _check_user(url, name)
    password = read_new_password(password_stdin)
    try:
        with transaction(url) as session:
            ended = set_password(session, name, password, now())
    except ValueError as exc:
        raise fail(escape(str(exc)) + "; nothing was changed") from None
    out.print(f"user {name}: password changed; {ended} open sign-in(s) ended", markup=False, highlight=False)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="login name")]) -> None:
    """Stop a user from signing in, and end the sign-ins open now (`users enable` undoes it)."""
    _set_active(name, False)


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="login name")]) -> None:
    """Let a disabled user sign in again (with the same password)."""
    _set_active(name, True)


def _set_active(name: str, active: bool) -> None:
    from .services.users import set_active

    url = database_url()
    try:
        with transaction(url) as session:
            ended = set_active(session, name, active, now())
    except ValueError as exc:
        raise fail(escape(str(exc))) from None
    said = "enabled" if active else f"disabled; {ended} open sign-in(s) ended"
    out.print(f"user {name}: {said}", markup=False, highlight=False)


@users_app.command("sign-out")
def users_sign_out(
    name: Annotated[str, typer.Argument(help="login name")],
    disable: Annotated[bool, typer.Option("--disable", help="also disable the account")] = False,
) -> None:
    """End every board sign-in of a user at once (a lost laptop, a leaked cookie); --disable also
    stops the account from signing in again."""
    from .services.users import end_sessions_of

    url = database_url()
    try:
        with transaction(url) as session:
            ended = end_sessions_of(session, name, now(), disable=disable)
    except ValueError as exc:
        raise fail(escape(str(exc))) from None
    out.print(f"user {name}: {ended} open sign-in(s) ended" + ("; account disabled" if disable else ""),
              markup=False, highlight=False)


@app.command()
def status(
    warning: Annotated[str | None, typer.Argument(help="warning id (default: the newest active one)")] = None,
    once: Annotated[bool, typer.Option("--once", help="print once and exit")] = False,
    interval: Annotated[float, typer.Option(help="refresh every N seconds")] = 1.0,
) -> None:
    """Live terminal view of a warning's call-outs: who, state, attempts, time to acknowledge."""
    from .views import status_view

    url = database_url()
    if once:
        out.print(status_view(url, warning, now()))
        return
    from rich.live import Live

    with Live(status_view(url, warning, now()), console=out, refresh_per_second=4, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(status_view(url, warning, now()))
        except KeyboardInterrupt:
            pass


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port for the demo server")] = 8000,
    keep_running: Annotated[bool, typer.Option("--serve/--no-serve", help="keep the server up afterwards")] = True,
    speed: Annotated[float, typer.Option(min=1.0, help="demo clock speed-up over real time, until it meets "
                                                        "real time")] = 20.0,
    rollcall: Annotated[bool, typer.Option("--rollcall", help="also run a duty roll-call (值班点名) during the story")]
    = False,
    spotcheck: Annotated[bool, typer.Option("--spotcheck", help="also run a 六问 spot-check (抽查) during the "
                                                               "warning")] = False,
    seed: Annotated[int | None, typer.Option(min=0, help="the spot-check's random seed (the same seed draws the "
                                                         "same people); default: a fresh one")] = None,
) -> None:
    """Sample county, a red rainstorm warning, officials answering (or not), escalation live; then
    the board (a duty-officer login is made and printed) on jiaoying-demo.db in this folder."""
    from .demo import run_demo

    sys.exit(run_demo(port=port, keep_running=keep_running, console=out, speed=speed, rollcall=rollcall,
                     spotcheck=spotcheck, seed=seed))


def main() -> None:
    try:
        app()
    except Exception as exc:
        # The database went away mid-command: one line, not a traceback. SQLAlchemy is there only if
        # the command used the database (commands that need none start without it: cli_db.py).
        errors = sys.modules.get("sqlalchemy.exc")
        if errors is None or not isinstance(exc, errors.OperationalError):
            raise
        from .db.migrate import unreachable

        url = get_settings().database_url
        err.print(f"[bold red]error:[/] {escape(unreachable(url, exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
