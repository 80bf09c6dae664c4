"""GET /api/v1/plans/preview: who would be called, by which steps, and the readiness gaps."""

from __future__ import annotations

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
    assert [e["field"] for e in r.json()["errors"]] == ["level", "areas"]


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
                                      "workers": "ok", "timers": "ok"}


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
