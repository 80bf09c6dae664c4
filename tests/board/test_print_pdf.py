"""The 一事一档 as a document: the printable page rendered to an A4 PDF by Chromium (``print.pdf``),
checked the way a duty officer would check the paper — page count and page numbers, A4 sheets,
Chinese text, every official's name whole, the officials table's header repeated on each page it
runs onto, the signature lines — after a night like the demo's on the sample county (34 officials
of 青溪镇 and 石门镇: SMS replies, key presses, a deputy answering for their official, a duty
officer acknowledging on someone's behalf, and a few left unreached).

Needs Debian's ``chromium``, Playwright and pypdf (the test extra): skipped without them, failed
under ``CI=true``. Writes ``record.png``, ``print.png`` and ``print.pdf`` to $JIAOYING_ARTIFACTS."""

from __future__ import annotations

import io
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.migrate import upgrade
from dispatcher.db.session import engine_for, transaction
from dispatcher.db.tables import CalloutRow
from dispatcher.domain.callouts import AckVia
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack
from dispatcher.services.keys import create_key
from dispatcher.services.receipts import inbound_sms
from dispatcher.services.site import current_site, load_site_files
from tests.board.conftest import create_users
from tests.conftest import FIXED_NOW, SAMPLE_SITE, Clock
from tests.support.board import sign_in
from tests.support.harness import settle_engine
from tests.support.servers import missing

CHROMIUM = "/usr/bin/chromium"
TOWNS = ["330599100", "330599101"]  # 青溪镇, 石门镇: the demo's warning


@dataclass
class Night:
    client: TestClient
    warning: str
    url: str
    names: dict[int, str]  # call-out id -> official's name
    unreached: list[str]  # names


def _warning(now: Any) -> dict[str, Any]:
    return {"sender": "qingxi-qx", "identifier": "QX-NIGHT-1", "msg_type": "alert", "hazard": "rainstorm",
            "level": "red", "areas": TOWNS, "headline": "青溪县气象台发布暴雨红色预警信号",
            "description": "预计未来3小时青溪镇、石门镇降雨量将达100毫米以上。",
            "instruction": "请立即启动防汛应急响应。",
            "sent": now.isoformat(), "expires": (now + timedelta(hours=12)).isoformat()}


@pytest.fixture
def night(tmp_path: Path) -> Iterator[Night]:
    """A red warning at 11:12 (Beijing) played through its fifteen minutes, as the demo's people answer."""
    url = f"sqlite:///{tmp_path / 'night.db'}"
    upgrade(url)
    with transaction(url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
        _, key = create_key(session, "qingxi-qx", FIXED_NOW)
    create_users(url)
    clock = Clock()
    settings = Settings(database_url=url)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="test")
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            posted = client.post("/api/v1/warnings", json=_warning(clock()), headers={"Authorization": f"Bearer {key}"})
            assert posted.status_code == 202, posted.text
            warning = posted.json()["id"]
            settle_engine(engine)
            with transaction(url) as session:
                site = current_site(session)
                callouts = list(session.scalars(select_callouts(warning)))
                rows = [(c.id, c.person_id, c.ack_code) for c in callouts]
            names = {cid: site.people[pid].name for cid, pid, _ in rows}
            phone = {pid: site.people[pid].phone for _, pid, _ in rows}
            # Two thirds reply 收到 to the SMS within the first three minutes.
            for n, (_, pid, _) in enumerate(rows[: 2 * len(rows) // 3]):
                clock.now += timedelta(seconds=4)
                with transaction(url) as session:
                    inbound_sms(session, clock(), sender=phone[pid] or "", body="收到" if n % 3 else "好的")
            clock.now = FIXED_NOW + timedelta(minutes=3, seconds=1)
            settle_engine(engine)  # step 2: voice
            rest = rows[2 * len(rows) // 3:]
            for cid, pid, _ in rest[:2]:  # two press 1 on the call
                clock.now += timedelta(seconds=15)
                with transaction(url) as session:
                    ack.acknowledge_callout(session, clock(), cid, via=AckVia.VOICE, by=pid)
            clock.now = FIXED_NOW + timedelta(minutes=6, seconds=1)
            settle_engine(engine)  # step 3: the deputies
            deputy_for, deputy_of = rest[2], site.people[rest[2][1]].deputy
            assert deputy_of, "the sample county's official has a deputy (AB岗)"
            clock.now += timedelta(seconds=40)
            with transaction(url) as session:  # the deputy answers with the official's code
                inbound_sms(session, clock(), sender=site.people[deputy_of].phone or "", body=f"收到 {deputy_for[2]}")
            clock.now += timedelta(seconds=30)
            token = sign_in(client, "liu", "correct horse battery")
            done = client.post(f"/board/callouts/{rest[3][0]}/ack", data={"csrf": token, "note": "已电话联系本人确认"})
            assert done.status_code == 200, done.text
            clock.now = FIXED_NOW + timedelta(minutes=15, seconds=2)
            settle_engine(engine)  # steps 4 and the final escalation: the rest are unreached
            unreached = [names[cid] for cid, _, _ in rest[4:]]
            assert unreached, "someone is left unreached"
            yield Night(client, warning, url, names, unreached)
    finally:
        engine.close()
        engine_for(url).dispose()


def select_callouts(warning: str) -> Any:
    from sqlalchemy import select

    return select(CalloutRow).where(CalloutRow.record_id == warning).order_by(CalloutRow.id)


# Chromium's PDF maps each glyph back to one code point, the font's lowest for it: Noto CJK draws 一
# and the Kangxi radical ⼀ (U+2F00), 页 and the radical ⻚ (U+2EDA) with one glyph, so the text comes
# out as radicals. NFKC folds the Kangxi radicals back; the simplified-form radicals of the CJK
# Radicals Supplement are folded here (Unicode's EquivalentUnifiedIdeograph).
_RADICALS = dict(zip(map(ord, "⺠⺩⻄⻅⻆⻈⻉⻋⻐⻑⻓⻔⻗⻘⻙⻚⻛⻜⻝⻠⻢⻣⻤⻥⻦⻧⻨⻩⻪⻬⻮⻰"),
                     "民王西见角讠贝车钅長长门雨青韦页风飞食饣马骨鬼鱼鸟卤麦黄黾齐齿龙", strict=True))


def _text(raw: str) -> str:
    """PDF text as written (NFKC also makes full-width punctuation half-width: fold what you look for too)."""
    return unicodedata.normalize("NFKC", raw).translate(_RADICALS)


def _pdf_pages(body: bytes) -> list[str]:
    try:
        from pypdf import PdfReader
    except ImportError:
        missing("the pypdf Python package (the test extra)")
    reader = PdfReader(io.BytesIO(body))
    for page in reader.pages:  # A4: 210 x 297 mm = 595 x 842 pt
        assert abs(float(page.mediabox.width) - 595.3) < 2 and abs(float(page.mediabox.height) - 841.9) < 2
    return [_text(page.extract_text() or "") for page in reader.pages]


def _need_chromium() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("the playwright Python package")
    if not Path(CHROMIUM).exists():
        missing("chromium")


@pytest.fixture
def artifacts() -> Path:
    path = Path(os.environ.get("JIAOYING_ARTIFACTS", "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_the_pdf_is_an_a4_document_with_every_official_whole(night: Night, artifacts: Path) -> None:
    _need_chromium()
    response = night.client.get(f"/board/warnings/{night.warning}/print.pdf")
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/pdf"
    assert f'filename="jiaoying-{night.warning}.pdf"' in response.headers["content-disposition"]
    (artifacts / "print.pdf").write_bytes(response.content)
    pages = _pdf_pages(response.content)
    text = "\n".join(pages)
    assert len(pages) >= 3, f"34 officials and their record fit on {len(pages)} page(s)?"
    # Every page numbered "第 i 页 / 共 n 页" in its margin, n the real count.
    for i, page in enumerate(pages, start=1):
        assert f"第 {i} 页 / 共 {len(pages)} 页" in page, f"page {i} has no page number: {page[-200:]!r}"
    # Chinese, as the duty officer wrote and reads it.
    assert "预警叫应一事一档" in pages[0] and "青溪县气象台发布暴雨红色预警信号" in pages[0]
    assert "青溪县/青溪镇" in pages[0] and "11:12" in pages[0]  # areas by name, the local time
    # No name cut at a page edge: every official's name is whole somewhere in the text.
    flat = re.sub(r"\s+", "", text)
    for name in night.names.values():
        assert name in flat, f"{name} is not whole in the PDF"
    # The officials' table runs onto more than one page and repeats its header there.
    header_pages = [i for i, page in enumerate(pages) if "时限3/5/30" in re.sub(r"\s+", "", page)]
    assert len(header_pages) >= 2, f"the officials' header is on pages {header_pages} only"
    # The unreached, the deputy's answer, the on-behalf acknowledgement and the signature lines.
    for name in night.unreached:
        assert flat.count(name) >= 2  # in the officials' table and in the unreached list
    assert "由AB岗" in flat and "由值班员liu确认" in flat and "已电话联系本人确认" in flat
    last = re.sub(r"\s+", "", pages[-1])
    assert _text("值班员（签名）") in last and _text("值班领导（签名）") in last and "日期" in last


def test_the_pdf_in_english(night: Night) -> None:
    _need_chromium()
    response = night.client.get(f"/board/warnings/{night.warning}/print.pdf?lang=en")
    assert response.status_code == 200
    pages = _pdf_pages(response.content)
    assert f"Page 1 of {len(pages)}" in pages[0] and f"Page {len(pages)} of {len(pages)}" in pages[-1]
    assert "Warning call-out file" in pages[0] and "Duty leader (signature)" in pages[-1]


def test_without_chromium_the_pdf_answers_503_and_says_why(night: Night, clock: Clock) -> None:
    settings = Settings(database_url=night.url, chromium_path="/nonexistent/chromium")
    with TestClient(create_app(settings, clock=clock)) as client:
        sign_in(client, "liu", "correct horse battery")
        scripted = client.get(f"/board/warnings/{night.warning}/print.pdf")
        assert scripted.status_code == 503
        error = scripted.json()["error"]
        assert "没有可用的 Chromium" in error and "JIAOYING_CHROMIUM_PATH" in error
        page = client.get(f"/board/warnings/{night.warning}/print.pdf", headers={"Accept": "text/html"})
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "无法生成 PDF" in page.text and "no Chromium is available on the server" in page.text
        # the printable page itself still works: it prints from the browser
        assert client.get(f"/board/warnings/{night.warning}/print").status_code == 200


def test_a_viewer_may_not_download_the_pdf(night: Night, clock: Clock) -> None:
    night.client.cookies.clear()
    sign_in(night.client, "wang", "correct horse battery")
    assert night.client.get(f"/board/warnings/{night.warning}/print.pdf").status_code == 403


def test_screenshots_of_the_record_and_the_printed_file(night: Night, artifacts: Path) -> None:
    """The record page and the printable page in Chromium (the pages fetched through the test's
    client: nothing leaves the process), for the docs."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    base = "http://board.invalid"

    def through_the_app(route: Any) -> None:
        path = route.request.url.removeprefix(base)
        answer = night.client.get(path)
        route.fulfill(status=answer.status_code, body=answer.content,
                      headers={"content-type": answer.headers.get("content-type", "text/html")})

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
            page.route(f"{base}/**", through_the_app)
            page.goto(f"{base}/board/warnings/{night.warning}/record")
            said = page.locator("tr.said")
            assert said.count() > 20
            assert page.locator("tr.said.tone-alarm").filter(has_text="未叫醒").count() == 1
            deputies = page.locator("tr.said").filter(has_text="第3步")
            deputies.locator("details.people summary").click()
            assert "→" in deputies.locator("details.people p").inner_text()  # official → their AB岗
            page.locator("tr.said").filter(has_text="第2步").first.evaluate("row => row.scrollIntoView()")
            page.screenshot(path=str(artifacts / "record.png"))
            page.goto(f"{base}/board/warnings/{night.warning}/print")
            assert page.locator("table.officials tbody tr").count() == len(night.names)
            page.screenshot(path=str(artifacts / "print.png"))
        finally:
            browser.close()


def test_the_printable_page_is_the_document(night: Night) -> None:
    """Without a browser: the page holds each part of the file, in words."""
    html = night.client.get(f"/board/warnings/{night.warning}/print").text
    for part in ("一、预警信息", "二、叫应结果与时限", "三、逐人叫应情况", "四、未叫醒名单及跟进",
                 "五、农村应急广播回执", "六、事件记录", "值班员（签名）", "值班领导（签名）"):
        assert part in html
    assert "3 分钟内叫到（首条消息已发出）" in html and "5 分钟内确认" in html and "30 分钟内确认" in html
    assert "11:12:00" in html and "2026-07-16 11:12" in html  # Beijing time, not 03:12 UTC
    assert "steps=[{" not in html and "drill=False" not in html and "+00:00" not in html
