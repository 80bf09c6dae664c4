"""The board's reading of call-outs, as units (no database): the order of the rows, who someone is
to the official (本人, AB岗, 上级, 值班长, 乡镇值班室), who was already told, whom to phone now and
what each number is."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatcher.domain.site import Site
from dispatcher.services.callout_views import OVERDUE_AFTER, Relation, Relations, numbers_of, order, phone_now, told
from dispatcher.sites import load_site
from tests.e2e.conftest import TINY_SITE

NOW = datetime(2026, 7, 16, 19, 3, tzinfo=UTC)  # 03:03 Beijing time: the night shift

PEOPLE = """\
roles:
  town_head: 乡镇长
  town_secretary: 乡镇党委书记
  emergency_head: 应急管理局局长
  duty_officer: 县应急值班员
  village_flood_officer: 村防汛责任人
  village_head: 村党组织书记/村主任
people:
  - { id: zhao, name: 赵局长, phone: "+8613800000001", area: "330599", roles: [emergency_head] }
  - { id: qian, name: 钱值班长, phone: "+8613800000002", area: "330599", roles: [duty_officer] }
  - { id: sun, name: 孙镇长, phone: "+8613800000003", area: "330599100", roles: [town_head],
      deputy: li, superior: zhao }
  - { id: li, name: 李书记, phone: "+8613800000004", area: "330599100", roles: [town_secretary] }
  - id: zhou
    name: 周村长
    phone: "+8613800000005"
    phones: ["13800000105", { number: "0572-5012345", kind: landline }, { number: "+8617400012345", kind: satellite }]
    area: "330599100201"
    roles: [village_flood_officer]
    deputy: wu
    superior: sun
  - { id: wu, name: 吴主任, phone: "+8613800000006", area: "330599100201", roles: [village_head] }
  - { id: zheng, name: 郑防汛员, phone: "+8613800000007", area: "330599100202", roles: [village_flood_officer],
      superior: zhao }
"""
DUTY = """\
weekly:
  - { day: mon, start: "00:00", hours: 168, leader: zhao, chief: qian, staff: [li] }
rooms:
  - area: "330599100"
    name: 青溪镇值班室
    phone: "0572-5010110"
    weekly:
      - { day: mon, start: "00:00", hours: 168, leader: wu, chief: zheng }
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("site") / "tiny"
    shutil.copytree(TINY_SITE, folder)
    (folder / "people.yaml").write_text(PEOPLE, encoding="utf-8")
    (folder / "duty.yaml").write_text(DUTY, encoding="utf-8")
    return load_site(Path(folder))


def callout(id_: int, state: str, started: timedelta, **more: Any) -> dict[str, Any]:
    """A call-out as list_callouts gives it, started ``started`` before NOW."""
    return {"id": id_, "state": state, "started_at": (NOW - started).isoformat(), "unreached_at": None,
            "follow_up": {"state": None, "visits": []}} | more


# -- the order of the rows ------------------------------------------------------------------------------


def test_unreached_first_then_overdue_then_open_then_acknowledged_then_closed() -> None:
    rows = [
        callout(1, "acknowledged", timedelta(minutes=30)),
        callout(2, "notified", timedelta(minutes=2)),  # open, not overdue yet
        callout(3, "cancelled", timedelta(minutes=40)),
        callout(4, "notified", timedelta(minutes=9)),  # overdue
        callout(5, "unreached", timedelta(minutes=20), unreached_at=(NOW - timedelta(minutes=5)).isoformat()),
        callout(6, "pending", timedelta(minutes=6)),  # overdue, started later than 4
        callout(7, "expired", timedelta(minutes=50)),
    ]
    assert [c["id"] for c in order(rows, NOW)] == [5, 4, 6, 2, 1, 3, 7]


def test_overdue_begins_five_minutes_after_the_start() -> None:
    just = callout(1, "notified", OVERDUE_AFTER)
    past = callout(2, "notified", OVERDUE_AFTER + timedelta(seconds=1))
    assert [c["id"] for c in order([just, past], NOW)] == [2, 1]


def test_among_the_unreached_the_longest_waiting_and_nobody_sent_come_first() -> None:
    def unreached(id_: int, minutes: int, follow: str | None) -> dict[str, Any]:
        return callout(id_, "unreached", timedelta(minutes=40), unreached_at=(NOW - timedelta(minutes=minutes))
                       .isoformat(), follow_up={"state": follow, "visits": []})

    rows = [unreached(1, 10, "reached"), unreached(2, 5, None), unreached(3, 20, "assigned"),
            unreached(4, 30, None), unreached(5, 25, "not_found"), unreached(6, 40, "relayed")]
    # nobody sent or not found (to act on again; the longest unreached first), then someone on the way,
    # then found and told
    assert [c["id"] for c in order(rows, NOW)] == [4, 5, 2, 3, 6, 1]


def test_the_order_is_stable_for_equal_rows() -> None:
    rows = [callout(i, "notified", timedelta(minutes=1)) for i in (9, 3, 7)]
    assert [c["id"] for c in order(rows, NOW)] == [3, 7, 9]


# -- who someone is to the official ---------------------------------------------------------------------


def test_relations_read_from_the_roster_and_the_duty_rotas(site: Site) -> None:
    who = Relations(site)
    assert who.of("sun", "sun", NOW).relation is Relation.SELF
    assert who.of("sun", "li", NOW).relation is Relation.DEPUTY  # though li is county duty staff too
    assert who.of("sun", "zhao", NOW).relation is Relation.SUPERIOR
    assert who.of("sun", "qian", NOW).relation is Relation.DUTY_CHIEF
    assert who.of("zhou", "zhao", NOW).relation is Relation.DUTY_LEADER
    assert who.of("zhou", "li", NOW).relation is Relation.DUTY_STAFF
    room = who.of("sun", "wu", NOW)
    assert (room.relation, room.room, room.post) == (Relation.TOWN_DUTY, "青溪镇值班室", "leader")
    assert who.of("sun", "nobody-on-file", NOW).relation is Relation.OTHER


def test_an_attempts_purpose_decides_for_someone_in_two_places(site: Site) -> None:
    who = Relations(site)
    # zhao is 郑防汛员's superior and the county's duty leader: asked as what the step asked
    assert who.of("zheng", "zhao", NOW, "to_superior").relation is Relation.SUPERIOR
    assert who.of("zheng", "zhao", NOW, "to_duty").relation is Relation.DUTY_LEADER
    assert who.of("zheng", "zhao", NOW, "unreached").relation is Relation.SUPERIOR  # the 未叫醒 list: superior first


def test_who_acknowledged_the_official_a_deputy_a_duty_officer_or_a_number(site: Site) -> None:
    who = Relations(site)
    assert who.of_actor("sun", "li", NOW).relation is Relation.DEPUTY
    assert who.of_actor("sun", "user:liu", NOW).relation is Relation.OFFICER
    assert who.of_actor("sun", "+8613800000003", NOW).relation is Relation.SELF  # his own number
    assert who.of_actor("sun", "+8613800000004", NOW).relation is Relation.DEPUTY  # li's number
    assert who.of_actor("sun", "+8613999999999", NOW).relation is Relation.OTHER
    assert who.of_actor("sun", "key:qingxi-qx", NOW).relation is Relation.OTHER


# -- told already, phone now, the numbers ---------------------------------------------------------------


def attempt(to: str, relation: str, status: str, minute: int, channel: str = "sms",
            purpose: str = "to_deputy") -> dict[str, Any]:
    return {"to": to, "to_name": to.upper(), "relation": relation, "room": None, "status": status,
            "sent_at": (NOW + timedelta(minutes=minute)).isoformat() if status != "queued" else None,
            "channel": channel, "purpose": purpose}


def test_told_lists_everyone_but_the_official_once_at_their_first_message_in_order() -> None:
    attempts = [
        attempt("zhou", "self", "sent", 0, purpose="alert"),
        attempt("wu", "deputy", "delivered", 6),
        attempt("sun", "superior", "sent", 10, "voice", "to_superior"),
        attempt("wu", "deputy", "sent", 7, "voice"),
        attempt("zhao", "duty_leader", "failed", 15, purpose="unreached"),  # never reached: not told
        attempt("qian", "duty_chief", "queued", 15, purpose="unreached"),  # not yet
        attempt("li", "deputy", "sent", 20, purpose="update"),  # the update's notice: not about this call-out
    ]
    found = told(attempts)
    assert [(t["to"], t["relation"], t["channels"]) for t in found] == [
        ("wu", "deputy", ["sms", "voice"]), ("sun", "superior", ["voice"])]
    assert found[0]["at"] == (NOW + timedelta(minutes=6)).isoformat()


def test_every_number_says_what_it_is(site: Site) -> None:
    numbers = numbers_of(site.people["zhou"], show_phones=True)
    assert [(n["label"], n["dial"]) for n in numbers] == [
        ("mobile", "138 0000 0005"), ("backup_mobile", "138 0000 0105"), ("landline", "0572 501 2345"),
        ("satellite", "174 0001 2345")]
    masked = numbers_of(site.people["zhou"], show_phones=False)
    assert [n["dial"] for n in masked] == ["+86138****0005", "+86138****0105", "+8657****2345", "+86174****2345"]
    assert all("****" in n["number"] for n in masked)


def test_phone_now_the_official_then_deputy_superior_and_the_town_duty_room(site: Site) -> None:
    whom = phone_now(site, Relations(site), "zhou", NOW, show_phones=True)
    assert [(p["relation"], p["name"]) for p in whom] == [
        ("self", "周村长"), ("deputy", "吴主任"), ("superior", "孙镇长"), ("town_duty", "青溪镇值班室")]
    assert len(whom[0]["numbers"]) == 4 and whom[3]["numbers"][0]["dial"] == "0572 501 0110"
    viewer = phone_now(site, Relations(site), "zhou", NOW, show_phones=False)
    assert "0572" not in str([p["numbers"] for p in viewer]) and "****" in str(viewer)
    # someone with no deputy and whose superior is the county: nobody twice, no room outside a town
    assert [p["relation"] for p in phone_now(site, Relations(site), "zhao", NOW, show_phones=True)] == ["self"]
