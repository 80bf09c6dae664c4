"""A hazard-scoped agency key reaches only its own hazards — also through the warnings it cancels
or updates — and the record names the key (its id, never its secret) on what it did. On SQLite
and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.db.session import transaction
from dispatcher.db.tables import EventRow, WarningRow
from dispatcher.domain.hazards import Hazard
from tests.integration.test_intake_api import URL, red_rainstorm

FLOOD = "this key (agency qingxi-qx) may not update or cancel {id}: it is a flash_flood warning and the " \
        "key may post only rainstorm"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_id(token: str) -> str:
    return "k_" + token.split("_")[1]


def flash_flood(**fields: Any) -> dict[str, Any]:
    return red_rainstorm(identifier="QX-FF-001", hazard="flash_flood",
                         headline="青溪县水利局发布山洪灾害红色预警") | fields


def state(database_url: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Every warning's status and every event (record, kind, actor): what must not change."""
    with transaction(database_url, write=False) as s:
        warnings = {w.id: w.status for w in s.scalars(select(WarningRow))}
        events = [(e.warning_id, e.kind, e.actor) for e in s.scalars(select(EventRow).order_by(EventRow.id))]
    return warnings, events


def test_a_rainstorm_key_may_not_cancel_a_flash_flood_warning_of_its_agency(
        client: TestClient, make_key: Callable[..., str], database_url: str) -> None:
    """Bad input: POST /api/v1/warnings/{id}/cancel with a key scoped to rainstorm, naming the same
    agency's flash-flood warning. Today it is cancelled."""
    water = make_key("qingxi-qx")
    rain = make_key("qingxi-qx", hazards=[Hazard.RAINSTORM])
    wid = client.post(URL, json=flash_flood(), headers=bearer(water)).json()["id"]
    before = state(database_url)
    r = client.post(f"{URL}/{wid}/cancel", headers=bearer(rain))
    assert r.status_code == 403 and r.json()["error"] == FLOOD.format(id=wid)
    assert state(database_url) == before


def test_a_rainstorm_key_may_not_cancel_an_event_an_update_turned_into_a_flash_flood(
        client: TestClient, make_key: Callable[..., str], database_url: str) -> None:
    """Bad input: the event began as rainstorm, an update made it a flash flood; the rainstorm key
    names the first (rainstorm) message — but a cancel ends the whole event."""
    water = make_key("qingxi-qx")
    rain = make_key("qingxi-qx", hazards=[Hazard.RAINSTORM])
    first = client.post(URL, json=red_rainstorm(), headers=bearer(water)).json()["id"]
    update = client.post(URL, headers=bearer(water), json=flash_flood(
        identifier="QX-2026-0716-002", msg_type="update", references=["QX-2026-0716-001"]))
    assert update.status_code == 202
    before = state(database_url)
    r = client.post(f"{URL}/{first}/cancel", headers=bearer(rain))
    assert r.status_code == 403 and r.json()["error"] == FLOOD.format(id=update.json()["id"])
    assert state(database_url) == before


def test_a_rainstorm_key_may_not_update_a_flash_flood_warning_into_a_rainstorm(
        client: TestClient, make_key: Callable[..., str], database_url: str) -> None:
    """Bad input: an update message posted to /api/v1/warnings with a rainstorm hazard (which the
    key may post) referencing the agency's flash-flood warning. Today it supersedes it."""
    water = make_key("qingxi-qx")
    rain = make_key("qingxi-qx", hazards=[Hazard.RAINSTORM])
    wid = client.post(URL, json=flash_flood(), headers=bearer(water)).json()["id"]
    before = state(database_url)
    r = client.post(URL, headers=bearer(rain), json=red_rainstorm(
        identifier="QX-2026-0716-002", msg_type="update", references=["QX-FF-001"]))
    assert r.status_code == 403 and r.json()["error"] == FLOOD.format(id=wid)
    assert state(database_url) == before


def test_a_rainstorm_key_may_not_cancel_a_flash_flood_warning_named_second(
        client: TestClient, make_key: Callable[..., str], database_url: str) -> None:
    """Bad input: a cancel message naming the key's own rainstorm warning first and the agency's
    flash-flood warning second (the cancel takes its hazard from the first)."""
    water = make_key("qingxi-qx")
    rain = make_key("qingxi-qx", hazards=[Hazard.RAINSTORM])
    client.post(URL, json=red_rainstorm(), headers=bearer(rain))
    flood = client.post(URL, json=flash_flood(), headers=bearer(water)).json()["id"]
    before = state(database_url)
    r = client.post(URL, headers=bearer(rain), json={
        "sender": "qingxi-qx", "identifier": "QX-2026-0716-009", "msg_type": "cancel",
        "references": ["QX-2026-0716-001", "QX-FF-001"], "sent": "2026-07-16T11:12:00+08:00"})
    assert r.status_code == 403 and r.json()["error"] == FLOOD.format(id=flood)
    assert state(database_url) == before


def test_a_scoped_key_still_updates_and_cancels_its_own_hazard(
        client: TestClient, make_key: Callable[..., str]) -> None:
    rain = make_key("qingxi-qx", hazards=[Hazard.RAINSTORM])
    first = client.post(URL, json=red_rainstorm(level="orange"), headers=bearer(rain)).json()["id"]
    update = client.post(URL, headers=bearer(rain), json=red_rainstorm(
        identifier="QX-2026-0716-002", msg_type="update", references=["QX-2026-0716-001"]))
    assert update.status_code == 202
    r = client.post(f"{URL}/{first}/cancel", headers=bearer(rain))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_the_record_names_the_key_that_posted_updated_and_cancelled(
        client: TestClient, make_key: Callable[..., str], database_url: str) -> None:
    """Today the record names only the agency: two keys of one agency cannot be told apart."""
    poster, canceller = make_key("qingxi-qx"), make_key("qingxi-qx")
    first = client.post(URL, json=red_rainstorm(), headers=bearer(poster)).json()["id"]
    client.post(URL, headers=bearer(poster), json=red_rainstorm(
        identifier="QX-2026-0716-002", msg_type="update", references=["QX-2026-0716-001"]))
    assert client.post(f"{URL}/{first}/cancel", headers=bearer(canceller)).status_code == 200
    events = client.get(f"{URL}/{first}/record", headers=bearer(poster)).json()["events"]
    by_poster, by_canceller = f"agency:qingxi-qx key:{key_id(poster)}", f"agency:qingxi-qx key:{key_id(canceller)}"
    assert [(e["kind"], e["actor"]) for e in events if e["actor"].startswith("agency:")] == [
        ("received", by_poster), ("received", by_poster), ("updated", by_poster), ("cancelled", by_canceller)]
    everything = client.get(f"{URL}/{first}/record", params={"format": "csv"}, headers=bearer(poster)).text
    assert poster.split("_", 2)[2] not in everything and canceller.split("_", 2)[2] not in everything


def test_a_malformed_key_is_401_not_an_error(client: TestClient) -> None:
    """Bad input: key prefixes a database may refuse in a query (a NUL byte) or that no key has."""
    for token in ("jy_\x00\x00\x00\x00_x", "jy_ZZZZZZZZ_x", "jy_" + "a" * 500 + "_x"):
        r = client.post(URL, json=red_rainstorm(), headers=bearer(token))
        assert r.status_code == 401, (token, r.text)
