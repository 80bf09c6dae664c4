"""``jiaoying demo``: a sample county, a red rainstorm warning for two towns, and its call-outs.

Runs against its own fresh SQLite file so it never touches a configured database.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console

from .api.app import create_app
from .config import Settings, project_root
from .db.migrate import upgrade
from .db.session import transaction
from .services.keys import create_key
from .services.site import load_site_files
from .views import preview_table

DEMO_TOWNS = ("330599100", "330599101")  # 青溪镇, 石门镇


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


def run_demo(port: int, keep_running: bool, console: Console, workdir: Path | None = None) -> int:
    db_file = (workdir or Path.cwd()) / "jiaoying-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    settings = Settings(database_url=f"sqlite:///{db_file}", public_url=f"http://127.0.0.1:{port}")
    site_dir = project_root() / "rosters" / "qingxi"
    now = datetime.now(UTC)

    console.print(f"[bold]叫应 Jiaoying demo[/] — database {db_file}")
    upgrade(settings.database_url)
    with transaction(settings.database_url) as session:
        report = load_site_files(session, site_dir, now)
        _, token = create_key(session, "qingxi-qx", now)
    console.print(f"已加载样例县 sample site {site_dir.name}: {report.summary()}")

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    if not _wait_up(base, server):
        console.print(f"[red]the server did not start on port {port} (is it in use?)[/]")
        return 1
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        posted = client.post("/api/v1/warnings", json=demo_warning(now))
        posted.raise_for_status()
        warning_id = posted.json()["id"]
        console.print(f"POST /api/v1/warnings → {posted.status_code} {posted.json()['status']} id={warning_id}")
        result = client.get("/api/v1/plans/preview", params={
            "hazard": "rainstorm", "level": "red", "areas": ",".join(DEMO_TOWNS), "at": now.isoformat(),
            "sender": "qingxi-qx"})
        result.raise_for_status()
    for renderable in preview_table(result.json()):
        console.print(renderable)
    if not keep_running:
        server.should_exit = True
        thread.join(timeout=10)
        return 0
    console.print(f"\n服务运行中 serving on {base}  (API docs {base}/docs, warning {base}/api/v1/warnings/"
                  f"{warning_id}) — API key: {token}\n按 Ctrl-C 退出 press Ctrl-C to stop")
    try:
        while thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(timeout=10)
    return 0


def _wait_up(base: str, server: uvicorn.Server, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.started:
            return True
        time.sleep(0.05)
    return False
