"""The provider template file (JIAOYING_CARRIER_TEMPLATES): the sample loads, each bad input is
refused naming the file and the entry, values are cut to the provider's limit, drills use the drill
entry; and the texts `jiaoying carriers templates` generates say what our own templates say."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.channels.carrier_templates import (
    DEFAULT_MAX_VARIABLE,
    PROVIDERS,
    CarrierTemplate,
    CarrierTemplateError,
    carrier_templates,
    load_carrier_templates,
)
from dispatcher.cli_carriers import SAMPLE_QUESTIONS, Generated, generate, generate_all, purposes
from dispatcher.domain.callouts import Purpose
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Hazard, Level
from dispatcher.rendering import TEMPLATE_VARIABLES, MessageContext, render, template_variables
from tests.conftest import ROOT

SAMPLE = ROOT / "templates" / "carriers.sample.yaml"
CARRIER_CHANNELS = [Channel.SMS, Channel.VOICE]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "carriers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def one(provider: str = "tencent", limit: str = "", variables: str = "[title, official, headline, ack_code]") -> str:
    head = f"{provider}:\n" + (f"  max_variable_length: {limit}\n" if limit else "")
    return head + f'  sms:\n    alert: {{code: "1000001", variables: {variables}}}\n'


# -- the sample ----------------------------------------------------------------------------------

def test_the_sample_file_loads_with_every_purpose_for_both_providers_and_channels() -> None:
    templates = load_carrier_templates(SAMPLE)

    assert len(templates.entries) == len(PROVIDERS) * len(CARRIER_CHANNELS) * len(purposes())
    for provider in PROVIDERS:
        for channel in CARRIER_CHANNELS:
            assert templates.missing(provider, channel, list(Purpose)) == []
            assert templates.get(provider, channel, Purpose.ALERT, drill=True).purpose == "drill"
    alert = templates.get("aliyun", Channel.SMS, Purpose.ALERT)
    assert alert.code == "SMS_000001" and alert.max_length == DEFAULT_MAX_VARIABLE["aliyun"] == 35
    assert templates.get("aliyun", Channel.VOICE, Purpose.CANCEL).code.startswith("TTS_")
    assert templates.get("tencent", Channel.SMS, Purpose.ALERT).code == "1000001"  # quoted: stays a string
    assert templates.get("tencent", Channel.VOICE, Purpose.ALERT).max_length == 12


def test_the_sample_agrees_with_the_generated_templates() -> None:
    # The county pastes `jiaoying carriers templates` into the file: the sample must carry the same
    # variables in the same order (for Tencent the order is the meaning of {1}, {2} …).
    templates = load_carrier_templates(SAMPLE)
    for generated in generate_all(CARRIER_CHANNELS):
        for provider in PROVIDERS:
            entry = templates.entries[(provider, generated.channel, generated.purpose)]
            assert entry.variables == generated.variables, (provider, generated.channel, generated.purpose)


def test_the_sample_codes_are_obviously_fake() -> None:
    for entry in load_carrier_templates(SAMPLE).entries.values():
        assert re.fullmatch(r"(SMS|TTS)_0000\d\d|1000[01]\d\d", entry.code), entry.code


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "where", "says"), [
    # bad input: a provider we do not have
    ("huawei:\n  sms: {}\n", "", "unknown provider 'huawei'; accepted: aliyun, tencent"),
    # bad input: a channel the providers do not carry
    ("aliyun:\n  fax:\n    alert: {code: SMS_1}\n", "aliyun:", "unknown channel 'fax'; accepted: sms, voice"),
    # bad input: a purpose that does not exist (a typo of alert)
    ("aliyun:\n  sms:\n    alret: {code: SMS_1}\n", "aliyun.sms.alret:", "unknown purpose; accepted: alert"),
    # bad input: an entry without a code
    ("aliyun:\n  sms:\n    alert: {variables: [official]}\n", "aliyun.sms.alert:", "needs a code"),
    # bad input: a code of spaces
    ("aliyun:\n  sms:\n    alert: {code: '  '}\n", "aliyun.sms.alert:", "needs a code"),
    # bad input: an entry that is a bare code, not a mapping
    ("aliyun:\n  sms:\n    alert: SMS_1\n", "aliyun.sms.alert:", "needs a code"),
    # bad input: a variable that is not in TEMPLATE_VARIABLES
    ("aliyun:\n  sms:\n    alert: {code: SMS_1, variables: [official, county]}\n", "aliyun.sms.alert.variables:",
     "unknown variable 'county'; accepted: official"),
    # bad input: the confirm link as a variable
    ("aliyun:\n  sms:\n    alert: {code: SMS_1, variables: [official, link]}\n", "aliyun.sms.alert.variables:",
     "'link' cannot be a template variable"),
    # bad input: a variable named twice
    ("tencent:\n  sms:\n    cancel: {code: '1', variables: [title, official, title]}\n",
     "tencent.sms.cancel.variables:", "a variable is named twice"),
    # bad input: variables as a comma-separated string instead of a list
    ("aliyun:\n  voice:\n    alert: {code: TTS_1, variables: 'official, title'}\n", "aliyun.voice.alert.variables:",
     "a list of names"),
    # bad input: a per-variable limit too small to hold anything
    ("tencent:\n  max_variable_length: 3\n", "tencent.max_variable_length:", "a whole number of at least 4"),
    # bad input: a per-variable limit in words
    ("tencent:\n  max_variable_length: twelve\n", "tencent.max_variable_length:", "got 'twelve'"),
    # bad input: a per-variable limit of yes
    ("tencent:\n  max_variable_length: true\n", "tencent.max_variable_length:", "got True"),
    # bad input: not YAML at all (an unclosed list)
    ("aliyun:\n  sms:\n    alert: {code: SMS_1, variables: [official\n", "", "not valid YAML"),
    # bad input: a list at the top instead of providers
    ("- aliyun\n- tencent\n", "", "expected a mapping of providers (aliyun, tencent)"),
    # bad input: a provider holding a list
    ("aliyun: [sms, voice]\n", "aliyun:", "expected a mapping of channels"),
    # bad input: a channel holding a list of purposes
    ("aliyun:\n  sms: [alert]\n", "aliyun.sms:", "expected a mapping of purposes"),
])
def test_a_bad_template_file_is_refused_naming_the_file_and_the_entry(tmp_path: Path, text: str, where: str,
                                                                      says: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(CarrierTemplateError) as caught:
        load_carrier_templates(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: {where}")
    assert says in message


def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    # bad input: JIAOYING_CARRIER_TEMPLATES names a file that is not there
    with pytest.raises(CarrierTemplateError, match=r"nowhere\.yaml: cannot read: No such file"):
        load_carrier_templates(tmp_path / "nowhere.yaml")
    # bad input: … or a directory
    with pytest.raises(CarrierTemplateError, match=f"{re.escape(str(tmp_path))}: cannot read: Is a directory"):
        load_carrier_templates(tmp_path)


def test_an_empty_file_has_no_templates(tmp_path: Path) -> None:
    templates = load_carrier_templates(write(tmp_path, "# nothing approved yet\n"))

    assert not templates
    assert templates.get("aliyun", Channel.SMS, Purpose.ALERT) is None
    assert not carrier_templates("")  # JIAOYING_CARRIER_TEMPLATES unset


# -- values: cut to the provider's limit, never the code -----------------------------------------

LONG_HEADLINE = "青溪县气象台2026年7月16日11时10分发布暴雨红色预警信号：预计未来3小时内将出现100毫米以上强降水"
VALUES = {"title": "暴雨红色预警", "official": "王建国", "headline": LONG_HEADLINE, "ack_code": "4821"}


def test_a_long_headline_is_cut_with_an_ellipsis_to_the_providers_limit(tmp_path: Path) -> None:
    entry = load_carrier_templates(write(tmp_path, one())).get("tencent", Channel.SMS, Purpose.ALERT)

    values = dict(entry.values(VALUES))

    assert values["headline"] == "青溪县气象台2026年…" and len(values["headline"]) == 12
    assert values["title"] == "暴雨红色预警" and values["official"] == "王建国"  # short values as they are
    assert [name for name, _ in entry.values(VALUES)] == ["title", "official", "headline", "ack_code"]


def test_the_acknowledgement_code_is_never_cut(tmp_path: Path) -> None:
    entry = load_carrier_templates(write(tmp_path, one(limit="4"))).get("tencent", Channel.SMS, Purpose.ALERT)

    values = dict(entry.values({**VALUES, "ack_code": "482193"}))

    assert values["ack_code"] == "482193"  # longer than the limit of 4, sent whole
    assert values["headline"] == "青溪县…" and values["title"] == "暴雨红…"


def test_an_account_without_a_limit_sends_the_whole_headline(tmp_path: Path) -> None:
    entry = load_carrier_templates(write(tmp_path, one(limit="null"))).get("tencent", Channel.SMS, Purpose.ALERT)

    assert dict(entry.values(VALUES))["headline"] == LONG_HEADLINE


def test_values_are_one_line_and_a_missing_value_is_empty() -> None:
    entry = CarrierTemplate("aliyun", Channel.SMS, "alert", "SMS_1", ("headline", "areas"), 35)

    assert entry.values({"headline": "暴雨\n红色  预警"}) == [("headline", "暴雨 红色 预警"), ("areas", "")]


# -- drills and missing purposes -----------------------------------------------------------------

def test_a_drill_uses_the_drill_entry_when_there_is_one(tmp_path: Path) -> None:
    path = write(tmp_path, "aliyun:\n  sms:\n"
                           "    alert: {code: SMS_000001, variables: [official]}\n"
                           "    reminder: {code: SMS_000002, variables: [official]}\n"
                           "    drill: {code: SMS_000009, variables: [official]}\n"
                           "  voice:\n"
                           "    alert: {code: TTS_000001, variables: [official]}\n"
                           "    reminder: {code: TTS_000002, variables: [drill_prefix, official]}\n")
    templates = load_carrier_templates(path)

    assert templates.get("aliyun", Channel.SMS, Purpose.ALERT, drill=True).code == "SMS_000009"
    assert templates.get("aliyun", Channel.SMS, Purpose.REMINDER, drill=True).code == "SMS_000009"
    assert templates.get("aliyun", Channel.SMS, Purpose.ALERT).code == "SMS_000001"  # a real warning
    # no drill entry on voice: the purpose's own template only when it carries the 演练 label
    # (drill_prefix); otherwise none, and the adapter refuses that message — never sent unlabelled
    assert templates.get("aliyun", Channel.VOICE, Purpose.REMINDER, drill=True).code == "TTS_000002"
    assert templates.get("aliyun", Channel.VOICE, Purpose.ALERT, drill=True) is None
    assert templates.get("aliyun", Channel.VOICE, Purpose.ALERT).code == "TTS_000001"
    assert templates.get("tencent", Channel.SMS, Purpose.ALERT, drill=True) is None


def test_missing_lists_the_purposes_without_a_template(tmp_path: Path) -> None:
    path = write(tmp_path, "aliyun:\n  sms:\n"
                           "    alert: {code: SMS_000001, variables: [official]}\n"
                           "    cancel: {code: SMS_000008, variables: [official]}\n"
                           "    drill: {code: SMS_000009, variables: [official]}\n")
    templates = load_carrier_templates(path)

    assert templates.missing("aliyun", Channel.SMS, list(Purpose)) == [
        Purpose.REMINDER, Purpose.TO_DEPUTY, Purpose.TO_SUPERIOR, Purpose.TO_DUTY, Purpose.UNREACHED, Purpose.UPDATE,
        Purpose.ROLLCALL, Purpose.ROLLCALL_MISSED, Purpose.SPOTCHECK, Purpose.SPOTCHECK_AGAIN]
    assert templates.missing("aliyun", Channel.SMS, [Purpose.ALERT, Purpose.CANCEL]) == []
    assert templates.missing("aliyun", Channel.VOICE, [Purpose.ALERT]) == [Purpose.ALERT]


# -- the generated texts say what our own templates say -------------------------------------------

CONTEXT = MessageContext(
    headline="青溪县气象台发布暴雨红色预警信号", hazard=Hazard.RAINSTORM, level=Level.RED, areas=["青溪镇", "白云镇"],
    description="预计未来3小时降雨量将达100毫米以上", instruction="立即转移山洪危险区群众",
    sent=datetime(2026, 7, 16, 3, 10, tzinfo=UTC), official="王建国", subject_official="李明", ack_code="4821",
    questions=SAMPLE_QUESTIONS)  # a spot-check's: the generated text carries the sample's questions as fixed words


def ours(channel: Channel, purpose: str) -> str:
    """Our own message, as the provider's reviewers accept it: 【】 become （）; and the SMS cancel
    names the title once (a variable may appear once in a provider template)."""
    drill = purpose == "drill"
    text = render(channel, Purpose.ALERT if drill else Purpose(purpose), "zh", replace(CONTEXT, drill=drill)).text
    text = text.replace("【", "（").replace("】", "）")
    if (channel, purpose) == (Channel.SMS, "cancel"):
        text = text.replace("的暴雨红色预警已解除", "的预警已解除")
    return text


@pytest.mark.parametrize("purpose", purposes())
@pytest.mark.parametrize("channel", CARRIER_CHANNELS)
def test_the_generated_template_filled_in_is_our_own_message(channel: Channel, purpose: str) -> None:
    generated = generate(channel, purpose)

    assert generated.filled(template_variables("zh", CONTEXT)) == ours(channel, purpose)


@pytest.mark.parametrize("purpose", purposes())
@pytest.mark.parametrize("channel", CARRIER_CHANNELS)
def test_the_generated_template_is_one_the_providers_accept(channel: Channel, purpose: str) -> None:
    generated = generate(channel, purpose)
    aliyun, tencent = generated.text("aliyun"), generated.text("tencent")

    assert set(generated.variables) <= set(TEMPLATE_VARIABLES) - {"link", "drill_prefix", "step"}
    for name in generated.variables:
        assert aliyun.count("${" + name + "}") == 1  # each variable once
    assert re.findall(r"\{(\d+)\}", tencent) == [str(n) for n in range(1, len(generated.variables) + 1)]
    assert "【" not in aliyun and "】" not in aliyun  # reserved for the signature
    assert "http" not in aliyun and "www." not in aliyun
    assert not re.search(r"\}\$\{", aliyun), aliyun  # no two variables side by side
    assert len(aliyun) <= 500


def test_the_drill_template_is_the_alert_labelled_as_a_drill() -> None:
    for channel in CARRIER_CHANNELS:
        drill, alert = generate(channel, "drill"), generate(channel, "alert")
        assert drill.text("aliyun") == "（演练）" + alert.text("aliyun")
        assert drill.variables == alert.variables


def test_the_texts_in_the_documentation_are_the_generated_ones() -> None:
    doc = (ROOT / "docs" / "channels-carriers.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (sms|voice) \| (.+) \|$", doc, re.MULTILINE)

    assert {(purpose, channel): text for purpose, channel, text in rows} == {
        (g.purpose, g.channel.value): g.text("aliyun") for g in generate_all(CARRIER_CHANNELS)}


def test_a_template_that_writes_a_warning_value_as_fixed_text_is_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    # bad input: someone edits our template to write the hazard object rather than a variable: the
    # approved text would then say 暴雨 for every warning, so the generator refuses it
    from jinja2 import Environment

    from dispatcher import rendering

    broken = Environment().from_string("{{ official }}同志：{{ hazard.zh }}预警。")
    monkeypatch.setattr(rendering, "_template", lambda stem, lang: (broken, "zh"))

    with pytest.raises(RuntimeError, match="per-warning value that is not a provider template variable"):
        generate(Channel.SMS, "alert")


def test_the_provider_syntax_of_a_generated_template() -> None:
    parts = ("（", "title", "）", "official", "同志：请回复", "ack_code", "。")
    generated = Generated(Channel.SMS, "alert", "-", parts, ("title", "official", "ack_code"))

    assert generated.text("aliyun") == "（${title}）${official}同志：请回复${ack_code}。"
    assert generated.text("tencent") == "（{1}）{2}同志：请回复{3}。"
