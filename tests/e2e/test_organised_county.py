"""The county as it is organised, end to end on SQLite and PostgreSQL: warnings that name a hazard zone
(JSON ``zones``, CAP geocode ``zone``) call exactly the zone's villages and groups across two towns;
a town warning reaches the county leader who 包保 the town and no other leader."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow, WarningRow
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, FIXTURES
from tests.support.harness import Harness

ORGANISED = FIXTURES / "sites" / "organised"
ZONE_PEOPLE = ("tantou", "tantou-1", "tantou-grid", "songkeng", "songkeng-1", "he-jun")


@pytest.fixture
def tiny_site(database_url: str) -> str:  # this module's county: tests/fixtures/sites/organised
    with transaction(database_url) as session:
        load_site_files(session, ORGANISED, FIXED_NOW)
    return database_url


def called(h: Harness) -> set[str]:
    with transaction(h.url) as session:
        return set(session.scalars(select(CalloutRow.person_id)))


def test_a_zone_warning_calls_the_zone_across_two_towns_and_nobody_else(harness: Harness) -> None:
    harness.post(hazard="flash_flood", areas=[], zones=["baiyangou"], headline="白岩沟小流域山洪红色预警")
    for person in ZONE_PEOPLE:
        harness.expect(person, "sms", "alert")
        harness.expect(person, "voice", "alert")
    assert called(harness) == set(ZONE_PEOPLE)


def test_a_cap_warning_names_a_zone_by_its_geocode(harness: Harness) -> None:
    cap = f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>QX-ZONE-1</identifier><sender>qingxi-qx</sender><sent>{FIXED_NOW.isoformat()}</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>zh-CN</language><category>Geo</category><event>山洪</event><urgency>Immediate</urgency>
    <severity>Extreme</severity><certainty>Likely</certainty><headline>白岩沟小流域山洪灾害红色预警</headline>
    <parameter><valueName>预警级别</valueName><value>红色</value></parameter>
    <area><areaDesc>白岩沟小流域</areaDesc><geocode><valueName>zone</valueName><value>baiyangou</value></geocode></area>
  </info>
</alert>"""
    r = harness.client.post("/api/v1/warnings", content=cap.encode(),
                            headers={**harness.headers, "Content-Type": "application/cap+xml"})
    assert r.status_code == 202, r.text
    with transaction(harness.url) as session:
        assert session.get(WarningRow, r.json()["id"]).zones == ["baiyangou"]
    for person in ZONE_PEOPLE:
        harness.expect(person, "sms", "alert")
        harness.expect(person, "voice", "alert")


def test_an_unknown_zone_is_refused_and_nothing_is_stored(harness: Harness) -> None:
    """Bad input: a warning naming a zone the county does not have."""
    r = harness.client.post("/api/v1/warnings", headers=harness.headers, json={
        "sender": "qingxi-qx", "identifier": "Z-404", "hazard": "flash_flood", "level": "red", "zones": ["nowhere"],
        "headline": "山洪预警", "sent": FIXED_NOW.isoformat()})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "zones[0]",
                                   "message": "'nowhere' is not a zone of this site (zones: baiyangou)"}]
    with transaction(harness.url) as session:
        assert session.scalar(select(func.count()).select_from(WarningRow)) == 0


def test_a_town_warning_reaches_the_leader_who_baobao_it(harness: Harness) -> None:
    harness.post(hazard="rainstorm", areas=["330599102"])  # 龙潭镇
    harness.settle()
    people = called(harness)
    assert "li-weidong" in people
    assert not {"wang-jianguo", "zhou-min", "xu-haitao"} & people
    for person in sorted(people):
        harness.expect(person, "voice", "alert")
        if person != "lt-duty-chief":  # a landline only: calls, no text messages
            harness.expect(person, "sms", "alert")


def test_preview_says_why_each_person_is_called(harness: Harness) -> None:
    r = harness.client.get("/api/v1/plans/preview", headers=harness.headers, params={
        "hazard": "flash_flood", "level": "red", "zones": "baiyangou", "at": FIXED_NOW.isoformat()})
    assert r.status_code == 200, r.text
    body = r.json()
    why = {c["official"]["id"]: (c["plan"], c["target"], c["reason"]) for c in body["callouts"]}
    assert why["he-jun"] == ("flash-flood-zone", 2, "白岩沟小流域监测员")
    assert why["songkeng-1"] == ("flash-flood-zone", 1, "村民小组长（一组）")
    assert body["zones"] == [{"id": "baiyangou", "name": "白岩沟小流域", "kind": "small_watershed"}]
