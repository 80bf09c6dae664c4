"""`jiaoying carriers`, run as a county runs it (a subprocess with a clean environment): the
template texts to apply for, the callback URLs to register, and the check of the template file."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

SAMPLE = ROOT / "templates" / "carriers.sample.yaml"
GOOD_SECRET = "carriers-secret-" + "k" * 32
PUBLIC = "https://jy.example.gov.cn"
PURPOSES = ["alert", "reminder", "to_deputy", "to_superior", "to_duty", "unreached", "update", "cancel", "rollcall",
            "rollcall_missed", "spotcheck", "spotcheck_again", "drill"]


def jiaoying(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    env.setdefault("JIAOYING_DATABASE_URL", f"sqlite:///{cwd / 'jy.db'}")
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], cwd=cwd, env=clean | env,
                          capture_output=True, text=True, timeout=60)


def sections(stdout: str) -> dict[tuple[str, str], str]:
    """(purpose, channel) -> the template text printed under it."""
    found = re.findall(r"^== (\w+) .*? (sms|voice) \(.*\n模板内容 / template text:\n  (.*)$", stdout, re.MULTILINE)
    return {(purpose, channel): text for purpose, channel, text in found}


def fixed_words(channel: str, purpose: str) -> list[str]:
    """The literal text of our Jinja template (not its subject), as the providers accept it."""
    source = (ROOT / "templates" / channel / f"{purpose}.zh.j2").read_text(encoding="utf-8")
    source = re.sub(r"{% set subject %}.*?{% endset %}|{% block subject %}.*?{% endblock %}|{#.*?#}", "", source,
                    flags=re.DOTALL)
    # a spot-check call asked one question at a time (Twilio) says other words; a provider's never does
    source = re.sub(r"{% if ask_each %}.*?{% else %}", "", source, flags=re.DOTALL)
    pieces = re.split(r"{{.*?}}|{%.*?%}", source, flags=re.DOTALL)
    words = [line.strip() for piece in pieces for line in piece.splitlines()]
    return [w.replace("【", "（").replace("】", "）") for w in words if w]


# -- templates -----------------------------------------------------------------------------------

def test_aliyun_templates_are_our_wording_with_named_variables(tmp_path: Path) -> None:
    r = jiaoying("carriers", "templates", "--provider", "aliyun", cwd=tmp_path)

    assert r.returncode == 0, r.stderr
    texts = sections(r.stdout)
    assert set(texts) == {(p, c) for p in PURPOSES for c in ("sms", "voice")}
    assert texts[("alert", "sms")] == ("（${title}）${official}同志：${headline}（${sent_text}发布）。影响${areas}。"
                                       "${instruction}。回复1或回复确认码${ack_code}确认收到。")
    assert texts[("alert", "voice")] == ("${official}同志，${sent_spoken}发布${title}。${headline}。"
                                         "影响区域：${areas}。${instruction}。收到请按1确认。")
    assert texts[("drill", "sms")] == "（演练）" + texts[("alert", "sms")]
    for (purpose, channel), text in texts.items():
        for word in fixed_words(channel, "alert" if purpose == "drill" else purpose):
            assert word in text, (purpose, channel, word)
        assert "【" not in text and "{{" not in text and "\ue000" not in text
    assert "每个变量最多 35 字" in r.stdout and "${name}" in r.stdout
    assert ("alert: {code: SMS_待审批, variables: [title, official, headline, sent_text, areas, instruction, "
            "ack_code]}") in r.stdout
    assert ("alert: {code: TTS_待审批, variables: [official, sent_spoken, title, headline, areas, "
            "instruction]}") in r.stdout


def test_tencent_templates_number_the_variables_in_order(tmp_path: Path) -> None:
    r = jiaoying("carriers", "templates", "--provider", "tencent", "--channel", "sms", cwd=tmp_path)

    assert r.returncode == 0, r.stderr
    texts = sections(r.stdout)
    assert set(texts) == {(p, "sms") for p in PURPOSES}  # --channel sms: no voice templates
    assert texts[("alert", "sms")] == "（{1}）{2}同志：{3}（{4}发布）。影响{5}。{6}。回复1或回复确认码{7}确认收到。"
    assert texts[("cancel", "sms")] == ("（{1}·解除）{2}同志：{3}（{4}发布）。{5}的预警已解除，"
                                        "请做好善后工作。无需回复。")
    for (purpose, channel), text in texts.items():
        for word in fixed_words(channel, "alert" if purpose == "drill" else purpose):
            assert word in text, (purpose, word)
        assert "$" not in text
    assert "{1} title:" in r.stdout and "{7} ack_code:" in r.stdout
    assert "每个变量最多 12 字" in r.stdout
    assert 'alert: {code: "待审批", variables: [title, official, headline, sent_text, areas, instruction, ack_code]}' \
        in r.stdout
    # the example shows what a long headline becomes at 12 characters
    assert "青溪县气象台发布暴雨红…" in r.stdout


def test_the_printed_file_block_loads_and_check_waits_for_the_approved_codes(tmp_path: Path) -> None:
    r = jiaoying("carriers", "templates", "--provider", "aliyun", cwd=tmp_path)
    block = r.stdout[r.stdout.index("\naliyun:\n") + 1:]
    pasted = tmp_path / "carriers.yaml"
    pasted.write_text(block, encoding="utf-8")

    waiting = jiaoying("carriers", "check", "--file", str(pasted), cwd=tmp_path)

    assert waiting.returncode == 1
    assert "aliyun.sms.alert" in waiting.stderr and "no approved code yet" in waiting.stderr
    numbers = iter(range(1, 100))
    pasted.write_text(re.sub("待审批", lambda _: f"{next(numbers):06d}", block), encoding="utf-8")
    approved = jiaoying("carriers", "check", "--file", str(pasted), cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.count("缺少 / missing: 无 / none") == 2


def test_an_unknown_provider_is_refused(tmp_path: Path) -> None:
    # bad input: --provider huawei
    r = jiaoying("carriers", "templates", "--provider", "huawei", cwd=tmp_path)

    assert r.returncode == 1
    assert "unknown provider 'huawei'; accepted: aliyun, tencent" in r.stderr
    assert "Traceback" not in r.stderr


# -- callbacks -----------------------------------------------------------------------------------

def test_callbacks_prints_the_eight_urls_under_the_public_url(tmp_path: Path) -> None:
    r = jiaoying("carriers", "callbacks", cwd=tmp_path, JIAOYING_SECRET_KEY=GOOD_SECRET, JIAOYING_PUBLIC_URL=PUBLIC)

    assert r.returncode == 0, r.stderr
    urls = re.findall(r"^  (https://\S+)$", r.stdout, re.MULTILINE)
    assert len(urls) == 8
    token = hmac.new(GOOD_SECRET.encode(), b"jiaoying carrier callbacks v1", hashlib.sha256).hexdigest()[:40]
    paths = {"aliyun": ["sms-report", "sms-up", "voice-report", "voice-keypress"],
             "tencent": ["sms-status", "sms-reply", "voice-status", "voice-keypress"]}
    assert urls == [f"{PUBLIC}/webhooks/{p}/{token}/{path}" for p in ("aliyun", "tencent") for path in paths[p]]
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    assert "HTTP批量推送" in r.stdout and "SmsReport" in r.stdout and "回调配置" in r.stdout


def test_callbacks_for_one_provider(tmp_path: Path) -> None:
    r = jiaoying("carriers", "callbacks", "--provider", "tencent", cwd=tmp_path,
                 JIAOYING_SECRET_KEY=GOOD_SECRET, JIAOYING_PUBLIC_URL=PUBLIC + "/")

    assert r.returncode == 0, r.stderr
    urls = re.findall(r"^  (https://\S+)$", r.stdout, re.MULTILINE)
    assert len(urls) == 4 and all(u.startswith(f"{PUBLIC}/webhooks/tencent/") for u in urls)
    assert "aliyun" not in r.stdout


@pytest.mark.parametrize(("env", "says"), [
    ({"JIAOYING_SECRET_KEY": "dev-insecure-secret"}, "public development secret"),  # bad input: the dev secret
    ({}, "no secret key is configured"),                                             # bad input: no secret at all
    ({"JIAOYING_SECRET_KEY": "short"}, "shorter than"),                               # bad input: a short secret
])
def test_callbacks_refuses_an_unsafe_secret(tmp_path: Path, env: dict[str, str], says: str) -> None:
    r = jiaoying("carriers", "callbacks", cwd=tmp_path, JIAOYING_PUBLIC_URL=PUBLIC, **env)

    assert r.returncode == 1
    message = " ".join(r.stderr.split())
    assert "refusing to print the callback URLs" in message and says in message
    assert "/webhooks/" not in r.stdout and "Traceback" not in r.stderr


def test_callbacks_warns_that_a_loopback_public_url_cannot_be_reached(tmp_path: Path) -> None:
    r = jiaoying("carriers", "callbacks", cwd=tmp_path, JIAOYING_SECRET_KEY=GOOD_SECRET)

    assert r.returncode == 0, r.stderr
    assert "the providers cannot reach this address" in " ".join(r.stderr.split())


# -- check ---------------------------------------------------------------------------------------

def test_check_passes_on_the_sample(tmp_path: Path) -> None:
    r = jiaoying("carriers", "check", "--file", str(SAMPLE), cwd=tmp_path)

    assert r.returncode == 0, r.stderr
    assert f"{SAMPLE}: 有效 / valid — 52 templates" in r.stdout
    assert r.stdout.count("缺少 / missing: 无 / none") == 4
    assert "(at most 12 characters a variable)" in r.stdout and "(at most 35 characters a variable)" in r.stdout
    assert "注意" not in r.stdout


def test_check_reads_the_configured_file_and_lists_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "carriers.yaml"
    path.write_text("tencent:\n  max_variable_length: null\n  sms:\n"
                    "    alert: {code: '1000001', variables: [title, official, headline, sent_text, areas, "
                    "instruction, ack_code]}\n"
                    "    cancel: {code: '1000008', variables: [official, title]}\n", encoding="utf-8")

    r = jiaoying("carriers", "check", cwd=tmp_path, JIAOYING_CARRIER_TEMPLATES=str(path))

    assert r.returncode == 0, r.stderr
    assert "腾讯云 tencent · 短信 sms (no per-variable limit)" in r.stdout
    assert "已有 / covered: alert, cancel" in r.stdout
    assert "缺少 / missing: reminder, to_deputy, to_superior, to_duty, unreached, update" in r.stdout
    assert "no drill entry: drill messages go only by templates with drill_prefix; the others are not sent " \
           "(never without the 演练 label)" in r.stdout
    assert "cancel: 变量与生成的模板不同 / variables differ from the generated template" in r.stdout
    assert "voice" not in r.stdout


@pytest.mark.parametrize(("text", "says"), [
    # bad input: an unknown variable in one entry
    ("aliyun:\n  sms:\n    alert: {code: SMS_000001, variables: [official, county]}\n",
     "aliyun.sms.alert.variables: unknown variable 'county'"),
    # bad input: not YAML (an unclosed list)
    ("aliyun:\n  sms:\n    alert: {code: SMS_000001, variables: [official\n", "not valid YAML"),
    # bad input: the confirm link as a variable
    ("tencent:\n  voice:\n    alert: {code: '1', variables: [link]}\n",
     "tencent.voice.alert.variables: 'link' cannot be a template variable"),
])
def test_check_fails_on_a_broken_file_with_the_message(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")

    r = jiaoying("carriers", "check", "--file", str(path), cwd=tmp_path)

    assert r.returncode == 1
    message = " ".join(r.stderr.split())
    assert "invalid template file" in message and str(path) in message and says in message
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_check_without_a_file_says_how_to_name_one(tmp_path: Path) -> None:
    # bad input: JIAOYING_CARRIER_TEMPLATES unset and no --file
    r = jiaoying("carriers", "check", cwd=tmp_path)

    assert r.returncode == 1
    assert "JIAOYING_CARRIER_TEMPLATES" in r.stderr and "--file" in r.stderr


def test_check_on_a_missing_file_names_it(tmp_path: Path) -> None:
    # bad input: --file names a file that is not there
    r = jiaoying("carriers", "check", "--file", str(tmp_path / "nowhere.yaml"), cwd=tmp_path)

    assert r.returncode == 1
    assert "nowhere.yaml: cannot read" in " ".join(r.stderr.split()) and "Traceback" not in r.stderr


def test_the_sample_yaml_is_plain_yaml(tmp_path: Path) -> None:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))

    assert set(data) == {"aliyun", "tencent"}
    assert all(set(data[p]) - {"max_variable_length"} == {"sms", "voice"} for p in data)
    assert all(set(data[p][c]) == set(PURPOSES) for p in data for c in ("sms", "voice"))
