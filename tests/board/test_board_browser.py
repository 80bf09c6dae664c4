"""The board in a real headless Chromium (Debian's ``chromium``) against the app served by uvicorn
with its embedded worker: sign-in, rows changing live as replies arrive through the real, signed
Twilio webhook, the officer's actions, an admin's cancel, an export, refusals. Screenshots of the
overview and the board at 1920x1080 go to $JIAOYING_ARTIFACTS (default artifacts/)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from twilio.request_validator import RequestValidator

from dispatcher.api.app import create_app, utc_now
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.migrate import upgrade
from dispatcher.db.session import engine_for, transaction
from dispatcher.runtime.embedded import EmbeddedRuntime
from dispatcher.services.keys import create_key
from dispatcher.services.site import load_site_files
from tests.board.conftest import PASSWORD, create_users, warning_body
from tests.e2e.conftest import TINY_SITE
from tests.support.servers import missing

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
TOKEN = "board-test-twilio-token-0123456789"
ZHOU = "+8613800000005"
WALL = {"width": 1920, "height": 1080}


class Serving:
    """``jiaoying serve`` in a thread: the app with its embedded worker, on a fixed port, so a test
    can stop it and start it again where the browser expects it."""

    def __init__(self, url: str, port: int, clock: Callable[[], datetime] = utc_now) -> None:
        self.url, self.port, self.clock = url, port, clock
        self.base = f"http://127.0.0.1:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        settings = Settings(database_url=self.url, public_url=self.base, twilio_auth_token=TOKEN)
        workers = Settings(database_url=self.url)  # no provider credentials: the simulator sends
        runtime = EmbeddedRuntime(workers, self.clock, lambda: build_adapters(workers, SimOutbox()), interval=0.2)
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings, self.clock, runtime), host="127.0.0.1",
                                                    port=self.port, log_level="warning", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        server = self.server
        _wait(lambda: server.started, "uvicorn did not start")

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
            assert not self.thread.is_alive(), "uvicorn did not stop"
        self.server = self.thread = None


@dataclass
class Live:
    base: str
    warning: str
    callouts: dict[str, int]  # person id -> call-out id
    serving: Serving

    def sms_reply(self, phone: str, body: str) -> None:
        """An inbound SMS exactly as Twilio posts it, with a real signature."""
        url = f"{self.base}/webhooks/twilio/sms"
        form = {"From": phone, "To": "+15005550006", "Body": body, "MessageSid": f"SM{time.time_ns()}",
                "AccountSid": "AC" + "a" * 32}
        signature = RequestValidator(TOKEN).compute_signature(url, form)
        response = httpx.post(url, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def artifacts() -> Path:
    path = Path(os.environ.get("JIAOYING_ARTIFACTS", "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with _serve(tmp_path, utc_now) as served:
        yield served


def behind() -> datetime:
    """A clock three days behind the browser's, as the demo's story clock is."""
    return utc_now() - timedelta(days=3)


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Live]:
    with _serve(tmp_path, behind) as served:
        yield served


@contextmanager
def _serve(tmp_path: Path, clock: Callable[[], datetime]) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path / 'board.db'}"
    upgrade(url)
    now = clock()
    with transaction(url) as session:
        load_site_files(session, TINY_SITE, now)
        _, key = create_key(session, "qingxi-qx", now)
    create_users(url)
    serving = Serving(url, _free_port(), clock)
    base = serving.base
    try:
        serving.start()
        posted = httpx.post(f"{base}/api/v1/warnings", json=warning_body(clock()),
                            headers={"Authorization": f"Bearer {key}"})
        assert posted.status_code == 202, posted.text
        warning = posted.json()["id"]
        basic = ("chen", PASSWORD)

        def callouts() -> list[dict[str, Any]]:
            got = httpx.get(f"{base}/api/v1/warnings/{warning}/callouts", auth=basic).json()["callouts"]
            return got if got and all(c["state"] == "notified" for c in got) else []

        _wait(callouts, "the call-outs did not go out")
        yield Live(base, warning, {c["official"]["id"]: c["id"] for c in callouts()}, serving)
    finally:
        serving.stop()
        engine_for(url).dispose()


def _wait(condition: Any, message: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package")
    if not Path(CHROMIUM).exists():
        missing("chromium")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _login(browser: Any, live: Live, name: str) -> Any:
    page = browser.new_context(viewport=WALL, locale="zh-CN", accept_downloads=True).new_page()
    page.goto(f"{live.base}/board/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.base}/board")
    return page


def test_duty_officers_night_on_the_board(live: Live, browser: Any, artifacts: Path) -> None:
    from playwright.sync_api import expect

    officer = _login(browser, live, "liu")
    expect(officer.locator(".warning-card")).to_have_count(1)
    expect(officer.locator(".warning-card .counts")).to_contain_text("3")
    officer.screenshot(path=str(artifacts / "board-overview-1920x1080.png"))

    officer.click(".warning-card")
    officer.wait_for_url(f"{live.base}/board/warnings/{live.warning}")
    expect(officer.locator("#live")).to_be_visible()
    officer.evaluate("window.notReloaded = true")

    # A reply arrives through the real webhook: the row changes without a reload.
    zhou = officer.locator(f"#c-{live.callouts['zhou']}")
    expect(zhou).to_contain_text("已通知")
    live.sms_reply(ZHOU, "收到")
    expect(zhou).to_contain_text("已确认", timeout=3000)
    expect(zhou).to_contain_text("短信回复")
    expect(officer.locator("#summary")).to_contain_text("已确认 1")
    assert officer.evaluate("window.notReloaded") is True

    # Acknowledge on someone's behalf, with a note.
    sun = officer.locator(f"#c-{live.callouts['sun']}")
    sun.locator("summary").click()
    sun.locator("input[name=note]").fill("已通过座机联系本人确认")
    sun.locator(".ack-form button").click()
    expect(officer.locator(".flash")).to_contain_text("已代为确认")
    expect(sun).to_contain_text("人工代确认")
    expect(sun).to_contain_text("已通过座机联系本人确认")

    # Re-call now: the next step (a voice call) goes out and shows up live.
    zheng = officer.locator(f"#c-{live.callouts['zheng']}")
    zheng.locator("summary").click()
    zheng.locator(".recall-form button").click()
    expect(officer.locator(".flash")).to_contain_text("已重呼")
    expect(zheng).to_contain_text("语音电话", timeout=3000)
    officer.evaluate("window.notReloaded = true")
    officer.screenshot(path=str(artifacts / "board-warning-1920x1080.png"))

    # An export download.
    with officer.expect_download() as download:
        officer.click("text=导出 CSV")
    saved = artifacts / "board-export.csv"
    download.value.save_as(str(saved))
    assert "已通过座机联系本人确认" in saved.read_text(encoding="utf-8-sig")

    # A POST without the CSRF token is refused, with the officer's own session.
    refused = officer.request.post(f"{live.base}/board/callouts/{live.callouts['zheng']}/ack",
                                   form={"note": "no token"})
    assert refused.status == 403

    # A viewer sees the board but may not act.
    viewer = _login(browser, live, "wang")
    viewer.goto(f"{live.base}/board/warnings/{live.warning}")
    expect(viewer.locator(".ack-form")).to_have_count(0)
    token = officer.locator("input[name=csrf]").first.get_attribute("value")
    viewer_token = viewer.locator("form[action='/board/logout'] input[name=csrf]").get_attribute("value")
    assert token != viewer_token
    refused = viewer.request.post(f"{live.base}/board/callouts/{live.callouts['zheng']}/recall",
                                  form={"csrf": viewer_token})
    assert refused.status == 403

    # An admin cancels the warning, confirming twice; the officer's board shows it live.
    admin = _login(browser, live, "chen")
    admin.goto(f"{live.base}/board/warnings/{live.warning}")
    admin.locator("details.cancel summary").click()
    admin.check("input[name=confirm]")
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.locator("details.cancel button").click()
    expect(admin.locator(".flash")).to_contain_text("预警已取消")
    expect(officer.locator(f"#c-{live.callouts['zheng']}")).to_contain_text("已取消", timeout=3000)
    assert officer.evaluate("window.notReloaded") is True


def test_the_board_reconnects_by_itself_after_a_server_restart(live: Live, browser: Any) -> None:
    """A wall screen left alone through a redeploy: the stream drops, the page says so, and once the
    server is back the rows move again — without anyone pressing reload."""
    from playwright.sync_api import expect

    officer = _login(browser, live, "liu")
    officer.goto(f"{live.base}/board/warnings/{live.warning}")
    expect(officer.locator("#live")).to_be_visible()
    expect(officer.locator("#live")).not_to_have_class("down")
    officer.evaluate("window.notReloaded = true")

    live.serving.stop()
    expect(officer.locator("#live.down")).to_be_visible(timeout=5000)
    live.serving.start()
    expect(officer.locator("#live")).not_to_have_class("down", timeout=10000)

    zhou = officer.locator(f"#c-{live.callouts['zhou']}")
    live.sms_reply(ZHOU, "确认")
    expect(zhou).to_contain_text("已确认", timeout=3000)
    assert officer.evaluate("window.notReloaded") is True


def _first_board_event(client: httpx.Client, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    import json

    with client.stream("GET", url, headers=headers or {}, timeout=10) as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "board":
                return dict(json.loads(line[6:]))
    raise AssertionError("the stream ended without a board event")


def test_the_stream_sends_only_what_the_page_lacks_and_everything_it_missed(live: Live) -> None:
    """The stream starts from what the browser holds: nothing again when nothing changed, and the
    rows that moved while it was cut off (named by Last-Event-ID) when something did."""
    import re

    with httpx.Client(base_url=live.base) as client:
        form = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/board/login").text)
        assert form is not None
        client.post("/board/login", data={"name": "liu", "password": PASSWORD, "csrf": form.group(1)})
        page = client.get(f"/board/warnings/{live.warning}").text
        held = re.search(r'data-held="([^"]+)"', page)
        assert held is not None, "the page does not say which version of the rows it holds"
        stream = f"/board/warnings/{live.warning}/live"

        quiet = _first_board_event(client, f"{stream}?since={held.group(1)}")
        assert quiet["rows"] == {} and "order" not in quiet  # the page has every row, in order, already

        live.sms_reply(ZHOU, "收到")  # arrives while no stream is open
        missed = _first_board_event(client, stream, {"Last-Event-ID": held.group(1)})
        zhou = missed["rows"][str(live.callouts["zhou"])]
        assert "已确认" in zhou and "短信回复" in zhou
        assert len(missed["rows"]) == 3 and len(missed["order"]) == 3  # the data moved: every row again

        fresh = _first_board_event(client, stream)  # a client that names nothing gets the whole table
        assert len(fresh["rows"]) == 3


def test_the_board_fits_a_laptop_screen_without_sideways_scrolling(live: Live, browser: Any, artifacts: Path) -> None:
    """The same board on a duty officer's 1366x768 laptop: every column visible, nothing cut off
    to the right, the level still named beside its colour."""
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN").new_page()
    page.goto(f"{live.base}/board/login")
    page.fill("input[name=name]", "liu")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live.base}/board/warnings/{live.warning}")
    expect(page.locator(f"#c-{live.callouts['zhou']}")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the board is {overflow}px wider than a laptop screen"
    expect(page.locator(".level").first).to_contain_text("红色")
    page.screenshot(path=str(artifacts / "board-warning-1366x768.png"))


LI = "+8613800000004"  # 李书记, 孙镇长's AB岗
# Recorded in the page before its own script runs: every Notification shown and every tone played,
# the real ones still made (a headless Chromium shows no notification and plays into no speaker).
RECORD_ALERTS = """
window.__notified = []; window.__tones = 0;
(function () {
  var Real = window.Notification;
  if (Real) {
    var Wrapped = function (title, options) { window.__notified.push(title); return new Real(title, options); };
    Object.defineProperty(Wrapped, "permission", {get: function () { return Real.permission; }});
    Wrapped.requestPermission = function () { return Real.requestPermission.apply(Real, arguments); };
    window.Notification = Wrapped;
  }
  var Context = window.AudioContext;
  if (Context) {
    var make = Context.prototype.createOscillator;
    Context.prototype.createOscillator = function () { window.__tones += 1; return make.call(this); };
  }
})();
"""


def _callout_state(live: Live, person: str) -> tuple[str, int | None]:
    got = httpx.get(f"{live.base}/api/v1/warnings/{live.warning}/callouts", auth=("chen", PASSWORD)).json()
    mine = next(c for c in got["callouts"] if c["id"] == live.callouts[person])
    return mine["state"], mine["next_step"]


def _next_step_now(live: Live, person: str) -> None:
    """Run ``person``'s call-out's next step now (the API's re-call) and wait until it ran."""
    before = _callout_state(live, person)
    answer = httpx.post(f"{live.base}/api/v1/callouts/{live.callouts[person]}/recall", auth=("chen", PASSWORD))
    assert answer.status_code == 200, answer.text
    _wait(lambda: _callout_state(live, person) != before, f"{person}'s next step did not run")


def _until(page: Any, expression: str, timeout: float) -> None:
    """Look at ``expression`` in the page until it is true. Not ``page.wait_for_function``: when its
    first look is false it polls by eval() inside the page, which the board's CSP (script-src 'self')
    refuses, so it failed whenever the alert came a moment after the wait began."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"{expression} still false after {timeout:g} s"
        page.wait_for_timeout(50)


def _ladder_to_the_end(live: Live, person: str) -> None:
    """Every next step of ``person``'s call-out now, one after another, until its last step passed
    unanswered: the 未叫醒 list goes out."""
    while _callout_state(live, person)[0] != "unreached":
        _next_step_now(live, person)


def test_someone_unreached_alerts_the_officer_in_a_background_tab_and_gets_a_visit(
        live: Live, browser: Any, artifacts: Path) -> None:
    """The night: the officer turns the alert on with a click, leaves the board in a background tab;
    郑防汛员's ladder runs out; the alert comes (a notification and a beep), his row goes to the top
    with who was told and whom to phone, and the officer sends someone to his door and records what
    they found. 孙镇长's "收到" comes from his AB岗 and says so."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=WALL, locale="zh-CN")
    context.grant_permissions(["notifications"], origin=live.base)
    context.add_init_script(RECORD_ALERTS)
    officer = context.new_page()
    officer.goto(f"{live.base}/board/login")
    officer.fill("input[name=name]", "liu")
    officer.fill("input[name=password]", PASSWORD)
    officer.click("button[type=submit]")
    officer.wait_for_url(f"{live.base}/board")
    officer.goto(f"{live.base}/board/warnings/{live.warning}")
    expect(officer.locator("#live")).to_be_visible()

    # the opt-in: a click asks for the permission (granted) and keeps the choice in localStorage
    alert = officer.locator("#notify")
    expect(alert).to_contain_text("开启未叫醒提醒")
    alert.click()
    expect(alert).to_contain_text("未叫醒提醒已开启")
    assert officer.evaluate("localStorage.getItem('jiaoying.notify-unreached')") == "on"
    officer.reload()  # the choice outlives a reload
    expect(officer.locator("#notify")).to_contain_text("未叫醒提醒已开启")
    officer.locator("h1").click()  # any click lets the beep sound again after a reload
    officer.evaluate("window.notReloaded = true")

    # 周村长 answers himself; 孙镇长's AB岗 李书记 answers for him once texted
    live.sms_reply(ZHOU, "收到")
    zhou = officer.locator(f"#c-{live.callouts['zhou']}")
    expect(zhou).to_contain_text("已确认", timeout=3000)
    sun = officer.locator(f"#c-{live.callouts['sun']}")
    _next_step_now(live, "sun")  # step 1: a call
    _next_step_now(live, "sun")  # step 2: the AB岗's text
    expect(sun).to_contain_text("AB岗 李书记", timeout=5000)
    live.sms_reply(LI, "收到")
    expect(sun).to_contain_text("由AB岗李书记确认", timeout=3000)

    # the board goes to the background: another tab in front
    other = context.new_page()
    other.goto(f"{live.base}/board")
    other.bring_to_front()
    _ladder_to_the_end(live, "zheng")
    _until(officer, "window.__notified.length > 0", timeout=5)
    assert any("郑防汛员" in title for title in officer.evaluate("window.__notified"))
    assert officer.evaluate("window.__tones") >= 2  # the two short tones of the beep
    assert officer.evaluate("window.notReloaded") is True

    officer.bring_to_front()
    zheng = officer.locator(f"#c-{live.callouts['zheng']}")
    expect(zheng).to_contain_text("未叫醒")
    first = officer.locator("#rows tbody").first
    expect(first).to_have_attribute("id", f"c-{live.callouts['zheng']}")  # 未叫醒 first
    expect(zheng.locator(".told")).to_contain_text("上级 孙镇长")
    expect(zheng.locator(".told")).to_contain_text("已通知上级及值班人员")
    expect(zheng.locator(".phone-now")).to_contain_text("本人")
    expect(zheng.locator(".phone-now")).to_contain_text("手机 138 0000 0007")

    # 安排上门/现场核实, then what they found
    zheng.locator(".follow-assign summary").click()
    zheng.locator(".follow-form input[name=who]").fill("吴主任、网格员王芳")
    zheng.locator(".follow-form button").click()
    expect(officer.locator(".flash")).to_contain_text("已安排上门核实")
    zheng = officer.locator(f"#c-{live.callouts['zheng']}")
    expect(zheng.locator(".follow")).to_contain_text("已安排 吴主任、网格员王芳")
    officer.screenshot(path=str(artifacts / "board-unreached-1920x1080.png"))
    zheng.locator(".follow-result summary").click()
    zheng.locator(".result-form select").select_option("reached")
    zheng.locator(".result-form input[name=note]").fill("在家中，已当面告知")
    zheng.locator(".result-form button").click()
    expect(officer.locator(".flash")).to_contain_text("已记录核实结果")
    expect(officer.locator(f"#c-{live.callouts['zheng']} .follow")).to_contain_text("已当面告知本人")

    # no box where an icon should be: every icon is an SVG that draws something
    sizes = officer.evaluate("""Array.from(document.querySelectorAll('svg.ic use')).slice(0, 40).map(
        u => { const b = u.getBBox(); return b.width * b.height; })""")
    assert sizes and min(sizes) > 0
    context.close()


def test_an_unreached_row_fits_a_laptop_screen(live: Live, browser: Any) -> None:
    """The 未叫醒 line (told, phone now, the follow-up form) on a 1366x768 laptop: no sideways scrolling."""
    _ladder_to_the_end(live, "zheng")
    page = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN").new_page()
    page.goto(f"{live.base}/board/login")
    page.fill("input[name=name]", "liu")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live.base}/board/warnings/{live.warning}")
    row = page.locator(f"#c-{live.callouts['zheng']}")
    row.locator(".follow-assign summary").click()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the board is {overflow}px wider than a laptop screen"


def test_countdowns_and_times_since_run_on_the_servers_clock_not_the_browsers(story: Live, browser: Any) -> None:
    """The page ticks every second in the browser; it must count from the board's own clock (the
    demo's story clock, a server whose clock differs), not from the browser's: three days apart here."""
    page = _login(browser, story, "liu")
    page.goto(f"{story.base}/board/warnings/{story.warning}")
    page.wait_for_timeout(1500)  # the script has ticked
    assert page.locator(".since").first.text_content() in ("发布于 刚刚", "发布于 1分钟前")
    countdown = page.locator("[data-due]").first.text_content() or ""
    assert re.fullmatch(r"下一步 #2 [12]:\d\d", countdown), countdown  # the 3-minute voice step, not "即将执行"
