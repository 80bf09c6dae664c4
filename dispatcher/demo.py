"""``jiaoying demo``: the sample county, a red rainstorm warning for two towns, officials who
answer like people do, and the call-out live in the terminal.

Runs against its own fresh SQLite file, ``jiaoying-demo.db`` in the working directory, so it never
touches a configured database; the server it keeps up afterwards reads that same file. The story
runs on a demo clock ``speed`` times faster than real time (shown on screen) that starts in the
recent past and catches up with real time, so the board never shows a time in the future.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Collection
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
from .rendering import BEIJING
from .runtime.embedded import EmbeddedRuntime, default_adapters
from .services.callout_views import counts
from .services.keys import create_key
from .services.site import current_site, load_site_files
from .services.users import Role, create_user
from .views import preview_table, status_view

DEMO_TOWNS = ("330599100", "330599101")  # 青溪镇, 石门镇
DEMO_USER = "demo"  # a duty officer (值班员) login made for each run, with a new random password
DB_NAME = "jiaoying-demo.db"
STORY = timedelta(minutes=25)  # the story ends when every call-out has settled, or after this long


class DemoClock:
    """The demo's time. Until ``go()`` it is real time less ``lead``; from ``go()`` it runs ``speed``
    times faster until it meets real time, and from then on it is real time.

    So the story is played fast through the recent past and ends at the present: afterwards the
    board's times are real ones, ticking at the real rate — none in the future (a clock left
    running fast would show acknowledgements minutes from now) and none frozen. ``catch_up()``
    jumps to real time at once (the story settled early); the jump goes forward, never back."""

    def __init__(self, speed: float, lead: timedelta = STORY) -> None:
        self.speed = speed
        self.lead = lead if speed > 1 else timedelta(0)  # a clock no faster than real time never catches up
        self._wall, self._t0 = datetime.now(UTC), time.monotonic()
        self._go: float | None = None  # monotonic time of go()
        self.caught_up = False
        self.start = self._wall - self.lead

    def real(self) -> datetime:
        return self._wall + timedelta(seconds=time.monotonic() - self._t0)

    def go(self) -> None:
        if self._go is None:
            self._go = time.monotonic()

    def catch_up(self) -> None:
        self.caught_up = True

    def __call__(self) -> datetime:
        real = self.real()
        if self.caught_up or self._go is None:
            return real if self.caught_up else real - self.lead
        went = self._wall + timedelta(seconds=self._go - self._t0) - self.lead
        fast = went + timedelta(seconds=(time.monotonic() - self._go) * self.speed)
        if self.lead and fast >= real:
            self.caught_up = True
            return real
        return fast


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


def run_demo(port: int, keep_running: bool, console: Console, speed: float = 20.0, workdir: Path | None = None,
             rollcall: bool = False, spotcheck: bool = False, seed: int | None = None) -> int:
    db_file = ((workdir or Path.cwd()) / DB_NAME).resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    # A throw-away secret: the demo's links and sessions die with it.
    settings = Settings(database_url=f"sqlite:///{db_file}", public_url=f"http://127.0.0.1:{port}",
                        secret_key=secrets.token_urlsafe(32))
    clock = DemoClock(speed)
    site_dir = project_root() / "rosters" / "qingxi"
    password = secrets.token_urlsafe(12)

    console.print(f"[bold]叫应 Jiaoying demo[/] — database {db_file}; 演示时钟 demo clock ×{speed:g}, "
                  f"from {clock.lead.total_seconds() / 60:g} minutes ago up to now", highlight=False, soft_wrap=True)
    upgrade(settings.database_url)
    with transaction(settings.database_url) as session:
        report = load_site_files(session, site_dir, clock())
        _, token = create_key(session, "qingxi-qx", clock())
        create_user(session, DEMO_USER, Role.OFFICER, password, clock())
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
    login = f"看板 board: {base}/board — 登录 sign in: {DEMO_USER} / {password} (值班员 duty officer, this run only)"
    console.print(login, markup=False, highlight=False, soft_wrap=True)  # one line, to copy
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            clock.go()
            issued = clock()
            posted = client.post("/api/v1/warnings", json=demo_warning(issued))
            posted.raise_for_status()
            warning_id = posted.json()["id"]
            console.print(f"POST /api/v1/warnings → {posted.status_code} {posted.json()['status']} id={warning_id}")
            rollcall_id = _start_rollcall(settings.database_url, clock, console) if rollcall else None
            plan = client.get("/api/v1/plans/preview", params={
                "hazard": "rainstorm", "level": "red", "areas": ",".join(DEMO_TOWNS), "sender": "qingxi-qx"})
            plan.raise_for_status()
            called = {c["official"]["id"] for c in plan.json()["callouts"]}
            spotcheck_id = _start_spotcheck(settings.database_url, clock, console, people, warning_id, seed,
                                            called) if spotcheck else None
        console.print(preview_table(plan.json())[0])
        console.print(preview_table(plan.json())[1])
        _watch(settings.database_url, warning_id, clock, console, speed, issued)
        clock.catch_up()  # the story is over: real time from here on, on the board too
        _summary(settings.database_url, warning_id, console)
        if rollcall_id is not None:
            _rollcall_summary(settings.database_url, rollcall_id, console)
        if spotcheck_id is not None:
            _spotcheck_summary(settings.database_url, spotcheck_id, console)
        if keep_running:
            console.print(f"\n服务运行中 serving on {base} — 演示时钟已回到真实时间 the demo clock is real time now "
                          f"(the warning was issued at {issued.astimezone(BEIJING):%H:%M} Beijing time)\n{login}\n"
                          f"API docs {base}/docs · API key: {token}\n"
                          f"`JIAOYING_DATABASE_URL=sqlite:///{db_file} jiaoying status {warning_id}`\n"
                          "按 Ctrl-C 退出 press Ctrl-C to stop", markup=False, highlight=False, soft_wrap=True)
            while thread.is_alive():
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        people.stop()
        server.should_exit = True
        thread.join(timeout=15)
    return 0


def _watch(url: str, warning_id: str, clock: DemoClock, console: Console, speed: float,
           issued: datetime) -> None:
    """The live call-out view until every call-out has settled, the demo clock has caught up with
    real time, or ``STORY`` has passed since the warning was issued."""
    deadline = issued + STORY

    def frame() -> Group:
        elapsed = (clock() - issued).total_seconds()
        note = Text(f"演示时钟 demo clock ×{speed:g}: 预警发布后 {elapsed / 60:4.1f} 分钟 minutes after the warning",
                    style="bold cyan")
        return Group(note, status_view(url, warning_id, clock()))

    with Live(frame(), console=console, refresh_per_second=4, transient=False) as live:
        while clock() < deadline and not clock.caught_up:
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


def _start_rollcall(url: str, clock: DemoClock, console: Console) -> str:
    """The evening duty roll-call, started by hand as a duty officer would from the board."""
    from .services import rollcalls

    with transaction(url) as session:
        started = rollcalls.start_now(session, None, clock(), actor=f"user:{DEMO_USER}")
    console.print(f"值班点名 duty roll-call started: {started.id} "
                  "(县值班室和各乡镇值班室 the county and town duty rooms)", markup=False, highlight=False)
    return started.id


def _rollcall_summary(url: str, rollcall_id: str, console: Console) -> None:
    from .services import rollcalls

    with transaction(url, write=False) as session:
        rooms = rollcalls.results(session, rollcall_id)
    words = ", ".join(f"{r.name} {'到岗' if r.manned else '无人值班' if r.unmanned else '未到岗'}" for r in rooms)
    console.print(f"值班点名 roll-call {rollcall_id}: {words} — board: /board/rollcalls/{rollcall_id}",
                  markup=False, highlight=False, soft_wrap=True)


# How the people a demo spot-check draws answer it, by their place in the draw. The first who can
# take a text message and is not also called by the warning replies "好的" (not an answer: asked
# again by SMS, they answer; from someone the warning calls, "好的" would confirm the warning's
# call-out, as a reply does); the next one answers 否 to the third question; the last never answers
# (on the follow-up list once the half hour is up); everyone else answers 是 to all. Whoever has no
# mobile answers on the call, by keys.
NOT_AN_ANSWER = ["好的", "1 1 1 1 1 1"]
SAID_NO, ALL_YES = "1 1 2 1 1 1", "1 1 1 1 1 1"


def _start_spotcheck(url: str, clock: DemoClock, console: Console, people: DemoPeople, warning_id: str,
                     seed: int | None, called: Collection[str] = ()) -> str:
    """A 六问 spot-check during the warning, started as a duty officer would from the board."""
    from .services import spotchecks

    with transaction(url) as session:
        now = clock()
        site = current_site(session)
        _, sample, seed = spotchecks.preview(session, None, now, seed=seed)
        drawn = list(sample.drawn)
        silent = drawn.pop() if len(drawn) > 3 else None
        texting = [p for p in drawn if site.people[p].mobile]
        first = next((p for p in texting if p not in called), texting[0] if texting else None)
        others = [p for p in drawn if p != first]
        for person in drawn:  # scripted before anyone is called
            replies = NOT_AN_ANSWER if person == first else [SAID_NO if others[:1] == [person] else ALL_YES]
            if site.people[person].mobile:
                people.spotcheck_replies[person] = list(replies)
            else:
                people.spotcheck_keys[person] = replies[-1].replace(" ", "")
        if silent is not None:
            people.spotcheck_replies[silent] = []
        started = spotchecks.start(session, None, now, f"user:{DEMO_USER}", seed=seed, during=warning_id)
    console.print(f"六问抽查 spot-check started: {started.id}, 随机种子 seed {started.seed}, "
                  f"抽取 drew {len(started.sample.drawn)}/{started.sample.size} (during {warning_id})",
                  markup=False, highlight=False, soft_wrap=True)
    return started.id


def _spotcheck_summary(url: str, spotcheck_id: str, console: Console, wait: float = 60.0) -> None:
    """The spot-check's outcome, once the scripted answers are in (the one who never answers stays
    作答中 until its half hour is up: then they are on the follow-up list, on the board). The one
    asked again answers last: the second SMS to a number waits its slot (providers space the texts
    to one number), so this may wait past the story."""
    from .services import spotchecks

    deadline = time.monotonic() + wait
    while True:
        with transaction(url, write=False) as session:
            result = spotchecks.result(session, spotcheck_id)
        if (result.started and result.people and result.count("open") <= 1) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    words = ", ".join(f"{spotchecks.VERDICT_ZH[v]} {result.count(v)}" for v in ("ok", "no", "missing", "open")
                      if result.count(v))
    console.print(f"六问抽查 spot-check {spotcheck_id} (seed {result.frozen.seed}): {words}; "
                  f"需跟进 follow-up {len(result.follow_up)} — board: /board/spotchecks/{spotcheck_id}",
                  markup=False, highlight=False, soft_wrap=True)


def _wait_up(server: uvicorn.Server, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.started:
            return True
        time.sleep(0.05)
    return False
