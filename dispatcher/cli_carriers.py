"""``jiaoying carriers``: what a county applies for at Aliyun or Tencent Cloud, and checks afterwards.

``templates`` prints the template texts to submit for approval, generated from our own Chinese
Jinja2 templates (``templates/sms/*.zh.j2``, ``templates/voice/*.zh.j2``) so that the approved
wording and ours cannot drift: each template is rendered with a unique marker for every provider
variable, and each marker is then written in the provider's syntax (Aliyun ``${name}``, Tencent
``{1}``, ``{2}`` … in order of first appearance). Everything else comes out as fixed text. Three
rewrites make the text acceptable to the providers' reviewers: links are dropped, 【】 (reserved
for the signature) become （）, and a variable's second appearance becomes a fixed word (a
variable may appear only once). ``callbacks`` prints the URLs to register; ``check`` reads the
template file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from .domain.channels import Channel
    from .rendering import MessageContext

carriers_app = typer.Typer(help="Aliyun / Tencent Cloud: templates to apply for, callback URLs, the template file.",
                           no_args_is_help=True)

PROVIDER_ZH = {"aliyun": "阿里云", "tencent": "腾讯云"}
PURPOSE_ZH = {
    "alert": "预警通知", "reminder": "再次提醒", "to_deputy": "请代为落实（代理人）",
    "to_superior": "请督促落实（上级）", "to_duty": "值班跟进（值班室）", "unreached": "未叫醒（组织上门）",
    "update": "预警更新", "cancel": "预警解除", "drill": "演练（所有演练消息）",
    "rollcall": "值班点名", "rollcall_missed": "值班点名未应答（告知值班领导）",
    "spotcheck": "六问抽查（逐项作答）", "spotcheck_again": "六问抽查（未能识别，请重新作答）",
}
VARIABLE_ZH = {
    "official": "接收人姓名", "subject_official": "未确认人姓名", "title": "预警名称", "hazard_name": "灾种",
    "level_name": "预警级别", "headline": "预警标题", "areas": "影响区域", "instruction": "防御指引",
    "sent_text": "发布时间", "sent_spoken": "发布时间（播报用）", "ack_code": "确认码", "link": "确认链接",
    "drill_prefix": "演练标记", "step": "轮次",
    "questions": "抽查问题（写入模板正文）", "question_count": "抽查问题数", "answer_example": "作答示例",
}
CHANNEL_ZH = {"sms": "短信", "voice": "语音"}
# The code a generated entry carries until the provider has approved the template.
PENDING = "待审批"
PLACEHOLDER_CODE = {("aliyun", "sms"): f"SMS_{PENDING}", ("aliyun", "voice"): f"TTS_{PENDING}",
                    ("tencent", "sms"): f'"{PENDING}"', ("tencent", "voice"): f'"{PENDING}"'}

# Markers: private-use characters around the variable's index (short enough for any clip()).
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
# 【】 is reserved for the signature: both providers refuse it in a template's text.
_NO_SIGNATURE_BRACKETS = str.maketrans({"【": "（", "】": "）"})
# A variable may appear once in a template: its later appearances are written as these words.
_AGAIN = {"title": "预警", "official": "您", "subject_official": "其本人", "areas": "上述区域"}
# Not variables of a provider template: links (SMS and voice take replies and keypresses), the
# drill label (fixed text of the drill entry), the plan step (not written by our templates).
_NOT_MARKED = ("link", "drill_prefix", "step", "questions")
# A spot-check's questions are too long for any provider's variable (Aliyun 35, Tencent 12 characters):
# the generated text carries the six questions of the sample county as fixed words, for the county to
# change to its own questionnaire before applying.
SAMPLE_QUESTIONS = ("是否收到预警", "是否知晓危险区范围", "是否已巡查隐患点", "是否落实人员转移",
                    "是否知晓转移路线和安置点", "是否在岗在位")


def _names() -> tuple[str, ...]:
    from .rendering import TEMPLATE_VARIABLES

    return tuple(name for name in TEMPLATE_VARIABLES if name not in _NOT_MARKED)


def _samples() -> tuple[MessageContext, MessageContext]:
    """Two warnings that differ in every value: a text that is not the same for both writes a
    per-warning value as fixed text (a template change this generator does not know)."""
    from .domain.hazards import Hazard, Level
    from .rendering import MessageContext

    return (
        MessageContext(headline="甲", hazard=Hazard.RAINSTORM, level=Level.RED, areas=["甲镇"], description="甲",
                       instruction="甲", sent=datetime(2026, 7, 16, 3, 10, tzinfo=UTC), official="甲",
                       ack_code="1111", step=1, questions=SAMPLE_QUESTIONS),
        MessageContext(headline="乙", hazard=Hazard.TYPHOON, level=Level.BLUE, areas=["乙镇", "丙镇"],
                       description="乙", instruction="乙", sent=datetime(2025, 1, 2, 20, 5, tzinfo=UTC),
                       official="乙", ack_code="2222", step=2, questions=SAMPLE_QUESTIONS),
    )


@dataclass(frozen=True)
class Generated:
    """One provider template generated from ours: fixed text with variables in it."""

    channel: Channel
    purpose: str  # a Purpose value, or "drill"
    source: str  # our template it comes from, e.g. templates/sms/alert.zh.j2
    parts: tuple[str, ...]  # fixed text and variable names, alternating: text, name, text, … text
    variables: tuple[str, ...]  # in order of first (and only) appearance

    def text(self, provider: str) -> str:
        """The text to submit: Aliyun ``${name}``, Tencent ``{1}`` … positional."""
        out = []
        for i, part in enumerate(self.parts):
            if i % 2 == 0:
                out.append(part)
            elif provider == "aliyun":
                out.append("${" + part + "}")
            else:
                out.append("{" + str(self.variables.index(part) + 1) + "}")
        return "".join(out)

    def filled(self, values: Mapping[str, str]) -> str:
        return "".join(part if i % 2 == 0 else values[part] for i, part in enumerate(self.parts))


def generate(channel: Channel, purpose: str, provider: str | None = None) -> Generated:
    """The provider template for ``purpose`` (or ``drill``: the alert, labelled 演练) on ``channel``.
    A spot-check's call on a provider that reports one key only (Tencent) asks for the answers by SMS."""
    from .services.spotchecks import ONE_KEY_PROVIDERS

    drill = purpose == "drill"
    stem = f"{channel.value}/{'alert' if drill else purpose}"
    by_sms = provider in ONE_KEY_PROVIDERS and stem == "voice/spotcheck"
    marked = {_marked(stem, replace(sample, drill=drill, answer_by_sms=by_sms)) for sample in _samples()}
    source = f"templates/{stem}.zh.j2"
    names = _names()
    if len(marked) != 1:
        shown = sorted(_MARKER.sub(lambda m: "{" + names[int(m[1])] + "}", text) for text in marked)
        raise RuntimeError(f"{source} writes a per-warning value that is not a provider template variable: "
                           f"{' | '.join(shown)}")
    pieces = _MARKER.split(marked.pop())
    parts: list[str] = [pieces[0]]
    seen: list[str] = []
    for index, text in zip(pieces[1::2], pieces[2::2], strict=True):
        name = names[int(index)]
        if name not in seen:
            seen.append(name)
            parts += [name, text]
            continue
        if name not in _AGAIN:
            raise RuntimeError(f"{source}: {name} appears twice; a provider template takes a variable once "
                               f"(add a fixed word for it to _AGAIN in {__name__})")
        parts[-1] += _AGAIN[name] + text
    if any(_OPEN in p or _CLOSE in p for p in parts):
        raise RuntimeError(f"{source}: a filter cut a variable marker")
    return Generated(channel, purpose, source, tuple(parts), tuple(seen))


def _marked(stem: str, sample: MessageContext) -> str:
    from .rendering import _URL, _template, _variables

    template, _ = _template(stem, "zh")
    values = _variables("zh", replace(sample, link=None))
    names = _names()
    values.update({name: f"{_OPEN}{i}{_CLOSE}" for i, name in enumerate(names)})
    values["areas"] = [values["areas"]]  # a list for the places() filter
    text = _URL.sub("", str(template.make_module(values)))
    return " ".join(text.translate(_NO_SIGNATURE_BRACKETS).split())


def purposes() -> list[str]:
    from .domain.callouts import Purpose

    return [p.value for p in Purpose] + ["drill"]


def generate_all(channels: list[Channel], provider: str | None = None) -> list[Generated]:
    return [generate(channel, purpose, provider) for purpose in purposes() for channel in channels]


def yaml_entry(provider: str, generated: Generated) -> str:
    code = PLACEHOLDER_CODE[(provider, generated.channel.value)]
    return f"{generated.purpose}: {{code: {code}, variables: [{', '.join(generated.variables)}]}}"


def example_values(provider: str) -> dict[str, str]:
    """A plausible message's variables, cut to the provider's default limit (what would be sent)."""
    from .channels.carrier_templates import DEFAULT_MAX_VARIABLE, CarrierTemplate
    from .domain.channels import Channel
    from .domain.hazards import Hazard, Level
    from .rendering import TEMPLATE_VARIABLES, MessageContext, template_variables

    context = MessageContext(
        headline="青溪县气象台发布暴雨红色预警信号", hazard=Hazard.RAINSTORM, level=Level.RED,
        areas=["青溪镇", "白云镇"], description="", instruction="立即转移山洪危险区群众",
        sent=datetime(2026, 7, 16, 3, 10, tzinfo=UTC), official="王建国", subject_official="李明", ack_code="4821",
        questions=SAMPLE_QUESTIONS)
    names = tuple(n for n in TEMPLATE_VARIABLES if n != "link")
    cut = CarrierTemplate(provider, Channel.SMS, "alert", "-", names, DEFAULT_MAX_VARIABLE[provider])
    return dict(cut.values(template_variables("zh", context)))


def _rules(provider: str) -> list[str]:
    from .channels.carrier_templates import DEFAULT_MAX_VARIABLE

    limit = DEFAULT_MAX_VARIABLE[provider]
    common = [
        "模板正文不含签名、不含【】（【】留给签名）、不含链接；类型选“通知” / the text carries no signature, no 【】 "
        "(reserved for the signature) and no links; apply as a notification (通知) template",
        f"变量值超过 {limit} 字时以“…”截断，确认码从不截断 / a value longer than {limit} characters is cut with "
        "\"…\"; the acknowledgement code is never cut",
    ]
    if provider == "aliyun":
        return [
            "签名（如 青溪县应急管理局）另行申请，由阿里云加在短信最前面；审批后设 JIAOYING_ALIYUN_SMS_SIGN_NAME / "
            "the signature (签名) is applied for separately and put in front by Aliyun; set "
            "JIAOYING_ALIYUN_SMS_SIGN_NAME",
            "变量写作 ${name}，每个变量只出现一次；申请时为每个变量选择变量属性 / variables are written ${name}, "
            "each at most once; choose each variable's attribute (变量属性) when applying",
            f"每个变量最多 {limit} 字（普通变量） / at most {limit} characters a variable (ordinary variables)",
            *common,
            "语音：在语音服务申请文本转语音（TTS）模板，外呼显示号码设 JIAOYING_ALIYUN_VOICE_SHOW_NUMBER / voice: "
            "apply for text-to-speech (TTS) templates in 语音服务; the number officials see calling is "
            "JIAOYING_ALIYUN_VOICE_SHOW_NUMBER",
        ]
    return [
        "签名另行申请，由腾讯云加在短信最前面；审批后设 JIAOYING_TENCENT_SMS_SIGN_NAME / the signature (签名) is "
        "applied for separately and put in front by Tencent Cloud; set JIAOYING_TENCENT_SMS_SIGN_NAME",
        "变量按出现顺序写作 {1}、{2}…；模板文件的 variables 按同一顺序列出 / variables are positional, {1}, {2} … "
        "in order of appearance; the template file lists them in the same order",
        f"个人认证账号每个变量最多 {limit} 字（默认）；企业认证账号不限，可在模板文件中设 max_variable_length / "
        f"individual-verified accounts: at most {limit} characters a variable (the default); organisation-verified "
        "accounts have no such limit: set max_variable_length in the template file",
        *common,
        "语音：在语音消息控制台 → 应用管理 → 语音模板申请；应用设 JIAOYING_TENCENT_VOICE_APP_ID / voice: apply in "
        "语音消息 → 应用管理 → 语音模板; set JIAOYING_TENCENT_VOICE_APP_ID",
    ]


def _say(text: str = "") -> None:
    from .cli import out

    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _provider(value: str) -> str:
    from .channels.carrier_templates import PROVIDERS
    from .cli import fail

    name = value.strip().lower()
    if name not in PROVIDERS:
        raise fail(f"未知服务商 / unknown provider {value!r}; accepted: {', '.join(PROVIDERS)}")
    return name


@carriers_app.command("templates")
def templates(
    provider: Annotated[str, typer.Option(help="aliyun | tencent")],
    channel: Annotated[str | None, typer.Option(help="sms | voice (default: both)")] = None,
) -> None:
    """Print the template texts to submit to the provider, generated from our own Chinese templates,
    with the entries for the template file (JIAOYING_CARRIER_TEMPLATES)."""
    from .channels.carrier_templates import CHANNELS
    from .cli import fail
    from .rendering import TEMPLATE_VARIABLES

    provider = _provider(provider)
    if channel is None:
        channels = list(CHANNELS)
    elif channel.strip().lower() in {c.value for c in CHANNELS}:
        channels = [c for c in CHANNELS if c.value == channel.strip().lower()]
    else:
        raise fail(f"未知渠道 / unknown channel {channel!r}; accepted: sms, voice")
    generated = generate_all(channels, provider)
    example = example_values(provider)

    _say(f"{PROVIDER_ZH[provider]}模板申请 / {provider} templates to apply for — generated from templates/sms/*.zh.j2 "
         "and templates/voice/*.zh.j2")
    _say("规则 / rules:")
    for rule in _rules(provider):
        _say(f"  - {rule}")
    for item in generated:
        _say()
        _say(f"== {item.purpose} {PURPOSE_ZH[item.purpose]} · {CHANNEL_ZH[item.channel.value]} "
             f"{item.channel.value} ({item.source}{', 【演练】 → （演练）' if item.purpose == 'drill' else ''})")
        _say("模板内容 / template text:")
        _say(f"  {item.text(provider)}")
        _say("变量 / variables:")
        for n, name in enumerate(item.variables, 1):
            shown = "${" + name + "}" if provider == "aliyun" else "{" + str(n) + "}"
            _say(f"  {shown} {name}: {VARIABLE_ZH[name]} / {TEMPLATE_VARIABLES[name]}")
        _say("示例 / example:")
        _say(f"  {item.filled(example)}")
        _say("模板文件 / template file:")
        _say(f"  {yaml_entry(provider, item)}")
    _say()
    _say(f"# 审批通过后粘贴到模板文件（JIAOYING_CARRIER_TEMPLATES），把“{PENDING}”换成模板代码 / after approval, "
         f"paste into the template file and replace {PENDING} with each template's code")
    _say(f"{provider}:")
    for each in channels:
        _say(f"  {each.value}:")
        for item in generated:
            if item.channel is each:
                _say(f"    {yaml_entry(provider, item)}")


# Where each callback (carriers.CALLBACKS) is registered in the provider's console.
_ALIYUN_SMS = "短信服务控制台 → 通用设置 → 接口API → 云通信消息接收 → HTTP批量推送模式"
_ALIYUN_VOICE = "语音服务控制台 → 回执消息配置"
_TENCENT_SMS = "短信控制台 → 应用管理 → 应用列表 → 回调配置"
_TENCENT_VOICE = "语音消息控制台 → 应用管理 → 应用列表 → 回调配置"
REGISTER_AT = {
    ("aliyun", "sms-report"): f"{_ALIYUN_SMS}：SmsReport（短信下行回执报告） / SMS console, general settings, "
                              "HTTP batch push: SmsReport",
    ("aliyun", "sms-up"): f"{_ALIYUN_SMS}：SmsUp（上行短信） / SMS console, general settings, HTTP batch push: SmsUp",
    ("aliyun", "voice-report"): f"{_ALIYUN_VOICE}：VoiceReport（呼叫记录消息），HTTP批量推送模式 / voice console, "
                                "receipt messages: VoiceReport, HTTP batch push",
    ("aliyun", "voice-keypress"): f"{_ALIYUN_VOICE}：VoiceCallReport（呼叫中间状态消息），HTTP批量推送模式 / voice "
                                  "console, receipt messages: VoiceCallReport, HTTP batch push",
    ("tencent", "sms-status"): f"{_TENCENT_SMS}：短信状态回调 / SMS console, application, callbacks: status reports",
    ("tencent", "sms-reply"): f"{_TENCENT_SMS}：短信回复回调 / SMS console, application, callbacks: replies",
    ("tencent", "voice-status"): f"{_TENCENT_VOICE}：呼叫状态回调 / voice messages console, application, "
                                 "callbacks: call status",
    ("tencent", "voice-keypress"): f"{_TENCENT_VOICE}：按键回调 / voice messages console, application, "
                                   "callbacks: keypresses",
}


@carriers_app.command("callbacks")
def callbacks(
    provider: Annotated[str | None, typer.Option(help="aliyun | tencent (default: both)")] = None,
) -> None:
    """Print the callback URLs to register in the provider's console (this server's settings)."""
    from urllib.parse import urlsplit

    from .channels.carrier_templates import PROVIDERS
    from .channels.carriers import CALLBACKS, callback_urls
    from .cli import err, fail, get_settings

    chosen = [_provider(provider)] if provider is not None else list(PROVIDERS)
    settings = get_settings()
    problem = settings.secret_problem()
    if problem is not None:
        raise fail(f"拒绝打印回调地址 / refusing to print the callback URLs: their token is derived from the secret "
                   f"key, and {problem}")
    host = urlsplit(settings.public_url).hostname or ""
    if host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127."):
        err.print(f"注意 / note: JIAOYING_PUBLIC_URL is {settings.public_url}: the providers cannot reach this "
                  "address; set it to the server's public address", markup=False, highlight=False, soft_wrap=True)
    _say(f"回调地址 / callback URLs under JIAOYING_PUBLIC_URL = {settings.public_url}")
    _say("地址中的令牌由密钥派生，更换密钥后须重新登记 / the token in the path is derived from the secret key: "
         "register the URLs again after changing the key")
    for name in chosen:
        _say()
        _say(f"{PROVIDER_ZH[name]} {name}")
        for (url, what), (path, _) in zip(callback_urls(settings, name), CALLBACKS[name], strict=True):
            _say(f"  {url}")
            _say(f"    收到 / receives: {what}")
            _say(f"    登记 / register at: {REGISTER_AT[(name, path)]}")


@carriers_app.command("check")
def check(
    file: Annotated[Path | None, typer.Option(help="the template file (default: JIAOYING_CARRIER_TEMPLATES)")] = None,
) -> None:
    """Read the template file: per provider and channel, the purposes covered and missing; exit 1 if
    it is invalid or still holds codes awaiting approval."""
    from .channels.carrier_templates import CHANNELS, DRILL, PROVIDERS, CarrierTemplateError, load_carrier_templates
    from .cli import err, fail, get_settings
    from .domain.callouts import Purpose

    path = str(file) if file is not None else get_settings().carrier_templates
    if not path:
        raise fail("没有模板文件 / no template file: set JIAOYING_CARRIER_TEMPLATES or give --file")
    try:
        loaded = load_carrier_templates(path)
    except CarrierTemplateError as exc:
        raise fail(f"模板文件无效 / invalid template file: {exc}") from None
    if not loaded:
        raise fail(f"{path}: 没有任何模板 / no templates in the file")
    expected = {(g.channel, g.purpose): g.variables for g in generate_all(list(CHANNELS))}
    pending: list[str] = []
    _say(f"{path}: 有效 / valid — {len(loaded.entries)} templates")
    for provider in PROVIDERS:
        for channel in CHANNELS:
            have = [p for (pv, ch, p) in loaded.entries if pv == provider and ch is channel]
            if not have:
                continue
            missing = [p.value for p in loaded.missing(provider, channel, list(Purpose))]
            limit = next(t.max_length for k, t in loaded.entries.items() if k[0] == provider and k[1] is channel)
            shown = f"at most {limit} characters a variable" if limit is not None else "no per-variable limit"
            _say()
            _say(f"{PROVIDER_ZH[provider]} {provider} · {CHANNEL_ZH[channel.value]} {channel.value} ({shown})")
            _say(f"  已有 / covered: {', '.join(p for p in purposes() if p in have)}")
            _say(f"  缺少 / missing: {', '.join(missing) if missing else '无 / none'}")
            if DRILL not in have:
                _say("  注意 / note: 没有 drill 模板，演练消息只用含 drill_prefix 的模板发送，其余不发"
                     "（绝不发出不带“演练”字样的演练消息）/ no drill entry: drill messages go only by templates "
                     "with drill_prefix; the others are not sent (never without the 演练 label)")
            for purpose in have:
                entry = loaded.entries[(provider, channel, purpose)]
                if PENDING in entry.code:
                    pending.append(f"{provider}.{channel.value}.{purpose}")
                if entry.variables != expected[(channel, purpose)]:
                    _say(f"  注意 / note: {purpose}: 变量与生成的模板不同 / variables differ from the generated "
                         f"template (jiaoying carriers templates --provider {provider}): "
                         f"[{', '.join(entry.variables)}] vs [{', '.join(expected[(channel, purpose)])}]")
    if pending:
        err.print(f"仍在等待审批的模板代码 / codes still awaiting approval: {', '.join(pending)}",
                  markup=False, highlight=False, soft_wrap=True)
        raise fail(f"{len(pending)} 个模板尚无审批通过的代码 / {len(pending)} template(s) have no approved code yet")
