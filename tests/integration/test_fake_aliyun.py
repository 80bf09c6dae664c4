"""The fake Aliyun SMS + Voice (tests/fakes/aliyun_server.py) driven by the REAL official SDKs over 127.0.0.1:
what it accepts, what it refuses and with which code, and the pushes it makes. No mocks: every request is
signed by alibabacloud-tea-openapi and the fake recomputes the signature."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client as SmsClient
from alibabacloud_dyvmsapi20170525 import models as voice_models
from alibabacloud_dyvmsapi20170525.client import Client as VoiceClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.core import DaraCore
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from tests.fakes.aliyun_server import BEIJING, VARIABLE_MAX_CHARS, FakeAliyun

AK_ID = "LTAI5tJiaoyingTestKey01"
AK_SECRET = "jiaoying-test-secret-0123456789abcdef"
SIGN = "某某县应急管理局"
SHOW_NUMBER = "057156781234"
TEMPLATES: dict[str, Any] = {
    "SMS_100001": "${name}同志:${headline},请回复${code}确认收到。",
    "TTS_200001": ["name", "headline"],  # the IVR's opening prompt
    "TTS_200002": [],  # "已确认收到"
    "TTS_200003": ["name"],  # "请转告 ${name}"
    "TTS_200009": ["headline"],  # a plain notice call
}
PHONE = ["13800000001", "13800000002", "13800000003"]
PARAMS = {"name": "孙明", "headline": "暴雨红色预警", "code": "1"}
RELAY_PARAMS = json.dumps({"name": "值班员"}, ensure_ascii=False)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # darabonba reads HTTP(S)_PROXY itself: keep every SDK request on 127.0.0.1.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeAliyun]:
    server = FakeAliyun(AK_ID, AK_SECRET, sign_names={SIGN}, templates=TEMPLATES, show_numbers={SHOW_NUMBER})
    server.start()
    yield server
    server.stop()


def config(fake: FakeAliyun, **overrides: Any) -> open_api_models.Config:
    values: dict[str, Any] = {"access_key_id": AK_ID, "access_key_secret": AK_SECRET, "endpoint": fake.endpoint,
                              "protocol": "http"}
    return open_api_models.Config(**(values | overrides))


@pytest.fixture
def sms(fake: FakeAliyun) -> SmsClient:
    return SmsClient(config(fake))


@pytest.fixture
def voice(fake: FakeAliyun) -> VoiceClient:
    return VoiceClient(config(fake))


def send(sms: SmsClient, numbers: str = PHONE[0], *, template: str = "SMS_100001", sign: str = SIGN,
         params: dict[str, Any] | None = None, out_id: str = "att-1") -> sms_models.SendSmsResponseBody:
    request = sms_models.SendSmsRequest(phone_numbers=numbers, sign_name=sign, template_code=template,
                                        template_param=json.dumps(PARAMS if params is None else params,
                                                                  ensure_ascii=False), out_id=out_id)
    return sms.send_sms(request).body


def ivr(voice: VoiceClient, number: str = PHONE[0], *, out_id: str = "call-1",
        start_params: dict[str, str] | None = None) -> voice_models.IvrCallResponseBody:
    request = voice_models.IvrCallRequest(
        called_number=number, called_show_number=SHOW_NUMBER, start_code="TTS_200001",
        start_tts_params=json.dumps(start_params or {"name": "孙明", "headline": "暴雨红色预警"}, ensure_ascii=False),
        menu_key_map=[voice_models.IvrCallRequestMenuKeyMap(key="1", code="TTS_200002"),
                      voice_models.IvrCallRequestMenuKeyMap(key="2", code="TTS_200003", tts_params=RELAY_PARAMS)],
        play_times=3, timeout=8000, out_id=out_id)
    return voice.ivr_call(request).body


# -- sending SMS ----------------------------------------------------------------------------------


def test_send_sms_accepted_with_biz_id_and_recorded_out_id_and_params(fake: FakeAliyun, sms: SmsClient) -> None:
    body = send(sms, f"+86{PHONE[0]}", out_id="warn-42-sun")
    assert (body.code, body.message) == ("OK", "OK")
    assert body.biz_id and body.request_id
    (record,) = fake.messages()
    assert record.action == "SendSms" and record.signature == "ACS3-HMAC-SHA256"
    assert record.biz_id == body.biz_id and record.out_id == "warn-42-sun"
    assert record.numbers == (f"+86{PHONE[0]}",)
    assert record.param("SignName") == SIGN and record.template_code == "SMS_100001"
    assert record.params_for(f"+86{PHONE[0]}") == PARAMS
    assert fake.keys_seen() == ["warn-42-sun"]


def test_send_sms_to_several_numbers_in_one_request(fake: FakeAliyun, sms: SmsClient) -> None:
    body = send(sms, ",".join(PHONE))
    assert body.code == "OK"
    assert fake.messages()[0].numbers == tuple(PHONE)


def test_send_batch_sms_of_three_each_with_its_own_parameters(fake: FakeAliyun, sms: SmsClient) -> None:
    params = [{"name": name, "headline": "山洪预警", "code": "1"} for name in ("孙明", "周红", "郑亮")]
    request = sms_models.SendBatchSmsRequest(
        phone_number_json=json.dumps(PHONE), sign_name_json=json.dumps([SIGN] * 3, ensure_ascii=False),
        template_code="SMS_100001", template_param_json=json.dumps(params, ensure_ascii=False), out_id="batch-7")
    body = sms.send_batch_sms(request).body
    assert body.code == "OK" and body.biz_id
    (record,) = fake.messages()
    assert record.action == "SendBatchSms" and record.numbers == tuple(PHONE) and record.out_id == "batch-7"
    assert record.sign_names == (SIGN,) * 3
    assert [record.params_for(p)["name"] for p in PHONE] == ["孙明", "周红", "郑亮"]


def test_the_older_rpc_signature_is_verified_too(fake: FakeAliyun) -> None:
    assert send(SmsClient(config(fake, signature_algorithm="v2"))).code == "OK"
    assert fake.messages()[0].signature == "HMAC-SHA1"
    with pytest.raises(ClientException) as refused:
        send(SmsClient(config(fake, signature_algorithm="v2", access_key_secret="not-the-secret")))
    assert refused.value.code == "SignatureDoesNotMatch"


# -- refused by the gateway (HTTP 4xx, the SDK raises) --------------------------------------------


def test_wrong_access_key_secret_is_refused_with_signature_does_not_match(fake: FakeAliyun) -> None:
    # Bad input: the right AccessKeyId signed with another secret.
    with pytest.raises(ClientException) as refused:
        send(SmsClient(config(fake, access_key_secret="not-the-secret")))
    assert refused.value.code == "SignatureDoesNotMatch"
    assert refused.value.status_code == 400
    assert fake.received() == [] and fake.auth_failures == [("SignatureDoesNotMatch", AK_ID)]


def test_unknown_access_key_id_is_refused_with_not_found(fake: FakeAliyun) -> None:
    # Bad input: an AccessKeyId the account does not have.
    with pytest.raises(ClientException) as refused:
        send(SmsClient(config(fake, access_key_id="LTAI5tSomebodyElse")))
    assert refused.value.code == "InvalidAccessKeyId.NotFound"
    assert refused.value.status_code == 404
    assert fake.received() == []


def test_replayed_or_tampered_request_is_refused(fake: FakeAliyun, sms: SmsClient,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Bad input: the SDK's own signed request sent again (same nonce), and again with OutId changed after signing.
    # darabonba's transport is only spied on (kept as sent), never replaced.
    sent: list[tuple[Any, Any]] = []
    transport = DaraCore.do_action

    def spy(request: Any, runtime: Any = None) -> Any:
        sent.append((copy.deepcopy(request), runtime))
        return transport(request, runtime)

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(spy))
    assert send(sms).code == "OK"
    monkeypatch.setattr(DaraCore, "do_action", transport)
    request, runtime = sent[0]
    replayed = DaraCore.do_action(copy.deepcopy(request), runtime)
    assert (replayed.status_code, json.loads(replayed.body)["Code"]) == (400, "SignatureNonceUsed")
    tampered = copy.deepcopy(request)
    tampered.query["OutId"] = "someone-elses"
    tampered.headers["x-acs-signature-nonce"] = "a-fresh-nonce"
    answer = DaraCore.do_action(tampered, runtime)
    assert (answer.status_code, json.loads(answer.body)["Code"]) == (400, "SignatureDoesNotMatch")
    assert len(fake.messages()) == 1


def test_gateway_throttling_is_a_client_error_or_a_throttling_error_with_retry_after(fake: FakeAliyun,
                                                                                     sms: SmsClient) -> None:
    # Bad luck: the gateway's per-user flow control.
    fake.throttle_next()
    with pytest.raises(ClientException) as throttled:
        send(sms)
    assert throttled.value.code == "Throttling.User"
    fake.throttle_next(retry_after=3)
    with pytest.raises(ThrottlingException) as waited:
        send(sms)
    assert waited.value.code == "Throttling.User" and waited.value.retry_after == 3
    assert send(sms).code == "OK"


# -- refused as business errors (HTTP 200, Code != OK) ---------------------------------------------


def test_unknown_template_code_is_refused(fake: FakeAliyun, sms: SmsClient) -> None:
    # Bad input: a template code never approved on the account.
    body = send(sms, template="SMS_999999")
    assert body.code == "isv.SMS_TEMPLATE_ILLEGAL" and body.biz_id is None
    assert fake.messages() == [] and fake.received()[0].code == "isv.SMS_TEMPLATE_ILLEGAL"


def test_unknown_sign_name_is_refused(sms: SmsClient) -> None:
    # Bad input: a sign name (签名) not approved on the account.
    assert send(sms, sign="别的单位").code == "isv.SMS_SIGNATURE_ILLEGAL"


def test_wrong_variable_names_are_refused(sms: SmsClient) -> None:
    # Bad input: "title" where the template declares "headline".
    wrong = {"name": "孙明", "title": "暴雨红色预警", "code": "1"}
    assert send(sms, params=wrong).code == "isv.TEMPLATE_MISSING_PARAMETERS"
    # Bad input: every declared variable plus one the template does not have.
    assert send(sms, params=PARAMS | {"extra": "x"}).code == "isv.TEMPLATE_PARAMS_ILLEGAL"
    # Bad input: a number instead of a string value.
    assert send(sms, params=PARAMS | {"code": 1}).code == "isv.INVALID_JSON_PARAM"


def test_variable_longer_than_the_limit_is_refused(fake: FakeAliyun, sms: SmsClient) -> None:
    # Bad input: a headline one character over the per-variable limit (35).
    assert send(sms, params=PARAMS | {"headline": "雨" * VARIABLE_MAX_CHARS}).code == "OK"
    body = send(sms, params=PARAMS | {"headline": "雨" * (VARIABLE_MAX_CHARS + 1)})
    assert body.code == "isv.PARAM_LENGTH_LIMIT"
    assert len(fake.messages()) == 1


@pytest.mark.parametrize("number", ["+12025550123", "+85291234567", "1380000000", "010-12345678", "not a number"])
def test_non_mainland_or_malformed_number_is_refused(sms: SmsClient, number: str) -> None:
    # Bad input: a US / Hong Kong number, ten digits, a landline, garbage.
    assert send(sms, number).code == "isv.MOBILE_NUMBER_ILLEGAL"


def test_one_bad_number_refuses_the_whole_request(fake: FakeAliyun, sms: SmsClient) -> None:
    # Bad input: one US number among three mainland ones, in SendSms and in SendBatchSms.
    assert send(sms, ",".join([*PHONE, "+12025550123"])).code == "isv.MOBILE_NUMBER_ILLEGAL"
    numbers = [*PHONE[:2], "+12025550123"]
    request = sms_models.SendBatchSmsRequest(
        phone_number_json=json.dumps(numbers), sign_name_json=json.dumps([SIGN] * 3, ensure_ascii=False),
        template_code="SMS_100001", template_param_json=json.dumps([PARAMS] * 3, ensure_ascii=False))
    assert sms.send_batch_sms(request).body.code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert fake.messages() == []


def test_more_numbers_than_allowed_are_refused(sms: SmsClient) -> None:
    # Bad input: 1,001 numbers in SendSms; 101 in SendBatchSms.
    many = [f"138{i:08d}" for i in range(1_001)]
    assert send(sms, ",".join(many)).code == "isv.MOBILE_COUNT_OVER_LIMIT"
    request = sms_models.SendBatchSmsRequest(
        phone_number_json=json.dumps(many[:101]), sign_name_json=json.dumps([SIGN] * 101, ensure_ascii=False),
        template_code="SMS_100001", template_param_json=json.dumps([PARAMS] * 101, ensure_ascii=False))
    assert sms.send_batch_sms(request).body.code == "isv.MOBILE_COUNT_OVER_LIMIT"


def test_arrears_refuses_every_send(fake: FakeAliyun, sms: SmsClient, voice: VoiceClient) -> None:
    # Bad luck: the account is out of money.
    fake.arrears()
    assert send(sms).code == "isv.AMOUNT_NOT_ENOUGH"
    assert ivr(voice).code == "isv.AMOUNT_NOT_ENOUGH"
    fake.arrears(False)
    assert send(sms).code == "OK"


def test_business_limit_on_one_number(fake: FakeAliyun, sms: SmsClient) -> None:
    # Bad luck: Aliyun's per-number flow control on one recipient only.
    fake.business_limit(PHONE[1])
    assert send(sms, PHONE[0]).code == "OK"
    body = send(sms, f"+86{PHONE[1]}", out_id="att-2")
    assert body.code == "isv.BUSINESS_LIMIT_CONTROL" and body.biz_id is None
    assert fake.keys_seen() == ["att-1", "att-2"] and fake.keys_seen(accepted_only=True) == ["att-1"]


# -- provider outages ------------------------------------------------------------------------------


def test_provider_5xx_is_a_server_exception(fake: FakeAliyun, sms: SmsClient) -> None:
    # Bad luck: the provider fails (HTTP 503), then recovers.
    fake.fail_next(503)
    with pytest.raises(ServerException) as failed:
        send(sms)
    assert failed.value.status_code == 503 and failed.value.code == "ServiceUnavailable"
    assert send(sms).code == "OK"
    assert [r.code for r in fake.received()] == ["HTTP 503", "OK"]


def test_a_hang_becomes_the_sdks_read_timeout(fake: FakeAliyun, sms: SmsClient) -> None:
    # Bad luck: no answer; the SDK's read timeout (200 ms here) gives up.
    fake.hang_next(5.0)
    request = sms_models.SendSmsRequest(phone_numbers=PHONE[0], sign_name=SIGN, template_code="SMS_100001",
                                        template_param=json.dumps(PARAMS, ensure_ascii=False), out_id="slow-1")
    with pytest.raises(UnretryableException) as timed_out:
        sms.send_sms_with_options(request, RuntimeOptions(read_timeout=200, connect_timeout=200))
    assert "timed out" in str(timed_out.value).lower()
    assert fake.messages() == [] and fake.keys_seen() == ["slow-1"]


def test_a_timed_out_send_may_still_have_gone_out(fake: FakeAliyun, sms: SmsClient) -> None:
    # Bad luck: the send is accepted but the answer never arrives (SendSms is not idempotent).
    fake.hang_next(5.0, deliver=True)
    request = sms_models.SendSmsRequest(phone_numbers=PHONE[0], sign_name=SIGN, template_code="SMS_100001",
                                        template_param=json.dumps(PARAMS, ensure_ascii=False), out_id="slow-2")
    with pytest.raises(UnretryableException):
        sms.send_sms_with_options(request, RuntimeOptions(read_timeout=200))
    (record,) = fake.messages()
    assert record.out_id == "slow-2" and record.biz_id


# -- voice -----------------------------------------------------------------------------------------


def test_ivr_call_accepted_with_the_menu_key_map_recorded(fake: FakeAliyun, voice: VoiceClient) -> None:
    body = ivr(voice, out_id="ivr-9")
    assert body.code == "OK" and body.call_id
    (call,) = fake.calls()
    assert call.action == "IvrCall" and call.call_id == body.call_id and call.out_id == "ivr-9"
    assert call.numbers == (PHONE[0],) and call.template_code == "TTS_200001"
    assert call.menu_key_map == ({"Key": "1", "Code": "TTS_200002"},
                                 {"Key": "2", "Code": "TTS_200003", "TtsParams": RELAY_PARAMS})
    assert call.param("PlayTimes") == "3" and call.param("Timeout") == "8000"
    assert call.param("MenuKeyMap.2.Code") == "TTS_200003"  # the SDK's flattening, as sent


def test_single_call_by_tts_accepted(fake: FakeAliyun, voice: VoiceClient) -> None:
    request = voice_models.SingleCallByTtsRequest(called_number=PHONE[1], called_show_number=SHOW_NUMBER,
                                                  tts_code="TTS_200009", tts_param=json.dumps({"headline": "山洪"}),
                                                  play_times=2, out_id="tts-1")
    body = voice.single_call_by_tts(request).body
    assert body.code == "OK" and body.call_id
    (call,) = fake.calls()
    assert (call.action, call.call_id, call.out_id) == ("SingleCallByTts", body.call_id, "tts-1")
    assert call.params_for(PHONE[1]) == {"headline": "山洪"}


def test_voice_refusals(voice: VoiceClient) -> None:
    # Bad input: an unknown TTS template, an SMS template used for voice, a US callee, a caller id not ours,
    # a missing prompt variable, a repeated menu key.
    def tts(code: str = "TTS_200009", number: str = PHONE[0], show: str = SHOW_NUMBER,
            params: dict[str, str] | None = None) -> str:
        request = voice_models.SingleCallByTtsRequest(called_number=number, called_show_number=show, tts_code=code,
                                                      tts_param=json.dumps(params or {"headline": "山洪"}))
        return voice.single_call_by_tts(request).body.code

    assert tts("TTS_404404") == "isv.TTS_TEMPLATE_ILLEGAL"
    assert tts("SMS_100001") == "isv.TTS_TEMPLATE_ILLEGAL"
    assert tts(number="+12025550123") == "isv.MOBILE_NUMBER_ILLEGAL"
    assert tts(show="01012345678") == "isv.DISPLAY_NUMBER_ILLEGAL"
    assert tts(params={"title": "山洪"}) == "isv.TEMPLATE_MISSING_PARAMETERS"
    request = voice_models.IvrCallRequest(
        called_number=PHONE[0], called_show_number=SHOW_NUMBER, start_code="TTS_200009",
        start_tts_params=json.dumps({"headline": "山洪"}),
        menu_key_map=[voice_models.IvrCallRequestMenuKeyMap(key="1", code="TTS_200002"),
                      voice_models.IvrCallRequestMenuKeyMap(key="1", code="TTS_200002")])
    assert voice.ivr_call(request).body.code == "isv.INVALID_PARAMETERS"


def test_voice_flow_control_per_callee_when_enforced(voice: VoiceClient, fake: FakeAliyun) -> None:
    # Bad luck: a second call to the same callee within a minute (Aliyun allows 1/min per callee).
    fake.enforce_flow_control = True
    assert ivr(voice, PHONE[0]).code == "OK"
    assert ivr(voice, PHONE[0], out_id="call-2").code == "isv.BUSINESS_LIMIT_CONTROL"
    assert ivr(voice, PHONE[1], out_id="call-3").code == "OK"


# -- looking a message up --------------------------------------------------------------------------


def test_query_send_details_finds_a_sent_message_by_phone_and_date(fake: FakeAliyun, sms: SmsClient) -> None:
    body = send(sms, ",".join(PHONE[:2]), out_id="warn-42")
    today = datetime.now(BEIJING).strftime("%Y%m%d")

    def query(**extra: Any) -> sms_models.QuerySendDetailsResponseBody:
        request = sms_models.QuerySendDetailsRequest(phone_number=PHONE[1], send_date=today, page_size=10,
                                                     current_page=1, **extra)
        return sms.query_send_details(request).body

    found = query()
    assert found.code == "OK" and found.total_count == 1
    (detail,) = found.sms_send_detail_dtos.sms_send_detail_dto
    assert (detail.out_id, detail.phone_num, detail.send_status, detail.template_code) == \
        ("warn-42", PHONE[1], 1, "SMS_100001")
    assert detail.content == f"【{SIGN}】孙明同志:暴雨红色预警,请回复1确认收到。"
    assert query(biz_id=body.biz_id).total_count == 1 and query(biz_id="000^0").total_count == 0
    fake.report("http://127.0.0.1:9/unused", fake.messages()[0], success=False, err_code="MK:0001")
    (after,) = query().sms_send_detail_dtos.sms_send_detail_dto
    assert (after.send_status, after.err_code) == (2, "MK:0001") and after.receive_date


# -- pushes to the app -----------------------------------------------------------------------------


class Receiver:
    """A tiny HTTP server on 127.0.0.1 standing in for the app's callback endpoints."""

    def __init__(self, answer: Callable[[], tuple[int, bytes]] | None = None) -> None:
        self.posts: list[tuple[str, str, Any]] = []  # (path, content type, JSON body)
        self.answer = answer or (lambda: (200, json.dumps({"code": 0, "msg": "接收成功"}).encode()))
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append((self.path, self.headers.get("Content-Type", ""), json.loads(data)))
                status, body = receiver.answer()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self, path: str) -> list[Any]:
        return [body for p, _, body in self.posts if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_receipt_reply_and_keypress_are_posted_in_aliyuns_shape(fake: FakeAliyun, sms: SmsClient,
                                                                voice: VoiceClient, receiver: Receiver) -> None:
    send(sms, ",".join(PHONE[:2]), out_id="warn-42")
    (message,) = fake.messages()
    receipt = fake.report(f"{receiver.url}/aliyun/sms-report", message)
    assert receipt.accepted and receipt.answer == {"code": 0, "msg": "接收成功"}
    path, content_type, body = receiver.posts[0]
    assert path == "/aliyun/sms-report" and content_type.startswith("application/json")
    assert [r["phone_number"] for r in body] == PHONE[:2]
    first = body[0]
    assert set(first) == {"phone_number", "send_time", "report_time", "success", "err_code", "err_msg", "sms_size",
                          "biz_id", "out_id"}
    assert (first["success"], first["err_code"], first["biz_id"], first["out_id"]) == \
        (True, "DELIVERED", message.biz_id, "warn-42")
    assert first["sms_size"] == "1" and len(first["send_time"]) == 19  # "yyyy-MM-dd HH:mm:ss", Beijing time

    fake.reply(f"{receiver.url}/aliyun/sms-up", f"+86{PHONE[0]}", "1")
    (up,) = receiver.bodies("/aliyun/sms-up")[0]
    assert (up["phone_number"], up["content"], up["sign_name"]) == (PHONE[0], "1", SIGN)
    assert set(up) == {"phone_number", "send_time", "content", "sign_name", "dest_code", "sequence_id"}

    ivr(voice, out_id="ivr-9")
    (call,) = fake.calls()
    fake.keypress(f"{receiver.url}/aliyun/voice-call", call, digits="1")
    (key,) = receiver.bodies("/aliyun/voice-call")[0]
    assert key == {"call_id": call.call_id, "status_code": "300000", "status_time": key["status_time"],
                   "out_id": "ivr-9", "dtmf": "1"}
    fake.voice_report(f"{receiver.url}/aliyun/voice", call)
    (report,) = receiver.bodies("/aliyun/voice")[0]
    assert (report["call_id"], report["status_code"], report["out_id"], report["dtmf"]) == \
        (call.call_id, "200000", "ivr-9", "1")
    assert report["callee"] == PHONE[0] and report["caller"] == SHOW_NUMBER and int(report["duration"]) > 0
    assert all(c.accepted for c in fake.callbacks())


def test_pushes_through_a_client_object(fake: FakeAliyun, sms: SmsClient, receiver: Receiver) -> None:
    # The same push through anything with .post(url, json=...), e.g. a FastAPI TestClient.
    send(sms)
    with httpx.Client(base_url=receiver.url, trust_env=False) as client:
        pushed = fake.report(client, fake.messages()[0], url="/aliyun/sms-report")
    assert pushed.accepted and receiver.bodies("/aliyun/sms-report")[0][0]["phone_number"] == PHONE[0]


def test_a_receiver_answer_aliyun_would_not_accept_is_pushed_again(fake: FakeAliyun, sms: SmsClient) -> None:
    # Bad answer: HTTP 200 but "ok" instead of a numeric code; then the receiver gets it right.
    answers = iter([(200, b'{"code": "ok"}'), (200, b'{"code": 0, "msg": "\\u63a5\\u6536\\u6210\\u529f"}')])
    receiver = Receiver(lambda: next(answers))
    try:
        send(sms)
        pushed = fake.report(f"{receiver.url}/r", fake.messages()[0])
        assert not pushed.accepted and pushed.answer == {"code": "ok"}
        assert fake.redeliver() == [pushed]
        assert pushed.accepted and pushed.attempts == 2 and len(receiver.posts) == 2
    finally:
        receiver.close()


def test_automatic_receipts_after_each_send_and_lost_ones(sms: SmsClient, voice: VoiceClient,
                                                          receiver: Receiver, fake: FakeAliyun) -> None:
    fake.auto_callbacks = True
    fake.sms_report_url = f"{receiver.url}/aliyun/sms-report"
    fake.voice_report_url = fake.voice_call_report_url = f"{receiver.url}/aliyun/voice"
    fake.sms_outcome(PHONE[1], success=False, err_code="MK:0001")
    fake.voice_outcome(PHONE[0], digits="1")
    send(sms, ",".join(PHONE[:2]))
    ivr(voice)
    fake.drain()
    (receipts,) = receiver.bodies("/aliyun/sms-report")
    assert [(r["phone_number"], r["success"], r["err_code"]) for r in receipts] == \
        [(PHONE[0], True, "DELIVERED"), (PHONE[1], False, "MK:0001")]
    keypress, final = receiver.bodies("/aliyun/voice")
    assert keypress[0]["status_code"] == "300000" and keypress[0]["dtmf"] == "1"
    assert final[0]["status_code"] == "200000" and final[0]["dtmf"] == "1"

    fake.lose_callbacks()
    send(sms, PHONE[2], out_id="att-lost")
    fake.drain()
    assert len(receiver.bodies("/aliyun/sms-report")) == 1
    (lost,) = fake.dropped_callbacks()
    assert lost.kind == "SmsReport" and lost.payload[0]["out_id"] == "att-lost"


def test_keys_seen_counts_a_resent_out_id(fake: FakeAliyun, sms: SmsClient) -> None:
    send(sms, out_id="warn-42-sun")
    send(sms, out_id="warn-42-sun")
    assert fake.keys_seen().count("warn-42-sun") == 2
