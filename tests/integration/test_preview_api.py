"""GET /api/v1/plans/preview: who would be called, by which steps, and the readiness gaps."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

PREVIEW = "/api/v1/plans/preview"


def test_preview_of_a_red_rainstorm_for_one_town(client: TestClient, auth: dict[str, str]) -> None:
    r = client.get(PREVIEW, headers=auth, params={"hazard": "rainstorm", "level": "red", "areas": "330599100",
                                                  "at": "2026-07-16T11:12:00+08:00"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plans"][0] == "rainstorm-red"
    areas = {c["official"]["area"] for c in body["callouts"]}
    assert "330599" in areas  # county roles
    assert any(a.startswith("330599100") for a in areas)  # the town and its villages
    assert not any(a.startswith("330599101") for a in areas)  # no other town
    ids = [c["official"]["id"] for c in body["callouts"]]
    assert len(ids) == len(set(ids)) == body["officials"]
    assert body["duty"]["leader"] is not None
    first = body["callouts"][0]["steps"][0]
    assert first["after_seconds"] == 0 and first["to"] == ["self"]


def test_preview_lists_officials_who_cannot_be_reached(client: TestClient, auth: dict[str, str]) -> None:
    body = client.get(PREVIEW, headers=auth, params={"hazard": "rainstorm", "level": "red",
                                                     "areas": "330599"}).json()
    assert isinstance(body["gaps"], list)
    for gap in body["gaps"]:
        assert gap["kind"] in {"nobody_in_area", "no_channel", "no_recipient", "no_duty_shift"}


def test_preview_refuses_bad_input_naming_the_field(client: TestClient, auth: dict[str, str]) -> None:
    r = client.get(PREVIEW, headers=auth, params={"hazard": "meteor", "level": "red", "areas": "440106"})
    assert r.status_code == 422
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["hazard", "areas"]


def test_preview_needs_every_parameter(client: TestClient, auth: dict[str, str]) -> None:
    r = client.get(PREVIEW, headers=auth, params={"hazard": "rainstorm"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["level"]
    # Bad input: neither areas nor zones — the preview says where to look
    r = client.get(PREVIEW, headers=auth, params={"hazard": "rainstorm", "level": "red"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "areas", "message": "at least one division code (or a zone) is required"}]


def test_preview_refuses_a_zone_the_site_does_not_have(client: TestClient, auth: dict[str, str]) -> None:
    """Bad input: an unknown zone id."""
    r = client.get(PREVIEW, headers=auth, params={"hazard": "flash_flood", "level": "red", "zones": "nowhere"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["zones"]


def test_health_and_readiness(client: TestClient, settings, clock) -> None:
    from dispatcher.channels.registry import build_adapters
    from dispatcher.channels.simulator import SimOutbox
    from dispatcher.runtime.engine import Engine

    assert client.get("/healthz").json() == {"status": "ok"}
    not_yet = client.get("/readyz")
    assert not_yet.status_code == 503 and not_yet.json()["checks"]["scheduler"] == "no scheduler has run"
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()))
    engine.tick()
    engine.close()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "schema": "ok", "site": "ok", "scheduler": "ok",
                                      "channels": "ok", "escalations": "ok", "warnings": "ok",
                                      "workers": "ok", "timers": "ok", "rollcalls": "ok", "drills": "ok",
                                      "forwarding": "ok"}


def test_not_ready_without_a_site(settings, clock) -> None:
    from dispatcher.api.app import create_app

    with TestClient(create_app(settings, clock=clock)) as bare:
        r = bare.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["site"] == "no site loaded: run `jiaoying load`"


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/v1/warnings" in spec["paths"] and "/api/v1/plans/preview" in spec["paths"]


def _preview_with_limits(database_url: str, rate_limits: str | None, areas: str = "330599") -> dict:
    from dispatcher.config import Settings
    from dispatcher.db.session import transaction
    from dispatcher.services.preview import preview
    from dispatcher.services.site import current_site
    from tests.conftest import FIXED_NOW

    limits = None if rate_limits is None else Settings(database_url=database_url, rate_limits=rate_limits).limits
    with transaction(database_url) as session:
        return preview(current_site(session), "rainstorm", "red", [areas], FIXED_NOW, limits=limits)


def test_preview_warns_when_a_step_cannot_reach_everyone_before_the_next(site_loaded: str) -> None:
    body = _preview_with_limits(site_loaded, "voice=20/min,sms=10/s")
    cap = body["capacity"]
    assert cap["limits"] == {"sms": "10/s", "voice": "20/min"}
    steps = {(s["plan"], s["step"]): s for s in cap["steps"]}
    call = steps[("rainstorm-red", 1)]  # everyone's own voice call, 3 minutes before step 2
    n = body["officials"]
    assert call["after_seconds"] == 180 and call["deadline_seconds"] == 180
    assert call["channels"] == {"voice": {"messages": n, "seconds": round((n - 1) * 3, 1), "limit": "20/min"}}
    assert call["seconds"] == (n - 1) * 3 > 180 and call["fits"] is False
    assert any(w.startswith(f"step 1 (voice) of plan rainstorm-red: {n} calls at 20/min take ")
               and w.endswith("longer than the 3 min until step 2") for w in cap["warnings"])
    first = steps[("rainstorm-red", 0)]
    assert first["channels"]["sms"]["messages"] == n and first["channels"]["im"]["limit"] is None
    assert cap["first_round_seconds"] == first["seconds"] == round((n - 1) / 10, 1)
    final = [s for s in cap["steps"] if s["final"]]
    assert final and all(s["deadline_seconds"] is None and s["fits"] for s in final)
    json.dumps(body)  # the API returns it as is


def test_preview_under_generous_limits_fits(site_loaded: str) -> None:
    cap = _preview_with_limits(site_loaded, "voice=3/s,sms=10/s,im=20/s")["capacity"]
    assert cap["warnings"] == [] and all(s["fits"] for s in cap["steps"])
    unlimited = _preview_with_limits(site_loaded, "")["capacity"]
    assert unlimited["limits"] == {} and unlimited["first_round_seconds"] == 0
    assert all(s["seconds"] == 0 for s in unlimited["steps"])


def test_preview_without_limits_has_no_capacity_section(site_loaded: str) -> None:
    assert "capacity" not in _preview_with_limits(site_loaded, None)


def test_preview_table_shows_capacity_and_its_warnings(site_loaded: str) -> None:
    from rich.console import Console

    from dispatcher.views import preview_table

    console = Console(width=200, record=True)
    for renderable in preview_table(_preview_with_limits(site_loaded, "voice=20/min")):
        console.print(renderable)
    text = console.export_text()
    assert "容量 capacity" in text and "语音电话 20/min" in text
    assert "step 1 (voice) of plan rainstorm-red" in text and "longer than the 3 min until step 2" in text
    quiet = Console(width=200, record=True)
    for renderable in preview_table(_preview_with_limits(site_loaded, "voice=3/s")):
        quiet.print(renderable)
    assert "every step fits" in quiet.export_text()


def test_preview_over_http_warns_when_a_rate_limit_makes_a_step_late(site_loaded: str, clock, make_key) -> None:
    from dispatcher.api.app import create_app
    from dispatcher.config import Settings

    settings = Settings(database_url=site_loaded, public_url="http://127.0.0.1:8000", rate_limits="voice=20/min")
    with TestClient(create_app(settings, clock=clock)) as limited:
        body = limited.get(PREVIEW, headers={"Authorization": f"Bearer {make_key()}"},
                           params={"hazard": "rainstorm", "level": "red", "areas": "330599"}).json()
    assert body["capacity"]["limits"] == {"voice": "20/min"}
    assert any(w.startswith("step 1 (voice) of plan rainstorm-red: 86 calls at 20/min take 4.2 min")
               for w in body["capacity"]["warnings"])


def test_preview_says_why_with_every_town_a_leader_holds(client: TestClient, auth: dict[str, str]) -> None:
    """白岩沟小流域 lies in 龙潭镇 and 白云镇, both 包保 by 周敏: the reason names both, in Chinese and English."""
    body = client.get(PREVIEW, headers=auth, params={"hazard": "rainstorm", "level": "red", "zones": "baiyangou",
                                                     "at": "2026-07-24T11:12:00+08:00"}).json()
    why = {c["official"]["id"]: (c["plan"], c["target"], c["reason"], c["reason_en"]) for c in body["callouts"]}
    assert why["zhou-min"] == ("rainstorm-red", 1, "包保龙潭镇、白云镇", "包保 for 龙潭镇、白云镇")
    assert why["shi-ronghua"] == ("rainstorm-red", 7, "白云镇值班室值班长", "白云镇值班室, chief")
    assert why["hu-lixin"] == ("rainstorm-red", 3, "村党组织书记/村主任（潭头村）", "village_head (潭头村)")


def test_preview_says_who_is_called_as_the_fallback(database_url: str, settings, clock, auth: dict[str, str],
                                                   tmp_path) -> None:
    """Nobody 包保 龙潭镇: the county's leaders are called as the target's fallback, and the preview says so."""
    import shutil

    from dispatcher.api.app import create_app
    from dispatcher.db.session import transaction
    from dispatcher.services.site import load_site_files
    from tests.conftest import FIXED_NOW, FIXTURES

    site = tmp_path / "organised"
    shutil.copytree(FIXTURES / "sites" / "organised", site)
    people = site / "people.yaml"
    people.write_text(people.read_text().replace(
        'deputy: zhou-min, responsibilities: [{ kind: 包保, areas: ["330599102"] }] }', "deputy: zhou-min }"))
    with transaction(database_url) as session:
        load_site_files(session, site, FIXED_NOW)
    with TestClient(create_app(settings, clock=clock)) as fresh:
        body = fresh.get(PREVIEW, headers=auth, params={"hazard": "rainstorm", "level": "red",
                                                        "areas": "330599102"}).json()
    leaders = {c["official"]["id"]: (c["target"], c["reason"], c["reason_en"]) for c in body["callouts"]
               if c["official"]["id"] in ("wang-jianguo", "li-weidong", "zhou-min", "xu-haitao")}
    fallback = (1, "无人包保龙潭镇，由县领导兜底",
                "nobody holds 包保 for 龙潭镇: county_leader as the fallback (otherwise: above)")
    assert leaders == dict.fromkeys(("wang-jianguo", "li-weidong", "zhou-min", "xu-haitao"), fallback)
    assert [g["kind"] for g in body["gaps"] if g["subject"] == "330599102"] == ["no_responsible"]
