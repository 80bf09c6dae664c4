"""The record in words (dispatcher/services/record_words.py): every event kind is a sentence with
names, not ids, in the site's local time; actors in words; someone answering for an official says
so; the printed 一事一档's lines and time bars. Pure: the sample county's files, no database."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain.record import EventKind
from dispatcher.services import record_words
from dispatcher.services.record_words import Frozen, actor_words, document, say
from dispatcher.sites import load_site
from tests.conftest import SAMPLE_SITE

SITE = load_site(SAMPLE_SITE)
AT = datetime(2026, 7, 16, 13, 17, 27, 123456, tzinfo=UTC)  # 21:17:27 in Beijing
CJK = re.compile(r"[\u2e80-\u2fdf\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
WANG, LI, SHAO = "wang-jianguo", "li-weidong", "shao-linfeng"  # 王建国, his AB岗 李卫东; 邵林峰


def ev(kind: str, data: dict[str, Any], actor: str = "engine", seq: int = 1, at: datetime = AT) -> dict[str, Any]:
    return {"seq": seq, "at": at.isoformat(), "actor": actor, "kind": kind, "data": data}


def one(kind: str, data: dict[str, Any], actor: str = "engine", lang: str = "zh", **kw: Any) -> record_words.Said:
    return say([ev(kind, data, actor)], SITE, lang, **kw)[0]


# What each kind's data looks like, as the services write it (grep append_event).
SAMPLES: dict[str, tuple[str, dict[str, Any], str]] = {
    "received": ("agency:qingxi-qx key:k_1", {"warning": "W1", "sender": "qingxi-qx", "msg_type": "alert",
                 "hazard": "rainstorm", "level": "red", "areas": ["330599100"], "drill": False,
                 "headline": "暴雨红色预警"}, "收到预警：qingxi-qx发布暴雨红色预警（青溪镇）"),
    "matched": ("rules", {"warning": "W1", "plans": ["rainstorm-red"], "officials": 34, "duty": [LI],
                "gaps": [], "fallback": None}, "匹配叫应方案：暴雨红色预警叫应方案；叫应 34 名责任人；值班：李卫东"),
    "updated": ("agency:qingxi-qx key:k_1", {"warnings": ["W1"], "by": "W2"}, "新消息 W2 取代 W1"),
    "cancelled": ("user:chen", {"warnings": ["W1"], "callouts_cancelled": 3, "notices": 2},
                  "取消整个预警事件：关闭 3 条叫应"),
    "apply_failed": ("engine", {"warning": "W1", "error": "ValueError: x"}, "系统未能处理预警 W1"),
    "step_failed": ("engine", {"steps": [{"callout": 1, "person": WANG, "step": 1, "error": "KeyError: 'x'"}]},
                    "叫应步骤未能执行（1 分钟后重试）：1 人（王建国）"),
    "expired": ("engine", {"warning": "W1", "expires": "2026-07-16T15:00:00+00:00"},
                "已到失效时间（2026-07-16 23:00）"),
    "applied": ("engine", {"warning": "W1", "msg_type": "alert", "started": 34, "superseded": [], "muted": [],
                "notices": 0, "cancelled": 0}, "开始叫应 34 人"),
    "steps": ("engine", {"steps": [{"callout": 1, "person": WANG, "step": 0, "attempts": 2}]},
              "第1步：短信、即时通讯发出 1 人（王建国）"),
    "attempts": ("worker", {"attempts": [
        {"key": "1:0:sms:wang-jianguo", "channel": "sms", "to": WANG, "purpose": "alert", "status": "sent"},
        {"key": "1:0:im:wang-jianguo", "channel": "im", "to": WANG, "purpose": "alert", "status": "failed",
         "error": "robot refused"}]}, "已交服务商发出 1 条（短信 1）；失败：王建国 即时通讯（robot refused）"),
    "unreached": ("engine", {"callouts": [{"callout": 1, "person": WANG, "step": 4, "attempts": 6}]},
                  "未叫醒：1 人（王建国）经各步叫应仍未确认"),
    "step_brought_forward": ("aliyun", {"callout": 1, "person": WANG, "failed": "1:1:voice:wang-jianguo",
                             "next_step": 2}, "发给王建国的语音电话未送达，提前执行第3步"),
    "next_number": ("host-1:4242", {"calls": [{"callout": 1, "to": WANG, "step": 1, "failed": "1:1:voice:wang-jianguo",
                    "failed_number": "+8613905720001", "attempt": "1:1:voice:wang-jianguo#2",
                    "number": "+8657250120001", "why": "no-answer"}]},
                    "王建国的电话 +8613905720001 未接通（no-answer），改拨 +8657250120001"),
    "provider_receipt": ("twilio", {"key": "1:0:sms:wang-jianguo", "channel": "sms", "to": WANG, "provider_id": "SM1",
                         "provider_status": "delivered", "error_code": None, "status": "delivered",
                         "changed": True}, "Twilio回执：发给王建国的短信已送达"),
    "inbound_sms": ("+8613905720002", {"sid": "SM9", "body": "收到", "code": None, "outcome": "acknowledged",
                    "callouts": [1]}, "李卫东（+8613905720002）短信回复“收到”：确认 1 条叫应"),
    "voice_keypress": (WANG, {"key": "1:1:voice:wang-jianguo", "call_sid": "CA1", "digits": "1"},
                       "王建国在电话中按了 1（确认键）"),
    "link_used": (LI, {"callout": 1, "person": WANG, "recipient": LI, "nonce": "n", "ip": "127.0.0.1",
                  "user_agent": "x"}, "李卫东打开确认链接确认，为王建国"),
    "acknowledged": (WANG, {"callout": 1, "person": WANG, "via": "voice", "note": None, "after_unreached": False,
                     "seconds": 200.4}, "王建国电话按键，本人确认，用时 3:20"),
    "ack_ignored": (WANG, {"callout": 1, "person": WANG, "via": "sms", "state": "acknowledged"},
                    "王建国短信回复，但王建国的叫应状态为“已确认”，未作更改"),
    "recall": ("user:liu", {"callout": 1, "person": WANG, "done": "step 2 runs now"},
               "liu 立即重呼王建国：第3步立即执行"),
    "callouts_expired": ("engine", {"callouts": 2, "people": [WANG, SHAO]},
                         "预警失效，2 条未完成的叫应随之关闭（王建国、邵林峰）"),
    "sent_after_lease_lost": ("host-2:77", {"attempts": [{"key": "1:0:sms:wang-jianguo", "provider_id": "p",
                              "held_by": "host-1:4242"}]}, "可能重复：1 人（王建国）"),
    "broadcast_ordered": ("engine", {"id": "bc-W1", "areas": ["330599100201", "330599100202"], "repeat": 3},
                          "下单农村应急广播：2 个村（溪口村、下洋村），每次重复 3 遍"),
    "broadcast_sent": ("worker", {"id": "bc-W1", "platform_id": "P-1", "error": None, "retry": False},
                       "应急广播平台已接单（P-1）"),
    "broadcast_failed": ("worker", {"id": "bc-W1", "platform_id": None, "error": "PermanentError: no", "retry": False},
                         "应急广播下发失败：PermanentError: no"),
    "broadcast_receipt": ("broadcast", {"id": "bc-W1", "area": "330599100201", "state": "completed",
                          "at": "2026-07-16T13:20:00+00:00", "detail": ""}, "溪口村广播播发完成（终端时间 21:20:00）"),
    "follow_up_assigned": ("user:liu", {"callout": 1, "person": WANG, "who": "村支书张明亮", "note": "带手电"},
                           "liu 安排村支书张明亮上门核实王建国（说明：带手电）"),
    "rollcall_started": ("schedule", {"warning": "W1", "rollcall": "daily", "name": "每日值班点名",
                         "at": "2026-07-16T13:17:27+00:00", "headline": "每日值班点名（7月16日21:17）",
                         "answer_within": 600.0, "channels": ["voice", "sms"]},
                         "按计划每日值班点名（7月16日21:17）：各值班室在班人员须在 10 分钟内应答"),
    "follow_up_result": ("user:liu", {"callout": 1, "person": WANG, "outcome": "reached", "note": "在家",
                         "assigned": 40}, "上门核实王建国：已当面告知本人（在家）"),
    "forwarded": ("engine", {"target": "city", "name": "Lishui platform", "kind": "forward", "warning": "W1",
                  "identifier": "W1", "code": 202, "tries": 1, "msg_type": "alert"},
                  "预警已转发至Lishui platform（HTTP 202，标识 W1）"),
    "forward_failed": ("engine", {"target": "city", "name": "Lishui platform", "kind": "forward", "warning": "W1",
                       "identifier": "W1", "code": 500, "tries": 1, "error": "database down",
                       "retry_at": "2026-07-16T13:17:57+00:00"},
                       "转发至Lishui platform未成功（HTTP 500：database down），21:17:57 重试"),
    "forward_refused": ("engine", {"target": "city", "name": "Lishui platform", "kind": "forward", "warning": "W1",
                        "identifier": "W1", "code": 401, "tries": 1, "error": "unknown key", "key": True},
                        "Lishui platform拒绝了我方密钥（HTTP 401）"),
    "report_sent": ("engine", {"target": "city", "name": "Lishui platform", "kind": "report_email", "warning": "W1",
                    "identifier": "W1-report", "code": 250, "tries": 1, "to": "duty@city.example", "called": 3,
                    "acknowledged": 2, "unreached": 1},
                    "叫应结果已上报Lishui platform（电子邮件 duty@city.example）：叫应 3 人，确认 2 人，未叫醒 1 人"),
    "drill_started": ("schedule", {"drill": "D1", "kind": "blind", "by": "user:admin", "broadcast": False,
                      "without": ["sms", "aliyun"], "length": 3600.0, "at": "2026-07-16T13:17:27+00:00"},
                      "双盲演练开始（admin 安排，编号 D1，时限 60 分钟）；不下发农村应急广播；断开：短信、阿里云"),
    "drill_ended": ("engine", {"drill": "D1", "kind": "blind", "ending": "settled", "called": 3, "reached": 3,
                    "acknowledged": 2, "unreached": 1},
                    "演练结束（全部叫应已结束），双盲演练揭晓：此事件为演练：叫应 3 人，已通知 3 人，已确认 2 人"),
    "spotcheck_started": ("user:chen", {"warning": "W1", "spotcheck": "liuwen", "name": "六问抽查",
                                        "questions": ["是否收到预警", "是否在岗在位"], "size": 10, "seed": 4821,
                                        "drawn": [WANG], "available": 1, "skipped": [], "short": True,
                                        "answer_within": 1800.0, "channels": ["voice", "sms"]},
                          "发起六问抽查：随机种子 4821，抽取 1 人（只有 1 人可抽，不足 10 人）"),
    "answered": (WANG, {"callout": 1, "person": WANG, "via": "sms", "answers": {"0": "yes", "1": "no"},
                        "ignored": [], "complete": True, "body": "1 2"},
                 "王建国作答（短信回复，原文“1 2”）：1问是、2问否，已全部作答"),
    "not_an_answer": (WANG, {"callout": 1, "person": WANG, "via": "sms", "body": "好的", "asked_again": True},
                      "王建国的短信回复“好的”不是有效答案，已短信请其重新作答"),
    "rollcall_result": ("engine", {"rooms": [
        {"area": "330599", "name": "青溪县值班室", "verdict": "manned", "called": 3, "present": 1, "late": 1,
         "absent": 1},
        {"area": "330599103", "name": "白云镇值班室", "verdict": "missing", "called": 1, "present": 0, "late": 0,
         "absent": 1}], "manned": 1, "missing": 1, "unmanned": 0},
        "点名结果：2 个值班室，到岗 1 个，未到岗 1 个，无人值班 0 个。"
        "青溪县值班室到岗（呼叫 3 人，按时应答 1，迟到应答 1，未应答 1）；"
        "白云镇值班室未到岗（呼叫 1 人，按时应答 0，未应答 1）"),
    "spotcheck_result": ("engine", {"checked": 2, "ok": 1, "no": 1, "missing": 0,
                                    "questions": [{"yes": 2, "no": 0, "none": 0}, {"yes": 1, "no": 1, "none": 0}],
                                    "follow_up": [{"person": WANG, "name": "王建国", "town": "", "no": [1],
                                                   "missing": []}]},
                         "抽查结果：抽查 2 人，全部为是 1 人，有“否” 1 人，未答全 0 人；答“否”：第2问 1 人；"
                         "需跟进 1 人（王建国（第2问否））"),
}


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_every_event_kind_is_a_sentence(kind: EventKind) -> None:
    """A kind added to the record without a sentence here fails: the duty officer would read its
    raw data (add it to record_words.SENTENCES, and a sample of its data above)."""
    assert kind.value in record_words.SENTENCES, f"no sentence for the record's {kind.value!r} events"
    assert kind.value in SAMPLES, f"no sample of {kind.value!r} data in this test"
    actor, data, expected = SAMPLES[kind.value]
    frozen = {1: Frozen(WANG, [{"index": 0, "channels": ["sms", "im"], "to": ["self"], "recipients": [WANG],
                                "final": False}])}
    said = one(kind.value, data, actor, callouts=frozen)
    assert expected in said.text, said.text
    assert said.time == "21:17:27" and said.date == "2026-07-16"
    for raw in ("{'", "':", "=[", "None", "False", "True", "_", "+00:00"):
        assert raw not in said.text.replace("PermanentError", "").replace("ValueError", "").replace(
            "KeyError", ""), f"{kind.value}: raw data {raw!r} in {said.text!r}"
    english = one(kind.value, data, actor, lang="en", callouts=frozen)
    names = [p.name for p in SITE.people.values()] + [a.name for a in SITE.areas.areas.values()]
    names += ["暴雨红色预警", "村支书张明亮", "带手电", "在家", "收到", "好的", "六问抽查"]  # quoted, or names
    left = english.text
    for name in sorted(names, key=len, reverse=True):
        left = left.replace(name, "")
    assert not CJK.search(left), f"{kind.value}: Chinese left in English: {english.text!r}"


def test_a_big_step_is_one_sentence_with_the_names_folded() -> None:
    people = [p.id for p in SITE.people.values()][:34]
    frozen = {i: Frozen(pid, [{"index": 0, "channels": ["sms", "im"], "to": ["self"], "recipients": [pid],
                                "final": False}]) for i, pid in enumerate(people, start=1)}
    said = one("steps", {"steps": [{"callout": i, "person": pid, "step": 0, "attempts": 2}
                                   for i, pid in enumerate(people, start=1)]}, callouts=frozen)
    assert said.text == "第1步：短信、即时通讯发出 34 人"
    assert len(said.people) == 34 and said.people[0] == SITE.people[people[0]].name
    assert one("steps", {"steps": [{"callout": 1, "person": WANG, "step": 0, "attempts": 2}]},
               lang="en", callouts=frozen).text == "Step 1: SMS, IM to 1 person (王建国)"


def test_a_step_to_deputies_names_who_for_whom_from_the_attempts_without_frozen_steps() -> None:
    events = [ev("steps", {"steps": [{"callout": 1, "person": WANG, "step": 2, "attempts": 2}]}, seq=1),
              ev("attempts", {"attempts": [
                  {"key": "1:2:voice:li-weidong", "channel": "voice", "to": LI, "purpose": "to_deputy",
                   "status": "sent"},
                  {"key": "1:2:sms:li-weidong", "channel": "sms", "to": LI, "purpose": "to_deputy",
                   "status": "sent"}]}, "worker", seq=2)]
    said = say(events, SITE, "zh")[0]
    assert said.text == "第3步：1 人未确认，短信、语音电话通知AB岗：王建国→（无）"
    frozen = {1: Frozen(WANG, [{"index": 2, "channels": ["voice", "sms"], "to": ["deputy"], "recipients": [LI],
                                "final": False}])}
    with_steps = say(events, SITE, "zh", callouts=frozen)[0].text
    assert with_steps == "第3步：1 人未确认，语音电话、短信通知AB岗：王建国→李卫东"


def test_a_deputys_sms_acknowledgement_reads_as_for_the_official() -> None:
    events = [ev("acknowledged", {"callout": 7, "person": WANG, "via": "sms", "note": None, "after_unreached": False,
                                  "seconds": 455.0}, LI, seq=1, at=AT + timedelta(minutes=7, seconds=35)),
              ev("inbound_sms", {"sid": "SM1", "body": "收到", "code": None, "outcome": "acknowledged",
                                 "callouts": [7]}, "+8613905720002", seq=2, at=AT + timedelta(minutes=7, seconds=35))]
    ack, sms = say(events, SITE, "zh")
    assert ack.text == "李卫东（AB岗）短信回复“收到”，代王建国确认，用时 7:35"
    assert ack.time == "21:25:02" and ack.actor == "李卫东" and ack.tone == "ack"
    assert sms.actor == "李卫东（+8613905720002）"
    english = say(events, SITE, "en")[0]
    assert english.text == "李卫东 (deputy) replied \u201c收到\u201d by SMS, acknowledging for 王建国, after 7:35"


def test_the_superior_and_a_duty_officer_answering_say_who_they_are() -> None:
    superior = SITE.people[WANG].superior
    assert superior
    said = one("acknowledged", {"callout": 1, "person": WANG, "via": "voice", "seconds": 700}, superior)
    assert said.text.startswith(f"{SITE.people[superior].name}（上级）电话按键，代王建国确认")
    manual = one("acknowledged", {"callout": 1, "person": WANG, "via": "manual", "note": "座机联系上本人",
                                  "seconds": 61}, "user:duty1")
    assert manual.text == "duty1 代王建国确认（说明：座机联系上本人），用时 1:01" and manual.actor == "duty1"


def test_actors_in_words() -> None:
    assert actor_words("engine", SITE) == "系统" and actor_words("engine", SITE, "en") == "system"
    assert actor_words("worker", SITE) == "发送进程" and actor_words("rules", SITE) == "系统（预案匹配）"
    assert actor_words("user:duty1", SITE) == "duty1"
    assert actor_words("agency:qingxi-qx key:k_49946bfa", SITE) == "qingxi-qx"
    assert actor_words(SHAO, SITE) == "邵林峰"
    assert actor_words("host-1:4242", SITE) == "发送进程（host-1:4242）"
    assert actor_words("aliyun", SITE) == "阿里云" and actor_words("aliyun", SITE, "en") == "Aliyun"
    assert actor_words("+8613905720002", SITE) == "李卫东（+8613905720002）"
    assert actor_words("+8613905720002", SITE, show_phones=False) == "李卫东（+86139****0002）"
    assert actor_words("+8613000000000", SITE, show_phones=False) == "+86130****0000"


def test_numbers_are_masked_for_viewers_in_the_sentences_too() -> None:
    data = SAMPLES["next_number"][1]
    assert "+8613905720001" in one("next_number", data, "w:1").text
    masked = one("next_number", data, "w:1", show_phones=False).text
    assert "+8613905720001" not in masked and "+86139****0001" in masked


def test_local_time_is_the_sites() -> None:
    urumqi = replace(SITE, tz=ZoneInfo("Asia/Urumqi"))  # UTC+6
    said = say([ev("applied", SAMPLES["applied"][1])], urumqi, "zh")[0]
    assert said.time == "19:17:27" and said.at.utcoffset() == timedelta(hours=6)
    late = say([ev("applied", SAMPLES["applied"][1], at=datetime(2026, 7, 16, 16, 30, tzinfo=UTC))], SITE)[0]
    assert (late.date, late.time) == ("2026-07-17", "00:30:00")  # past midnight in Beijing: the next day


def test_a_kind_added_later_still_reads_with_names() -> None:
    said = one("door_knocked", {"callout": 1, "person": SHAO, "area": "330599100201",
                                "at": "2026-07-16T14:00:00+00:00"}, "user:liu")
    assert "邵林峰" in said.text and "溪口村" in said.text and "2026-07-16 22:00" in said.text


def _callout(cid: int, person: str, started: datetime, *, attempts: list[dict[str, Any]], state: str,
             acked: datetime | None = None, by: str | None = None, via: str | None = None, note: str | None = None,
             unreached: datetime | None = None) -> dict[str, Any]:
    p = SITE.people[person]
    return {"id": cid, "official": {"id": person, "name": p.name, "roles": ["县领导"], "unit": p.unit,
                                    "area_name": SITE.areas.label(p.area)},
            "state": state, "started_at": started.isoformat(),
            "acknowledged_at": acked.isoformat() if acked else None, "acknowledged_by": by, "ack_via": via,
            "ack_note": note, "seconds_to_ack": (acked - started).total_seconds() if acked else None,
            "unreached_at": unreached.isoformat() if unreached else None, "attempts": attempts}


def _sent(step: int, purpose: str, channel: str, to: str, at: datetime, status: str = "delivered") -> dict[str, Any]:
    return {"step": step, "purpose": purpose, "channel": channel, "to": to, "status": status,
            "sent_at": at.isoformat()}


def test_the_printed_file_one_line_per_official_and_the_time_bars() -> None:
    start = AT
    callouts = [
        _callout(1, WANG, start, state="acknowledged", acked=start + timedelta(minutes=7), by=LI, via="sms",
                 attempts=[_sent(0, "alert", "sms", WANG, start + timedelta(seconds=5)),
                           _sent(0, "alert", "im", WANG, start + timedelta(seconds=5)),
                           _sent(2, "to_deputy", "sms", LI, start + timedelta(minutes=6))]),
        _callout(2, SHAO, start, state="acknowledged", acked=start + timedelta(minutes=4), by=SHAO, via="voice",
                 attempts=[_sent(0, "alert", "sms", SHAO, start + timedelta(minutes=4), "failed")]),
        _callout(3, "li-ming", start, state="unreached", unreached=start + timedelta(minutes=15),
                 attempts=[_sent(0, "alert", "sms", "li-ming", start + timedelta(seconds=20)),
                           _sent(4, "unreached", "sms", LI, start + timedelta(minutes=15)),
                           _sent(4, "unreached", "voice", LI, start + timedelta(minutes=15))]),
    ]
    events = [ev("received", SAMPLES["received"][1], "agency:qingxi-qx key:k_1", 1),
              ev("matched", SAMPLES["matched"][1], "rules", 2),
              ev("follow_up_assigned", {"callout": 3, "person": "li-ming", "who": "镇干部周敏", "note": ""},
                 "user:liu", 3, start + timedelta(minutes=16))]
    warning = {"id": "W1", "sender": "qingxi-qx", "hazard": "rainstorm", "level": "red", "areas": ["330599100"],
               "zones": ["baiyangou"], "headline": "暴雨红色预警", "sent": start, "expires": None,
               "received_at": start, "status": "active", "drill": False}
    doc = document(warning, events, callouts, SITE, "zh", now=start + timedelta(hours=1))
    facts = dict(doc.facts)
    assert facts["预警区域"] == "青溪县/青溪镇" and facts["危险区"] == "白岩沟小流域（小流域）"
    assert facts["发布时间"] == "2026-07-16 21:17" and facts["预警等级"] == "红色（I级）"
    assert doc.plans == ["暴雨红色预警叫应方案"] and doc.duty == ["李卫东"]
    assert [(b.minutes, b.met, b.total) for b in doc.bars] == [(3, 2, 3), (5, 1, 3), (30, 2, 3)]
    wang, shao, li_ming = doc.officials
    assert [(c.time, c.channel, c.to) for c in wang.calls] == [
        ("21:17:32", "短信、即时通讯", "本人"), ("21:23:27", "短信", "AB岗李卫东")]
    assert wang.answer == "21:24:27 短信回复，由AB岗李卫东确认" and wang.bars == (True, False, True)
    assert shao.answer == "21:21:27 电话按键，本人确认" and shao.bars == (False, True, True)  # its SMS failed
    assert li_ming.state == "未叫醒" and li_ming.answer == "" and li_ming.bars == (True, False, False)
    (unreached,) = doc.unreached
    assert unreached.name == SITE.people["li-ming"].name and unreached.at == "21:32:27"
    assert unreached.told == ("李卫东：短信、语音电话 已送达 21:32:27",)
    assert unreached.after == ("21:33:27 liu：liu 安排镇干部周敏上门核实李明",)
    english = document(warning, events, callouts, SITE, "en", now=start)
    assert english.officials[0].answer == "21:24:27 replied by SMS, acknowledged by deputy 李卫东"
    assert dict(english.facts)["Level"] == "red (I)" and english.plans == ["rainstorm-red"]
