"""POST /api/v1/warnings through HTTP: every answer code of SPEC 4.1 with the body a user sees,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.db.session import transaction
from dispatcher.db.tables import EventRow, WarningRow
from tests.conftest import FIXTURES

URL = "/api/v1/warnings"


def red_rainstorm(**overrides: Any) -> dict[str, Any]:
    body = {
        "sender": "qingxi-qx", "identifier": "QX-2026-0716-001", "msg_type": "alert",
        "hazard": "rainstorm", "level": "red", "areas": ["330599100", "330599101"],
        "headline": "青溪县气象台发布暴雨红色预警信号", "description": "预计3小时内降雨量将达100毫米以上。",
        "instruction": "立即启动防汛应急响应。", "sent": "2026-07-16T11:10:00+08:00",
        "expires": "2026-07-16T23:00:00+08:00", "drill": False,
    }
    body.update(overrides)
    return body


def count_warnings(url: str) -> int:
    with transaction(url) as s:
        return s.scalar(select(func.count()).select_from(WarningRow)) or 0


def test_accepted_warning_is_committed_before_the_202(client: TestClient, auth: dict[str, str],
                                                      database_url: str) -> None:
    r = client.post(URL, json=red_rainstorm(), headers=auth)
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "accepted" and body["id"].startswith("W20260716-")
    assert body["links"]["record"] == f"/api/v1/warnings/{body['id']}/record"
    with transaction(database_url) as s:
        row = s.get(WarningRow, body["id"])
        assert (row.hazard, row.level, row.areas, row.status) == ("rainstorm", "red",
                                                                  ["330599100", "330599101"], "active")
        kinds = s.scalars(select(EventRow.kind).where(EventRow.warning_id == row.id).order_by(EventRow.seq))
        assert list(kinds) == ["received"]  # the match decision is the engine's, moments later


def test_the_match_decision_is_on_the_warning_once_the_engine_applied_it(
        client: TestClient, auth: dict[str, str], settings, clock) -> None:
    from dispatcher.channels.registry import build_adapters
    from dispatcher.channels.simulator import SimOutbox
    from dispatcher.runtime.engine import Engine

    wid = client.post(URL, json=red_rainstorm(), headers=auth).json()["id"]
    assert client.get(f"{URL}/{wid}", headers=auth).json()["matched"] is None
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()))
    engine.tick()
    engine.close()
    got = client.get(f"{URL}/{wid}", headers=auth).json()
    assert got["matched"]["plans"][0] == "rainstorm-red"
    assert got["matched"]["officials"] > 10
    assert got["hazard_name"] == "暴雨" and got["level_name"] == "红色"


def test_repeat_of_the_same_sender_and_identifier_returns_the_first_id_with_200(
        client: TestClient, auth: dict[str, str], database_url: str) -> None:
    first = client.post(URL, json=red_rainstorm(), headers=auth).json()
    again = client.post(URL, json=red_rainstorm(headline="changed"), headers=auth)
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["status"] == "duplicate"
    assert count_warnings(database_url) == 1


def test_update_and_cancel_refer_to_the_first_warning(client: TestClient, auth: dict[str, str], clock) -> None:
    first = client.post(URL, json=red_rainstorm(level="orange"), headers=auth).json()["id"]
    update = client.post(URL, json=red_rainstorm(identifier="QX-2026-0716-002", msg_type="update",
                                                 references=["QX-2026-0716-001"]), headers=auth)
    assert update.status_code == 202
    assert client.get(f"{URL}/{first}", headers=auth).json()["status"] == "updated"
    clock.now = datetime(2026, 7, 16, 7, 0, tzinfo=UTC)  # the cancel is sent at 15:00 Beijing time
    cancel = client.post(URL, headers=auth, json={
        "sender": "qingxi-qx", "identifier": "QX-2026-0716-003", "msg_type": "cancel",
        "references": ["QX-2026-0716-002"], "sent": "2026-07-16T15:00:00+08:00"})
    assert cancel.status_code == 202
    cancelled = client.get(f"{URL}/{cancel.json()['id']}", headers=auth).json()
    assert (cancelled["hazard"], cancelled["level"], cancelled["root_id"]) == ("rainstorm", "red", first)
    assert client.get(f"{URL}/{update.json()['id']}", headers=auth).json()["status"] == "cancelled"
    active = client.get(URL, params={"active": "true"}, headers=auth).json()["warnings"]
    assert active == []
    # one file per event: the alert, the update and the cancel share the first warning's record
    kinds = [e["kind"] for e in client.get(f"{URL}/{first}/record", headers=auth).json()["events"]]
    assert kinds == ["received", "received", "updated", "received", "cancelled"]


def test_update_naming_an_unknown_warning_is_422(client: TestClient, auth: dict[str, str],
                                                 database_url: str) -> None:
    r = client.post(URL, json=red_rainstorm(msg_type="update", references=["NOPE-1"]), headers=auth)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "references",
                                   "message": "no earlier warning 'NOPE-1' from sender 'qingxi-qx'"}]
    assert count_warnings(database_url) == 0


def test_unknown_hazard_is_422_naming_the_field_and_the_accepted_codes(
        client: TestClient, auth: dict[str, str], database_url: str) -> None:
    r = client.post(URL, json=red_rainstorm(hazard="meteor"), headers=auth)
    assert r.status_code == 422
    (problem,) = r.json()["errors"]
    assert problem["field"] == "hazard"
    assert problem["message"].startswith("unknown hazard 'meteor'; accepted: typhoon, rainstorm, blizzard")
    assert count_warnings(database_url) == 0


def test_several_bad_fields_are_all_named(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post(URL, json=red_rainstorm(level="purple", sent="2026-07-16T11:10:00", areas=["33059"],
                                            colour="red"), headers=auth)
    assert r.status_code == 422
    fields = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert fields == {
        "level": "unknown level 'purple'; accepted: blue, yellow, orange, red",
        "areas": "'33059' is not a division code (2, 4, 6, 9, 12 or 15 digits)",
        "sent": "must carry a UTC offset, e.g. 2026-07-16T03:10:00+08:00",
        "colour": "is not a field of a warning",
    }


def test_missing_required_field_is_named(client: TestClient, auth: dict[str, str]) -> None:
    body = red_rainstorm()
    del body["identifier"]
    r = client.post(URL, json=body, headers=auth)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "identifier", "message": "is required"}]


def test_area_outside_the_site_is_422(client: TestClient, auth: dict[str, str], database_url: str) -> None:
    r = client.post(URL, json=red_rainstorm(areas=["330599100", "440106"]), headers=auth)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "areas[1]",
                                   "message": "440106 is not an area of this site (青溪县 330599)"}]
    assert count_warnings(database_url) == 0


def test_province_wide_warning_is_accepted(client: TestClient, auth: dict[str, str]) -> None:
    assert client.post(URL, json=red_rainstorm(areas=["33"]), headers=auth).status_code == 202


def test_malformed_json_is_400(client: TestClient, auth: dict[str, str], database_url: str) -> None:
    r = client.post(URL, content=b'{"sender": "qingxi-qx",', headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("malformed JSON: ")
    assert count_warnings(database_url) == 0


def test_json_that_is_not_an_object_is_400(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post(URL, content=b"[1, 2]", headers={**auth, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (400, "the body must be a JSON object")


def test_unsupported_content_type_is_415(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post(URL, content=b"sender=x", headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert "use one of: application/cap+xml, application/json, application/xml, text/xml" in r.json()["error"]


def test_no_key_is_401(client: TestClient, database_url: str) -> None:
    r = client.post(URL, json=red_rainstorm())
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "an agency API key is required: Authorization: Bearer <key>"
    assert count_warnings(database_url) == 0


def test_wrong_key_is_401(client: TestClient, auth: dict[str, str]) -> None:
    forged = auth["Authorization"][:-4] + "AAAA"
    r = client.post(URL, json=red_rainstorm(), headers={"Authorization": forged})
    assert (r.status_code, r.json()["error"]) == (401, "the API key is not valid (unknown or revoked)")


def test_key_limited_to_other_hazards_is_403(client: TestClient, make_key, database_url: str) -> None:
    from dispatcher.domain.hazards import Hazard

    key = make_key("qingxi-zrzy", hazards=[Hazard.GEOHAZARD], senders=["qingxi-qx"])
    r = client.post(URL, json=red_rainstorm(), headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
    assert r.json()["error"] == "this key (agency qingxi-zrzy) may not post rainstorm warnings"
    assert count_warnings(database_url) == 0


def test_key_may_not_post_as_another_sender_403(client: TestClient, make_key) -> None:
    key = make_key("qingxi-sl")
    r = client.post(URL, json=red_rainstorm(), headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
    assert r.json()["error"] == "this key (agency qingxi-sl) may not post as sender 'qingxi-qx'"


def test_oversized_body_is_413(client: TestClient, auth: dict[str, str], database_url: str) -> None:
    r = client.post(URL, json=red_rainstorm(description="雨" * 200_000), headers=auth)
    assert r.status_code == 413
    assert "the limit is 262144 bytes" in r.json()["error"]
    assert count_warnings(database_url) == 0


def test_agencies_see_only_their_own_warnings(client: TestClient, auth: dict[str, str], make_key) -> None:
    wid = client.post(URL, json=red_rainstorm(), headers=auth).json()["id"]
    other = {"Authorization": f"Bearer {make_key('qingxi-sl')}"}
    assert client.get(f"{URL}/{wid}", headers=other).status_code == 404
    assert client.get(URL, headers=other).json()["warnings"] == []
    assert [w["id"] for w in client.get(URL, headers=auth).json()["warnings"]] == [wid]


def test_unknown_warning_is_404(client: TestClient, auth: dict[str, str]) -> None:
    r = client.get(f"{URL}/W20260716-NOPE00", headers=auth)
    assert (r.status_code, r.json()["error"]) == (404, "no warning W20260716-NOPE00")


def test_no_site_loaded_is_503(settings, clock, auth: dict[str, str]) -> None:
    from dispatcher.api.app import create_app

    with TestClient(create_app(settings, clock=clock)) as bare:
        r = bare.post(URL, json=red_rainstorm(), headers=auth)
    assert r.status_code == 503
    assert r.json()["error"] == "no site is loaded: run `jiaoying load rosters/<site>`"


# --- CAP 1.2 over HTTP -------------------------------------------------------------------------

def post_cap(client: TestClient, auth: dict[str, str], name: str, ctype: str = "application/cap+xml"):
    return client.post(URL, content=(FIXTURES / "cap" / name).read_bytes(),
                       headers={**auth, "Content-Type": ctype})


def test_oasis_cap_alert_update_cancel(client: TestClient, auth: dict[str, str], clock) -> None:
    alert = post_cap(client, auth, "oasis-alert.xml")
    assert alert.status_code == 202, alert.text
    got = client.get(f"{URL}/{alert.json()['id']}", headers=auth).json()
    assert (got["hazard"], got["level"], got["areas"]) == ("rainstorm", "red", ["330599100", "330599101"])
    update = post_cap(client, auth, "oasis-update.xml", "application/xml")
    assert update.status_code == 202, update.text
    clock.now = datetime(2026, 7, 16, 10, 30, tzinfo=UTC)  # oasis-cancel.xml is sent at 18:30 Beijing time
    cancel = post_cap(client, auth, "oasis-cancel.xml", "text/xml")
    assert cancel.status_code == 202, cancel.text
    assert client.get(f"{URL}/{alert.json()['id']}", headers=auth).json()["status"] == "cancelled"


def test_chinese_profile_alert_update_cancel(client: TestClient, make_key, clock) -> None:
    auth = {"Authorization": f"Bearer {make_key('qingxi-qx', senders=['33059941600000'])}"}
    alert = post_cap(client, auth, "cn-alert.xml")
    assert alert.status_code == 202, alert.text
    got = client.get(f"{URL}/{alert.json()['id']}", headers=auth).json()
    assert (got["hazard"], got["level"], got["sender"]) == ("rainstorm", "orange", "33059941600000")
    clock.now = datetime(2026, 7, 16, 10, 30, tzinfo=UTC)  # cn-cancel.xml is sent at 18:30 Beijing time
    for name in ("cn-update.xml", "cn-cancel.xml"):
        r = post_cap(client, auth, name)
        assert r.status_code == 202, r.text
    assert client.get(URL, params={"active": "true"}, headers=auth).json()["warnings"] == []


def test_the_same_cap_alert_twice_is_one_warning(client: TestClient, auth: dict[str, str]) -> None:
    first = post_cap(client, auth, "oasis-alert.xml").json()["id"]
    again = post_cap(client, auth, "oasis-alert.xml")
    assert (again.status_code, again.json()["id"]) == (200, first)


def test_xml_bomb_is_400_and_stores_nothing(client: TestClient, auth: dict[str, str], database_url: str) -> None:
    r = post_cap(client, auth, "xml-bomb.xml")
    assert r.status_code == 400
    assert "entit" in r.json()["error"]
    assert count_warnings(database_url) == 0


def test_external_entity_is_400(client: TestClient, auth: dict[str, str], database_url: str) -> None:
    r = post_cap(client, auth, "external-entity.xml")
    assert r.status_code == 400
    assert "entit" in r.json()["error"]
    assert "root:" not in json.dumps(r.json())  # nothing of /etc/passwd comes back
    assert count_warnings(database_url) == 0


def test_well_formed_xml_that_is_not_cap_is_400(client: TestClient, auth: dict[str, str]) -> None:
    r = post_cap(client, auth, "not-cap.xml")
    assert r.status_code == 400
    assert r.json()["error"].startswith("not a CAP 1.2 alert")


def test_malformed_xml_is_400(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post(URL, content=b"<alert><identifier>x</alert>",
                    headers={**auth, "Content-Type": "application/cap+xml"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("malformed XML")


def test_a_keys_last_use_is_kept_to_the_minute(client: TestClient, auth: dict[str, str], database_url: str,
                                               clock) -> None:
    """The board's key list shows when each agency last posted; a post reads its key without a
    write unless the stored time is a minute old."""
    from datetime import timedelta

    from dispatcher.db.tables import ApiKeyRow

    def last_used() -> Any:
        with transaction(database_url) as s:
            return s.scalars(select(ApiKeyRow.last_used_at)).one()

    assert last_used() is None
    first = clock()
    assert client.post(URL, json=red_rainstorm(identifier="K-1"), headers=auth).status_code == 202
    assert last_used() == first
    clock.now += timedelta(seconds=40)
    assert client.post(URL, json=red_rainstorm(identifier="K-2"), headers=auth).status_code == 202
    assert last_used() == first  # within the minute: not written again
    clock.now += timedelta(seconds=30)
    assert client.get(URL, headers=auth).status_code == 200
    assert last_used() == clock()
    bad = {"Authorization": auth["Authorization"][:-2] + "xx"}  # bad input: a key with a wrong secret
    clock.now += timedelta(minutes=5)
    assert client.post(URL, json=red_rainstorm(identifier="K-3"), headers=bad).status_code == 401
    assert last_used() == first + timedelta(seconds=70)
