"""``jiaoying demo``: the sample county, a red rainstorm warning for two towns, officials who
answer like people do, and the call-out live in the terminal.

Runs against its own fresh SQLite file so it never touches a configured database, and on a
demo clock that runs ``speed`` times faster than real time (shown on screen).
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from .api.app import create_app
from .channels.simulator import SimOutbox
from .config import Settings, project_root
from .db.migrate import upgrade
from .db.session import transaction
from .demo_people import DemoPeople
from .runtime.embedded import EmbeddedRuntime, default_adapters
from .services.callout_views import counts
from .services.keys import create_key
from .services.site import load_site_files
from .views import preview_table, status_view

DEMO_TOWNS = ("330599100", "330599101")  # 青溪镇, 石门镇


class DemoClock:
    """Real time, ``speed`` times faster, from the moment the demo starts."""

    def __init__(self, speed: float) -> None:
        self.speed, self.start, self._t0 = speed, datetime.now(UTC), time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)


def demo_warning(now: datetime) -> dict[str, object]:
    return {
        "sender": "qingxi-qx",
        "identifier": f"QX-DEMO-{now:%Y%m%d%H%M%S}",
        "msg_type": "alert",
        "hazard": "rainstorm",
        "level": "red",
        "areas": list(DEMO_TOWNS),
        "headline": "青溪县气象台发布暴雨红色预警信号",
        "description": "预计未来3小时青溪镇、石门镇降雨量将达100毫米以上，山区局地可达150毫米。",
        "instruction": "请立即启动防汛应急响应，转移危险区域群众，落实巡查值守。",
        "sent": now.isoformat(),
        "expires": (now + timedelta(hours=12)).isoformat(),
        "drill": False,
    }


def run_demo(port: int, keep_running: bool, console: Console, speed: float = 20.0,
             workdir: Path | None = None) -> int:
    db_file = (workdir or Path.cwd()) / "jiaoying-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    # A throw-away secret: the demo's links and sessions die with it.
    settings = Settings(database_url=f"sqlite:///{db_file}", public_url=f"http://127.0.0.1:{port}",
                        secret_key=secrets.token_urlsafe(32))
    clock = DemoClock(speed)
    site_dir = project_root() / "rosters" / "qingxi"

    console.print(f"[bold]叫应 Jiaoying demo[/] — database {db_file}; 演示时钟 demo clock ×{speed:g}")
    upgrade(settings.database_url)
    with transaction(settings.database_url) as session:
        report = load_site_files(session, site_dir, clock())
        _, token = create_key(session, "qingxi-qx", clock())
    console.print(f"已加载样例县 sample site {site_dir.name}: {report.summary()}")

    outbox = SimOutbox()
    people = DemoPeople(settings.database_url, outbox, clock)
    runtime = EmbeddedRuntime(settings, clock, default_adapters(settings, outbox), interval=0.25)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, clock=clock, runtime=runtime), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not _wait_up(server):
        console.print(f"[red]the server did not start on port {port} (is it in use?)[/]")
        return 1
    people.start()
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            posted = client.post("/api/v1/warnings", json=demo_warning(clock()))
            posted.raise_for_status()
            warning_id = posted.json()["id"]
            console.print(f"POST /api/v1/warnings → {posted.status_code} {posted.json()['status']} id={warning_id}")
            plan = client.get("/api/v1/plans/preview", params={
                "hazard": "rainstorm", "level": "red", "areas": ",".join(DEMO_TOWNS), "sender": "qingxi-qx"})
            plan.raise_for_status()
        console.print(preview_table(plan.json())[0])
        console.print(preview_table(plan.json())[1])
        _watch(settings.database_url, warning_id, clock, console, speed)
        _summary(settings.database_url, warning_id, console)
        if keep_running:
            console.print(f"\n服务运行中 serving on {base}  (API docs {base}/docs; "
                          f"`JIAOYING_DATABASE_URL=sqlite:///{db_file} jiaoying status {warning_id}`)\n"
                          f"API key: {token}\n按 Ctrl-C 退出 press Ctrl-C to stop")
            while thread.is_alive():
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        people.stop()
        server.should_exit = True
        thread.join(timeout=15)
    return 0


def _watch(url: str, warning_id: str, clock: DemoClock, console: Console, speed: float) -> None:
    """The live call-out view until every call-out has settled (or 25 demo minutes pass)."""
    deadline = clock() + timedelta(minutes=25)

    def frame() -> Group:
        elapsed = (clock() - clock.start).total_seconds()
        note = Text(f"演示时钟 demo clock ×{speed:g}: 预警发布后 {elapsed / 60:4.1f} 分钟 minutes after the warning",
                    style="bold cyan")
        return Group(note, status_view(url, warning_id, clock()))

    with Live(frame(), console=console, refresh_per_second=4, transient=False) as live:
        while clock() < deadline:
            time.sleep(0.25)
            live.update(frame())
            with transaction(url) as session:
                c = counts(session, warning_id)
            if c["total"] and c["pending"] == 0 and c["notified"] == 0:
                break


def _summary(url: str, warning_id: str, console: Console) -> None:
    with transaction(url) as session:
        c = counts(session, warning_id)
    console.print()
    console.print(Text.assemble(
        "结果 result: ", (f"已确认 acknowledged {c['acknowledged']}", "green"), f" / {c['total']}, ",
        (f"未叫醒 unreached {c['unreached']}", "bold red"),
        " — 未叫醒名单已发送给其上级和值班人员 the unreached list went to their superiors and the duty officers"))


def _wait_up(server: uvicorn.Server, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.started:
            return True
        time.sleep(0.05)
    return False
