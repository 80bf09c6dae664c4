"""Agency keys on the board: admins list, create (the secret shown once) and revoke them; the key
works at intake at once, and stops working at once. Officers and viewers may not."""

from __future__ import annotations

import re
from html import unescape

from tests.board.conftest import Board, csrf_of, warning_body

HTML = {"Accept": "text/html"}


def _create(board: Board, **form: object) -> tuple[int, str]:
    token = csrf_of(board.client.get("/board/keys").text)
    response = board.client.post("/board/keys", data={"csrf": token, **form})
    return response.status_code, response.text


def _post_warning(board: Board, key: str, **fields: object) -> int:
    body = warning_body(board.clock(), **({"identifier": f"K-{len(fields)}-{board.clock().timestamp()}"} | fields))
    return board.client.post("/api/v1/warnings", json=body, headers={"Authorization": f"Bearer {key}"}).status_code


def test_an_admin_creates_a_key_that_works_at_once_and_is_shown_once(board: Board) -> None:
    board.login("chen")
    status, html = _create(board, agency="qingxi-sl", senders="qingxi-sl, qingxi-qx", hazards=["rainstorm"])
    assert status == 201
    found = re.search(r'<code class="token" id="new-key">([^<]+)</code>', html)
    assert found, "the new key is not on the page"
    key = found.group(1)
    assert _post_warning(board, key) == 202  # sender qingxi-qx, hazard rainstorm: allowed
    assert _post_warning(board, key, hazard="typhoon") == 403  # a hazard the key was not given
    listing = board.client.get("/board/keys").text
    assert "qingxi-sl" in listing and "rainstorm" in listing and key not in listing  # never shown again


def test_a_revoked_key_is_refused_at_intake_at_once(board: Board) -> None:
    board.login("chen")
    _, html = _create(board, agency="qingxi-qx")
    key = re.search(r'id="new-key">([^<]+)<', html).group(1)  # type: ignore[union-attr]
    page = board.client.get("/board/keys").text
    ids = re.findall(r'action="/board/keys/(k_[0-9a-f]+)/revoke"', page)
    assert len(ids) == 2  # the fixture's key and this one
    newest = ids[-1]
    # bad input: revoking without ticking the confirmation changes nothing
    unconfirmed = board.client.post(f"/board/keys/{newest}/revoke", data={"csrf": csrf_of(page)})
    assert unconfirmed.status_code == 422 and "吊销前请勾选确认" in unconfirmed.text
    assert _post_warning(board, key) == 202
    done = board.client.post(f"/board/keys/{newest}/revoke", data={"csrf": csrf_of(page), "confirm": "yes"})
    assert done.status_code == 200 and "密钥已吊销" in done.text and "已吊销" in done.text
    assert _post_warning(board, key, identifier="after-revoke") == 401
    # bad input: a key that does not exist (or is already revoked)
    again = board.client.post(f"/board/keys/{newest}/revoke", data={"csrf": csrf_of(page), "confirm": "yes"})
    assert again.status_code == 404 and f"没有可吊销的密钥 {newest}" in again.text


def test_bad_key_forms_say_why_and_create_nothing(board: Board) -> None:
    board.login("chen")
    before = board.client.get("/board/keys").text.count('<tr id="key-')
    # bad input: no agency
    status, html = _create(board, agency="  ", hazards=["rainstorm"])
    assert status == 422 and "请填写部门标识" in html
    assert 'value="rainstorm" checked' in html  # what was entered is kept
    # bad input: a hazard code that does not exist
    status, html = _create(board, agency="qingxi-qx", hazards=["meteor"])
    assert status == 422 and "unknown hazard 'meteor'" in unescape(html)
    assert board.client.get("/board/keys").text.count('<tr id="key-') == before


def test_only_admins_see_or_touch_keys(board: Board) -> None:
    board.login("liu")
    page = board.client.get("/board/keys", headers=HTML)
    assert page.status_code == 403 and "管理员" in page.text
    token = csrf_of(board.page())
    refused = board.client.post("/board/keys", data={"csrf": token, "agency": "rogue"})
    assert refused.status_code == 403
    assert "接入密钥" not in board.page()  # no link in an officer's header
    board.client.cookies.clear()
    board.login("chen")
    assert "rogue" not in board.client.get("/board/keys").text
    # a POST without the CSRF token, even from an admin
    assert board.client.post("/board/keys", data={"agency": "rogue"}).status_code == 403
    assert "rogue" not in board.client.get("/board/keys").text
