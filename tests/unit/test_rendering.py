"""Message templates: every channel x purpose x language renders, SMS fits, voice can be spoken."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dispatcher.domain.callouts import QUESTIONING, TELLING, Purpose
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Hazard, Level
from dispatcher.rendering import MessageContext, render, sms_segments

SENT = datetime(2026, 7, 16, 3, 10, tzinfo=UTC)  # 11:10 Beijing time
LINK = "https://jy.example.cn/a/5f2c9e1b7d"

LONG_ZH = MessageContext(
    headline="青溪县气象台2026年7月16日11时10分发布暴雨红色预警信号：预计未来3小时内青溪镇、白云镇、石门乡、"
             "龙潭镇、桃花坪村、河口街道将出现100毫米以上强降水，并伴有雷电和8级以上阵风",
    hazard=Hazard.RAINSTORM, level=Level.RED,
    areas=["青溪镇", "白云镇", "石门乡", "龙潭镇", "桃花坪村", "河口街道办事处"],
    description="受冷暖空气共同影响，过去3小时青溪镇、白云镇已出现50毫米以上降水，预计未来3小时上述地区降雨将持续，"
                "累计雨量可达100毫米以上，山洪、滑坡、泥石流及城乡内涝风险极高。",
    instruction="政府及相关部门按照职责做好防暴雨应急和抢险工作；停止集会、停课、停业（除特殊行业外）；"
                "做好山洪、滑坡、泥石流等灾害的防御和抢险工作。",
    sent=SENT, official="欧阳建国", subject_official="司马卫东", ack_code="4821", drill=True, link=LINK, step=2,
)
LONG_EN = replace(
    LONG_ZH,
    headline="Qingxi County Meteorological Observatory issued a red rainstorm warning at 11:10 on 16 July: more "
             "than 100 mm of rain is expected within 3 hours, with lightning and gusts of force 8 or above",
    areas=["Qingxi Town", "Baiyun Town", "Shimen Township", "Longtan Town", "Taohuaping Village",
           "Hekou Subdistrict"],
    description="Over the past 3 hours more than 50 mm of rain fell in Qingxi and Baiyun; the risk of flash "
                "floods, landslides, debris flows and urban waterlogging is very high.",
    instruction="Government departments carry out rainstorm emergency and rescue work; stop gatherings, classes "
                "and business (except special industries); guard against flash floods and landslides.",
    official="Zhang Jianguo", subject_official="Li Weidong",
)
CONTEXTS = {"zh": LONG_ZH, "en": LONG_EN}
DRILL = {"zh": "【演练】", "en": "[DRILL]"}
# A cancel notice and a missed roll-call told to a duty leader ask for no answer.
ASKS_FOR_CONFIRMATION = [p for p in Purpose if p is not Purpose.CANCEL and p not in TELLING | QUESTIONING]
QUESTIONS = ("是否收到预警", "是否知晓危险区范围", "是否已巡查隐患点")


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("purpose", sorted(QUESTIONING))
def test_a_spot_check_sms_lists_every_question_and_how_to_answer_them_in_one_reply(purpose: Purpose,
                                                                                   lang: str) -> None:
    text = render(Channel.SMS, purpose, lang, replace(CONTEXTS[lang], questions=QUESTIONS)).text
    assert "1.是否收到预警？2.是否知晓危险区范围？3.是否已巡查隐患点？" in text
    assert ("“1 1 1”" if lang == "zh" else '"1 1 1"') in text and "4821" not in text  # answers, not the code


def test_a_spot_check_call_reads_the_questions_unless_it_asks_them_one_by_one() -> None:
    context = replace(LONG_ZH, questions=QUESTIONS)
    read = render(Channel.VOICE, Purpose.SPOTCHECK, "zh", context).text
    assert "共3个问题" in read and "3.是否已巡查隐患点？" in read and "http" not in read
    each = render(Channel.VOICE, Purpose.SPOTCHECK, "zh", replace(context, ask_each=True)).text
    assert "请逐题按键作答" in each and "是否收到预警" not in each  # the call asks them itself


@pytest.mark.parametrize("channel", [Channel.IM, Channel.EMAIL])
def test_a_spot_check_by_im_or_email_links_to_the_questionnaire(channel: Channel) -> None:
    text = render(channel, Purpose.SPOTCHECK, "zh", replace(LONG_ZH, questions=QUESTIONS)).text
    assert f"请点击链接逐项作答: {LINK}" in text and "2.是否知晓危险区范围？" in text


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("channel", list(Channel))
def test_every_template_renders_a_drill_labelled_message(channel: Channel, purpose: Purpose, lang: str) -> None:
    rendered = render(channel, purpose, lang, CONTEXTS[lang])

    assert rendered.subject.startswith(DRILL[lang])
    assert rendered.text.startswith(DRILL[lang]) or rendered.text.startswith(f"### {DRILL[lang]}")
    assert CONTEXTS[lang].official in rendered.text
    assert "None" not in rendered.text


@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_real_warning_carries_no_drill_label(channel: Channel, purpose: Purpose) -> None:
    rendered = render(channel, purpose, "zh", replace(LONG_ZH, drill=False))

    assert "演练" not in rendered.text and "演练" not in rendered.subject


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("purpose", list(Purpose))
def test_sms_fits_in_three_segments_with_a_long_headline_and_six_areas(purpose: Purpose, lang: str) -> None:
    text = render(Channel.SMS, purpose, lang, CONTEXTS[lang]).text

    assert sms_segments(text) <= 3, (len(text), text)
    assert "\n" not in text


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("purpose", ASKS_FOR_CONFIRMATION)
def test_sms_carries_the_code_to_confirm_with(purpose: Purpose, lang: str) -> None:
    assert "4821" in render(Channel.SMS, purpose, lang, CONTEXTS[lang]).text


def test_sms_alert_names_colour_hazard_areas_and_how_to_confirm() -> None:
    context = MessageContext(
        headline="青溪县气象台发布暴雨红色预警信号", hazard=Hazard.RAINSTORM, level=Level.RED,
        areas=["青溪镇", "白云镇"], description="预计未来3小时降雨量将达100毫米以上。",
        instruction="立即转移山洪危险区群众。", sent=SENT, official="张建国", ack_code="4821",
    )

    rendered = render(Channel.SMS, Purpose.ALERT, "zh", context)

    assert rendered.text == ("【暴雨红色预警】张建国同志：青溪县气象台发布暴雨红色预警信号（7月16日11:10发布）。"
                             "影响青溪镇、白云镇。立即转移山洪危险区群众。回复1或回复确认码4821确认收到。")
    assert rendered.subject == "暴雨红色预警"


def test_many_areas_are_summarised_with_their_count() -> None:
    text = render(Channel.SMS, Purpose.ALERT, "zh", LONG_ZH).text

    assert "青溪镇、白云镇、石门乡、龙潭镇等6地" in text


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("purpose", list(Purpose))
def test_voice_text_can_be_spoken(purpose: Purpose, lang: str) -> None:
    context = replace(CONTEXTS[lang], instruction="详见 https://qx.example.cn/yj 立即转移群众")

    text = render(Channel.VOICE, purpose, lang, context).text

    assert LINK not in text and "http" not in text and "example.cn" not in text
    assert "4821" not in text
    assert "\n" not in text


@pytest.mark.parametrize("purpose", ASKS_FOR_CONFIRMATION)
def test_voice_asks_to_press_one(purpose: Purpose) -> None:
    assert "按1确认" in render(Channel.VOICE, purpose, "zh", LONG_ZH).text


@pytest.mark.parametrize("channel", [Channel.IM, Channel.EMAIL])
@pytest.mark.parametrize("purpose", ASKS_FOR_CONFIRMATION)
def test_im_and_email_carry_the_confirmation_link(channel: Channel, purpose: Purpose) -> None:
    rendered = render(channel, purpose, "zh", LONG_ZH)

    assert f"点击确认: {LINK}" in rendered.text
    assert LONG_ZH.description in rendered.text


def test_without_a_link_im_falls_back_to_the_code() -> None:
    text = render(Channel.IM, Purpose.ALERT, "zh", replace(LONG_ZH, link=None)).text

    assert "确认码：4821" in text and "点击确认" not in text


def test_escalations_name_the_official_who_has_not_answered() -> None:
    for purpose in (Purpose.TO_DEPUTY, Purpose.TO_SUPERIOR, Purpose.TO_DUTY, Purpose.UNREACHED):
        text = render(Channel.SMS, purpose, "zh", LONG_ZH).text
        assert text.count("司马卫东") == 1 and "欧阳建国同志" in text


def test_time_is_shown_in_beijing_time() -> None:
    assert "7月16日11:10" in render(Channel.SMS, Purpose.ALERT, "zh", LONG_ZH).text
    assert "7月16日11时10分" in render(Channel.VOICE, Purpose.ALERT, "zh", LONG_ZH).text
    assert "16 Jul 11:10" in render(Channel.SMS, Purpose.ALERT, "en", LONG_EN).text


def test_a_missing_language_falls_back_to_chinese() -> None:
    assert render(Channel.SMS, Purpose.ALERT, "fr", LONG_ZH) == render(Channel.SMS, Purpose.ALERT, "zh", LONG_ZH)


def test_english_sms_stays_in_the_gsm_alphabet() -> None:
    text = render(Channel.SMS, Purpose.ALERT, "en", LONG_EN).text

    assert sms_segments(text) == -(-(len(text) + text.count("[") + text.count("]")) // 153)


@pytest.mark.parametrize(("text", "segments"), [
    ("", 1),
    ("预" * 70, 1),
    ("预" * 71, 2),
    ("预" * 134, 2),
    ("预" * 135, 3),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("[" * 80, 1),  # extension characters cost two septets
    ("[" * 81, 2),
    ("a" * 69 + "é", 1),  # é is in the GSM alphabet
    ("a" * 70 + "ł", 2),  # ł is not: the whole message becomes UCS-2
    ("😀" * 35, 1),  # outside the BMP: two units each
    ("😀" * 36, 2),
])
def test_sms_segments_count_as_carriers_do(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


PEOPLE = [("欧阳建国", "司马卫东", "4821"), ("王芳", "王芳", "0007"), ("Zhang Jianguo", "Li Weidong", "9313"),
          ("阿卜杜拉·买买提", "张三", "1200"), ("Anne-Marie  O'Neil", "x", "5555"), ("多行\n名字", "李四", "1")]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("channel", list(Channel))
def test_a_fan_out_renders_each_person_exactly_as_if_alone(channel: Channel, purpose: Purpose, lang: str) -> None:
    """Messages of one warning share a rendering with the name, code and link put in per person;
    each must be exactly what rendering for that person alone gives — also for odd names (double
    spaces, a newline) that the filters would change, and with and without a link."""
    from dispatcher.rendering import _render

    for official, subject, code in PEOPLE:
        for link in (f"{LINK}{code}", None):
            person = replace(CONTEXTS[lang], official=official, subject_official=subject, ack_code=code, link=link)
            assert render(channel, purpose, lang, person) == _render(channel, purpose, lang, person), \
                (official, link)


def test_a_fan_out_renders_each_kind_of_message_once_not_once_per_person() -> None:
    """The sharing is in effect for every template (a template that transformed a personal value
    would silently fall back to rendering per person, costing ~35 us a message in a fan-out)."""
    from dispatcher import rendering

    rendering._SHARED.clear()
    for lang in ("zh", "en"):
        for channel in Channel:
            for purpose in Purpose:
                for official, code in (("王芳", "0007"), ("Zhang Jianguo", "9313")):
                    render(channel, purpose, lang, replace(CONTEXTS[lang], official=official, subject_official="",
                                                           ack_code=code, link=f"{LINK}{code}"))
    assert len(rendering._SHARED) == 2 * len(Channel) * len(Purpose)
    not_shared = [key[:3] for key, shared in rendering._SHARED.items() if shared is rendering._NOT_SHARED]
    assert not_shared == []


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("purpose", [p for p in Purpose if p not in QUESTIONING])
@pytest.mark.parametrize("channel", list(Channel))
def test_a_warning_without_an_instruction_still_says_what_to_do(channel: Channel, purpose: Purpose,
                                                                 lang: str) -> None:
    """Bad input: a CAP warning may leave <instruction> out. The message must not read "落实：。" or
    "…。。": it asks for the plan's measures instead."""
    rendered = render(channel, purpose, lang, replace(CONTEXTS[lang], instruction="  \n", headline="Test",
                                                               areas=["A"]))

    for empty in ("。。", "：。", "：，", ": .", "..", ": ,"):
        assert empty not in rendered.text, (empty, rendered.text)
    if purpose in (Purpose.ALERT, Purpose.TO_DEPUTY, Purpose.TO_SUPERIOR) and channel in (Channel.SMS, Channel.VOICE):
        assert {"zh": "按预案落实防御措施", "en": "Take the measures your plan sets out"}[lang] in rendered.text


@pytest.mark.parametrize("purpose", list(Purpose))
def test_english_voice_text_keeps_a_space_between_its_sentences(purpose: Purpose) -> None:
    """The spoken English ran the greeting, the message and the ask together ("Zhang,This is …
    minutes.If you are …"): a text-to-speech engine reads that as one word."""
    text = render(Channel.VOICE, purpose, "en", replace(LONG_EN, drill=False)).text

    assert not re.search(r"[,.?!][A-Za-z]", text), text


def test_a_call_to_a_duty_rooms_own_phone_greets_the_room_not_the_person_on_shift() -> None:
    """Roll-calls with ``call: duty_phone`` ring the room's landline: whoever picks up is greeted."""
    room = replace(LONG_ZH, hazard=None, drill=False, room="龙潭镇值班室")

    zh = render(Channel.VOICE, Purpose.ROLLCALL, "zh", room).text
    en = render(Channel.VOICE, Purpose.ROLLCALL, "en", replace(room, room="Longtan duty room")).text
    assert zh.startswith("龙潭镇值班室，您好，") and LONG_ZH.official not in zh
    assert en.startswith("Longtan duty room, ") and LONG_ZH.official not in en
