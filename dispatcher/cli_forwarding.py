"""``jiaoying forwarding``: the forwarding file (转发, 上报) and what is waiting to go.

``check`` reads the file as the engine will (every problem with its line, keys from the environment
included); ``status`` lists the forwards and reports not yet delivered and the recent refusals;
``retry`` queues refused ones again once their key or address is fixed. See docs/forwarding.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

forwarding_app = typer.Typer(help="Forwarding warnings to the city and neighbouring counties, and reporting results.",
                             no_args_is_help=True)


def _say(text: str = "") -> None:
    from .cli import out

    out.print(text, highlight=False, markup=False, soft_wrap=True)


@forwarding_app.command("check")
def check(
    file: Annotated[Path | None, typer.Option(help="the forwarding file (default: JIAOYING_FORWARDING_FILE)")] = None,
) -> None:
    """Read the forwarding file: print each problem as file:line: message (exit 1), else what goes where."""
    from .cli import err, fail, get_settings
    from .forwarding_file import check_file

    settings = get_settings()
    path = str(file) if file is not None else settings.forwarding_file
    if not path:
        raise fail("没有转发配置文件 / no forwarding file: set JIAOYING_FORWARDING_FILE or give --file")
    config, problems = check_file(path)
    for problem in problems:
        err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
    if problems or config is None:
        raise fail(f"{len(problems)} problem(s) in {path}")
    _say(f"{path}: ok — {len(config.targets)} target(s)"
         + (f", sending as {config.sender}" if config.sender else ", sending as the site's id"))
    mails = False
    for t in config.targets:
        levels = ", ".join(level.value for level in sorted(t.levels, reverse=True))
        hazards = ", ".join(sorted(h.value for h in t.hazards)) if t.hazards else "every hazard"
        _say(f"  {t.id} ({t.name}): {levels}; {hazards}; drills {'forwarded' if t.drills else 'not forwarded'}")
        if t.url:
            _say(f"    forward to {t.url}" + (f" (not what agency {t.agency} posted)" if t.agency else ""))
        for to in t.report:
            mails = mails or to.kind == "report_email"
            _say(f"    report to {to.url} as {to.format}" if to.kind == "report" else
                 f"    report by e-mail to {', '.join(to.emails)}")
    if mails and not (settings.smtp_host and settings.smtp_from):
        err.print("note: e-mail reports need JIAOYING_SMTP_HOST and JIAOYING_SMTP_FROM, which are not set",
                  highlight=False, markup=False, soft_wrap=True)


@forwarding_app.command("status")
def status() -> None:
    """The forwards and reports not yet delivered, and those refused in the last day."""
    from sqlalchemy import select

    from .cli import database_url
    from .db.session import transaction
    from .db.tables import ForwardRow

    now = datetime.now(UTC)
    with transaction(database_url(), write=False) as session:
        rows = list(session.scalars(select(ForwardRow).where(
            (ForwardRow.status.in_(("waiting", "queued", "sending")))
            | ((ForwardRow.status == "failed") & (ForwardRow.updated_at >= now - timedelta(days=1))))
            .order_by(ForwardRow.id)))
    if not rows:
        _say("nothing waiting: every forward and report was delivered")
        return
    for row in rows:
        said = f"HTTP {row.last_code}: {row.error}" if row.last_code else (row.error or "")
        when = f", next try {row.not_before:%Y-%m-%d %H:%M:%S} UTC" if row.status == "queued" and row.not_before else ""
        _say(f"{row.status:8} {row.kind:12} {row.target} {row.identifier} (record {row.record_id}, "
             f"{row.tries} tries{when}){' — ' + said if said else ''}")


@forwarding_app.command("retry")
def retry(
    target: Annotated[str | None, typer.Option(help="only this target's (its id in the file)")] = None,
) -> None:
    """Queue refused forwards and reports again (after fixing the key or address in the file)."""
    from .cli import database_url
    from .db.session import transaction
    from .services.forwarding import retry_failed

    with transaction(database_url()) as session:
        count = retry_failed(session, datetime.now(UTC), target)
    _say(f"{count} queued again" + (f" for {target}" if target else ""))
