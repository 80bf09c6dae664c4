"""The fake Tencent Cloud (tests/fakes/tencent_server.py) driven by the REAL tencentcloud SDK clients
(SmsClient sms 2021-01-11, VmsClient vms 2020-09-02) over 127.0.0.1, no mocks: what it accepts, what
it refuses and in which form (an SDK exception for whole-request refusals, a per-number ``Code`` in
``SendStatusSet`` otherwise), and the callbacks it pushes to a tiny local receiver."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.sign import Sign
from tencentcloud.sms.v20210111 import models as sms_models
from tencentcloud.sms.v20210111.sms_client import SmsClient
from tencentcloud.vms.v20200902 import models as vms_models
from tencentcloud.vms.v20200902.vms_client import VmsClient

from tests.fakes.tencent_server import (
    CALLBACK_OK,
    MAX_NUMBERS_PER_SEND,
    TEMPLATE_PARAM_MAX_CHARS,
    FakeTencent,
    Received,
)

SECRET_ID = "AKIDfakeJiaoying000000000000000000001"
SECRET_KEY = "fakeJiaoyingSecretKey0000000000001"
SMS_APP = "1400000001"
VOICE_APP = "1400000002"
SIGN = "某某县应急管理局"
SMS_TEMPLATE = "100001"  # 3 parameters
VOICE_TEMPLATE = "200001"  # 2 parameters
PARAMS = ["暴雨红色", "青溪镇", "立即转移"]
A, B, C = "+8613800000001", "+8613800000002", "+8613800000003"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the environment may carry the SDK's requests anywhere but 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def fake() -> Iterator[FakeTencent]:
    server = FakeTencent(secret_id=SECRET_ID, secret_key=SECRET_KEY, sms_app_id=SMS_APP, voice_app_id=VOICE_APP,
                         signs={SIGN}, templates={SMS_TEMPLATE: 3, VOICE_TEMPLATE: 2})
    server.start()
    yield server
    server.stop()


class Receiver:
    """A tiny callback receiver on 127.0.0.1 answering Tencent's expected ``{"result":0,"errmsg":"OK"}``."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append((self.path, json.loads(body)))
                receiver.arrived.set()
                data = json.dumps(CALLBACK_OK).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def profile(fake: FakeTencent, timeout: float = 5, method: str = "POST") -> ClientProfile:
    """Exactly how a real client is pointed at the fake."""
    return ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=fake.endpoint, reqTimeout=timeout,
                                                 reqMethod=method))


def sms(fake: FakeTencent, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY, **kw: Any) -> SmsClient:
    return SmsClient(Credential(secret_id, secret_key), "ap-guangzhou", profile(fake, **kw))


def vms(fake: FakeTencent, **kw: Any) -> VmsClient:
    return VmsClient(Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou", profile(fake, **kw))


def send_sms(client: SmsClient, numbers: Sequence[str], *, template: str = SMS_TEMPLATE,
             params: Sequence[str] = PARAMS, sign: str = SIGN, app: str = SMS_APP,
             context: str = "attempt-1") -> sms_models.SendSmsResponse:
    request = sms_models.SendSmsRequest()
    request.PhoneNumberSet = list(numbers)
    request.SmsSdkAppId = app
    request.SignName = sign
    request.TemplateId = template
    request.TemplateParamSet = list(params)
    request.SessionContext = context
    return client.SendSms(request)


def send_tts(client: VmsClient, number: str = A, *, template: str = VOICE_TEMPLATE,
             params: Sequence[str] = ("暴雨红色", "立即转移"),
             context: str = "call-1") -> vms_models.SendTtsVoiceResponse:
    request = vms_models.SendTtsVoiceRequest()
    request.TemplateId = template
    request.CalledNumber = number
    request.VoiceSdkAppid = VOICE_APP
    request.TemplateParamSet = list(params)
    request.PlayTimes = 2
    request.SessionContext = context
    return client.SendTtsVoice(request)


def refusal(call: Any) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value


def codes(response: sms_models.SendSmsResponse) -> dict[str, str]:
    return {s.PhoneNumber: s.Code for s in response.SendStatusSet}


# -- accepted sends -------------------------------------------------------------------------------


def test_sms_sent_and_recorded(fake: FakeTencent) -> None:
    # Good input: one mainland number, approved sign and template, three parameters.
    response = send_sms(sms(fake), [A])
    (status,) = response.SendStatusSet
    assert (status.Code, status.Message, status.PhoneNumber, status.IsoCode) == ("Ok", "send success", A, "CN")
    assert status.Fee == 1 and status.SessionContext == "attempt-1" and status.SerialNo.startswith("5000:")
    assert response.RequestId
    (record,) = fake.messages()
    assert record.action == "SendSms" and record.numbers == (A,) and record.template_params == PARAMS
    assert record.params["SignName"] == SIGN and record.session_context == "attempt-1"
    assert record.serial(A) == status.SerialNo and record.region == "ap-guangzhou" and record.secret_id == SECRET_ID
    assert record.headers["X-TC-Version"] == "2021-01-11"
    assert fake.keys_seen() == ["attempt-1"]


def test_sms_national_forms_of_a_mainland_number_are_answered_in_e164(fake: FakeTencent) -> None:
    # Tencent also takes 0086…, 86… and 11 bare digits for the mainland and answers them as +86….
    response = send_sms(sms(fake), ["008613800000001", "8613800000002", "13800000003"])
    assert codes(response) == {A: "Ok", B: "Ok", C: "Ok"}


def test_sms_signed_get_request_is_accepted(fake: FakeTencent) -> None:
    # The SDK's GET form (flattened query string, signed as the canonical query) verifies too.
    response = send_sms(sms(fake, method="GET"), [A, B])
    assert codes(response) == {A: "Ok", B: "Ok"}
    assert fake.messages()[0].template_params == PARAMS


def test_batch_of_three_with_one_malformed_number_fails_only_that_number(fake: FakeTencent) -> None:
    # Bad input: the middle number of a batch is too short; the other two are sent.
    response = send_sms(sms(fake), [A, "+86138000", C])
    assert [s.Code for s in response.SendStatusSet] == ["Ok", "InvalidParameterValue.IncorrectPhoneNumber", "Ok"]
    bad = response.SendStatusSet[1]
    assert (bad.SerialNo, bad.Fee, bad.PhoneNumber) == ("", 0, "+86138000")
    (record,) = fake.messages()
    assert record.ok_numbers == [A, C] and set(record.serials) == {A, C}


def test_send_tts_voice_accepted_and_recorded(fake: FakeTencent) -> None:
    # Good input: a TTS notice with the voice app, approved template and two parameters.
    response = send_tts(vms(fake))
    assert response.SendStatus.CallId and response.SendStatus.SessionContext == "call-1"
    (call,) = fake.calls()
    assert call.action == "SendTtsVoice" and call.call_id == response.SendStatus.CallId
    assert call.numbers == (A,) and call.template_params == ["暴雨红色", "立即转移"] and call.params["PlayTimes"] == 2
    assert call.headers["X-TC-Version"] == "2020-09-02"
    assert fake.keys_seen() == ["call-1"]


# -- authentication -------------------------------------------------------------------------------


def test_wrong_secret_key_is_refused_with_signature_failure(fake: FakeTencent) -> None:
    # Bad input: the right SecretId signed with another SecretKey.
    error = refusal(lambda: send_sms(sms(fake, secret_key="not-the-secret-key"), [A]))
    assert error.code == "AuthFailure.SignatureFailure" and error.requestId
    assert fake.received() == [] and fake.refused == 1


def test_unknown_secret_id_is_refused(fake: FakeTencent) -> None:
    # Bad input: a SecretId the account does not have.
    error = refusal(lambda: send_sms(sms(fake, secret_id="AKIDunknown0000000000000000000000000"), [A]))
    assert error.code == "AuthFailure.SecretIdNotFound"
    assert fake.received() == []


def test_timestamp_more_than_five_minutes_off_is_signature_expire(fake: FakeTencent) -> None:
    # Bad input: the caller's clock is 10 minutes behind the server's.
    fake.clock = lambda: time.time() + 600
    assert refusal(lambda: send_sms(sms(fake), [A])).code == "AuthFailure.SignatureExpire"


def signed_headers(fake: FakeTencent, body: bytes, *, service: str = "sms", host: str | None = None,
                   timestamp: int | None = None) -> dict[str, str]:
    """Headers signed the way the SDK signs them (its own Sign.sign_tc3), for replay/tamper checks."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    host = host or fake.endpoint
    canonical = "\n".join(["POST", "/", "", f"content-type:application/json\nhost:{host}\n", "content-type;host",
                           hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = Sign.sign_tc3(SECRET_KEY, date, service, to_sign)
    return {"Content-Type": "application/json", "Host": host, "X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(timestamp), "X-TC-Region": "ap-guangzhou",
            "Authorization": f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{scope}, SignedHeaders=content-type;host, "
                             f"Signature={signature}"}


def test_signature_covers_body_host_and_service(fake: FakeTencent) -> None:
    # Bad input: a validly signed request replayed with another body, another Host, or signed for "vms".
    body = json.dumps({"PhoneNumberSet": [A], "SmsSdkAppId": SMS_APP, "SignName": SIGN, "TemplateId": SMS_TEMPLATE,
                       "TemplateParamSet": PARAMS}).encode()

    def post(data: bytes, headers: dict[str, str]) -> dict[str, Any]:
        with httpx.Client(trust_env=False) as client:
            return client.post(fake.url, content=data, headers=headers).json()["Response"]

    assert post(body, signed_headers(fake, body))["SendStatusSet"][0]["Code"] == "Ok"
    tampered = body.replace(A.encode(), B.encode())
    assert post(tampered, signed_headers(fake, body))["Error"]["Code"] == "AuthFailure.SignatureFailure"
    other_host = signed_headers(fake, body, host="sms.tencentcloudapi.com") | {"Host": fake.endpoint}
    assert post(body, other_host)["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert post(body, signed_headers(fake, body, service="vms"))["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert [r.numbers for r in fake.messages()] == [(A,)]


# -- whole-request refusals (the SDK raises) ------------------------------------------------------


def test_unknown_template_is_refused(fake: FakeTencent) -> None:
    # Bad input: a template id that is not approved for this account.
    error = refusal(lambda: send_sms(sms(fake), [A], template="999999"))
    assert error.code == "FailedOperation.TemplateIncorrectOrUnapproved"
    (record,) = fake.received("SendSms")
    assert record.error == error.code and fake.messages() == [] and fake.keys_seen() == []


def test_unapproved_sign_is_refused(fake: FakeTencent) -> None:
    # Bad input: a sign name that was never approved.
    error = refusal(lambda: send_sms(sms(fake), [A], sign="某某县气象局"))
    assert error.code == "FailedOperation.SignatureIncorrectOrUnapproved"


def test_unknown_sdk_app_id_is_refused(fake: FakeTencent) -> None:
    # Bad input: the voice app's id used for SMS.
    assert refusal(lambda: send_sms(sms(fake), [A], app=VOICE_APP)).code == "InvalidParameterValue.SdkAppIdNotExist"


def test_non_mainland_number_is_refused(fake: FakeTencent) -> None:
    # Bad input: a US number with a mainland template; then a batch mixing it with a mainland number.
    alone = refusal(lambda: send_sms(sms(fake), ["+14155550100"]))
    assert alone.code == "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone"
    mixed = refusal(lambda: send_sms(sms(fake), [A, "+14155550100"]))
    assert mixed.code == "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"


def test_too_many_numbers_is_refused(fake: FakeTencent) -> None:
    # Bad input: 201 numbers in one SendSms (the limit is 200).
    numbers = [f"+86138{i:08d}" for i in range(MAX_NUMBERS_PER_SEND + 1)]
    assert refusal(lambda: send_sms(sms(fake), numbers)).code == "LimitExceeded.PhoneNumberCountLimit"


def test_request_limit_exceeded_when_throttled(fake: FakeTencent) -> None:
    # Provider state: API rate limit hit for one request; the next one goes through.
    fake.throttle()
    assert refusal(lambda: send_sms(sms(fake), [A])).code == "RequestLimitExceeded"
    assert codes(send_sms(sms(fake), [A])) == {A: "Ok"}
    assert [outcome for _, outcome in fake.attempts()] == ["RequestLimitExceeded", "ok"]


# -- per-number refusals (HTTP 200, the SDK does not raise) ----------------------------------------


def test_wrong_parameter_count_fails_every_number(fake: FakeTencent) -> None:
    # Bad input: two parameters for a three-variable template.
    response = send_sms(sms(fake), [A, B], params=PARAMS[:2])
    assert set(codes(response).values()) == {"FailedOperation.TemplateParamSetNotMatchApprovedTemplate"}
    assert all(s.SerialNo == "" and s.Fee == 0 for s in response.SendStatusSet)


def test_over_long_parameter_fails_and_the_limit_itself_passes(fake: FakeTencent) -> None:
    # Bad input: a variable one character over the per-variable limit (12).
    too_long = "汛" * (TEMPLATE_PARAM_MAX_CHARS + 1)
    response = send_sms(sms(fake), [A], params=[too_long, "青溪镇", "立即转移"])
    assert codes(response) == {A: "InvalidParameterValue.TemplateParameterLengthLimit"}
    at_limit = send_sms(sms(fake), [A], params=["汛" * TEMPLATE_PARAM_MAX_CHARS, "青溪镇", "立即转移"])
    assert codes(at_limit) == {A: "Ok"}


def test_daily_limit_on_one_number_fails_only_that_number(fake: FakeTencent) -> None:
    # Provider state: B has reached its daily SMS limit.
    fake.daily_limit(B)
    response = send_sms(sms(fake), [A, B, C])
    assert codes(response) == {A: "Ok", B: "LimitExceeded.PhoneNumberDailyLimit", C: "Ok"}


def test_arrears_fails_every_number(fake: FakeTencent) -> None:
    # Provider state: the SMS package is used up.
    fake.arrears()
    response = send_sms(sms(fake), [A, B])
    assert set(codes(response).values()) == {"FailedOperation.InsufficientBalanceInSmsPackage"}
    fake.arrears(False)
    assert codes(send_sms(sms(fake), [A])) == {A: "Ok"}


# -- transport failures ---------------------------------------------------------------------------


def test_5xx_is_a_server_network_error(fake: FakeTencent) -> None:
    # Provider outage: the gateway answers 502 with an HTML page.
    fake.fail_next(502)
    error = refusal(lambda: send_sms(sms(fake), [A]))
    assert error.code == "ServerNetworkError"
    assert fake.received() == [] and fake.attempts() == [("SendSms", "http:502")]


def test_hang_turns_into_the_sdks_timeout(fake: FakeTencent) -> None:
    # Provider outage: no answer at all; the SDK's reqTimeout (0.3 s) gives up.
    fake.hang_next(3)
    started = time.monotonic()
    error = refusal(lambda: send_sms(sms(fake, timeout=0.3), [A]))
    assert error.code == "ClientNetworkError" and time.monotonic() - started < 2
    assert fake.received() == [] and fake.attempts() == [("SendSms", "hang")]


# -- voice refusals ------------------------------------------------------------------------------


def test_voice_refusals_are_raised(fake: FakeTencent) -> None:
    # Bad input: a malformed called number, an unknown template, a wrong parameter count; then arrears.
    client = vms(fake)
    assert refusal(lambda: send_tts(client, "+86138")).code == "InvalidParameterValue.CalledNumberVerifyFail"
    assert refusal(lambda: send_tts(client, template="999999")).code == "FailedOperation.TemplateIncorrectOrUnapproved"
    assert refusal(lambda: send_tts(client, params=["一"])).code == "FailedOperation.TemplateIncorrectOrUnapproved"
    fake.daily_limit(B)
    assert refusal(lambda: send_tts(client, B)).code == "LimitExceeded.DeliveryFrequencyLimit"
    fake.arrears()
    assert refusal(lambda: send_tts(client)).code == "FailedOperation.InsufficientBalanceInVoicePackage"
    assert fake.calls() == [] and len(fake.received("SendTtsVoice")) == 5


# -- callbacks --------------------------------------------------------------------------------------


def test_status_report_reply_and_keypress_posted_to_a_local_receiver(fake: FakeTencent, receiver: Receiver) -> None:
    # Tencent's pushes, in their documented JSON shapes, to a receiver on 127.0.0.1.
    fake.report_context = True
    send_sms(sms(fake), [A, B], context="attempt-7")
    message = fake.messages()[0]
    delivered = fake.report(receiver.url("/sms/status"), message, A)
    failed = fake.report(receiver.url("/sms/status"), message, B, success=False)
    replied = fake.reply(receiver.url("/sms/reply"), A, "收到")
    send_tts(vms(fake))
    (call,) = fake.calls()
    pressed = fake.keypress(receiver.url("/voice"), call, keys="1")
    ended = fake.call_status(receiver.url("/voice"), call, result="0")
    assert all(c.ok and c.answer == CALLBACK_OK for c in (delivered, failed, replied, pressed, ended))

    paths = [path for path, _ in receiver.posts]
    assert paths == ["/sms/status", "/sms/status", "/sms/reply", "/voice", "/voice"]
    (report,) = receiver.posts[0][1]  # an array
    assert set(report) == {"user_receive_time", "nationcode", "mobile", "report_status", "errmsg", "description",
                           "sid", "ext"}
    assert (report["nationcode"], report["mobile"], report["report_status"], report["errmsg"]) == (
        "86", "13800000001", "SUCCESS", "DELIVRD")
    assert report["sid"] == message.serial(A) and report["ext"] == "attempt-7"
    assert time.strptime(report["user_receive_time"], "%Y-%m-%d %H:%M:%S")
    assert receiver.posts[1][1][0]["report_status"] == "FAIL" and receiver.posts[1][1][0]["sid"] == message.serial(B)
    reply = receiver.posts[2][1]
    assert set(reply) == {"extend", "mobile", "nationcode", "sign", "text", "time"}
    assert (reply["mobile"], reply["nationcode"], reply["sign"], reply["text"]) == ("13800000001", "86", SIGN, "收到")
    assert isinstance(reply["time"], int)
    key = receiver.posts[3][1]["voicekey_callback"]
    assert key == {"call_from": "", "callid": call.call_id, "keypress": "1", "mobile": "13800000001",
                   "nationcode": "86"}
    status = receiver.posts[4][1]["voiceprompt_callback"]
    assert set(status) == {"result", "accept_time", "call_from", "callid", "end_calltime", "fee", "mobile",
                           "nationcode", "start_calltime"}
    assert status["result"] == "0" and status["callid"] == call.call_id
    assert all(isinstance(v, str) for v in status.values())


def test_callbacks_through_a_poster_object(fake: FakeTencent, receiver: Receiver) -> None:
    # A target with .post(url, json=...) (here an httpx.Client; a FastAPI TestClient works the same).
    send_sms(sms(fake), [A])
    with httpx.Client(base_url=receiver.url(""), trust_env=False) as client:
        callback = fake.report(client, fake.messages()[0], A, url="/hook/sms")
    assert callback.ok and receiver.posts[0][0] == "/hook/sms"


def test_auto_callbacks_and_lost_callbacks(receiver: Receiver) -> None:
    # Automatic mode: a report per accepted number and a call status after each send; then losses.
    fake = FakeTencent(secret_id=SECRET_ID, secret_key=SECRET_KEY, sms_app_id=SMS_APP, voice_app_id=VOICE_APP,
                       signs={SIGN}, templates={SMS_TEMPLATE: 3, VOICE_TEMPLATE: 2}, auto_callbacks=True,
                       sms_status_url=receiver.url("/sms/status"), voice_status_url=receiver.url("/voice"),
                       auto_keypress="1")
    fake.start()
    try:
        send_sms(sms(fake), [A, "+86138", B])
        send_tts(vms(fake))
        fake.wait_callbacks()
        sms_posts = [body for path, body in receiver.posts if path == "/sms/status"]
        assert [item["mobile"] for item in sms_posts[0]] == ["13800000001", "13800000002"]  # one array, Ok numbers
        voice = [body for path, body in receiver.posts if path == "/voice"]
        assert [next(iter(body)) for body in voice] == ["voicekey_callback", "voiceprompt_callback"]
        assert all(c.ok for c in fake.callbacks())

        fake.lose_callbacks()
        before = len(receiver.posts)
        send_sms(sms(fake), [C], context="attempt-9")
        fake.wait_callbacks()
        assert len(receiver.posts) == before and fake.callbacks("sms_status")[-1].lost
        # The delivery happened all the same: polling sees it.
        pulled = sms(fake).PullSmsSendStatusByPhoneNumber(pull_request(C, int(time.time()) - 60))
        assert [p.SerialNo for p in pulled.PullSmsSendStatusSet] == [fake.messages()[-1].serial(C)]
    finally:
        fake.stop()


def pull_request(number: str, begin: int) -> sms_models.PullSmsSendStatusByPhoneNumberRequest:
    request = sms_models.PullSmsSendStatusByPhoneNumberRequest()
    request.PhoneNumber = number
    request.SmsSdkAppId = SMS_APP
    request.BeginTime = begin
    request.EndTime = int(time.time()) + 60
    request.Offset = 0
    request.Limit = 10
    return request


def test_pull_send_status_by_number_and_time_range(fake: FakeTencent) -> None:
    # Looking a message up after the fact: by phone number and time range, with SerialNo and SessionContext.
    fake.report_context = True
    send_sms(sms(fake), [A, B], context="attempt-3")
    message = fake.messages()[0]
    client = sms(fake)
    assert client.PullSmsSendStatusByPhoneNumber(pull_request(A, int(time.time()) - 60)).PullSmsSendStatusSet == []
    fake.report(None, message, A)  # the delivery report arrives (no callback pushed)
    (found,) = client.PullSmsSendStatusByPhoneNumber(pull_request(A, int(time.time()) - 60)).PullSmsSendStatusSet
    assert (found.SerialNo, found.SessionContext, found.ReportStatus, found.PhoneNumber, found.SubscriberNumber) == (
        message.serial(A), "attempt-3", "SUCCESS", A, "13800000001")
    later = client.PullSmsSendStatusByPhoneNumber(pull_request(A, int(time.time()) + 30)).PullSmsSendStatusSet
    assert later == []
    queue = sms_models.PullSmsSendStatusRequest()
    queue.SmsSdkAppId, queue.Limit = SMS_APP, 100
    assert [p.SerialNo for p in client.PullSmsSendStatus(queue).PullSmsSendStatusSet] == [message.serial(A)]
    assert client.PullSmsSendStatus(queue).PullSmsSendStatusSet == []  # handed out once


def test_keys_seen_counts_duplicate_sends(fake: FakeTencent) -> None:
    # A retried attempt shows up as a duplicate SessionContext; refused requests are not counted.
    client = sms(fake)
    send_sms(client, [A], context="attempt-1")
    send_sms(client, [A], context="attempt-1")
    send_sms(client, [B], context="attempt-2")
    refusal(lambda: send_sms(client, [C], template="999999", context="attempt-3"))
    assert Counter(fake.keys_seen()) == {"attempt-1": 2, "attempt-2": 1}
    assert isinstance(fake.received()[0], Received)
