"""payments.gateway against the WeChat Pay emulator over real HTTP (/_emulator/pay).

Each test generates a merchant key pair, tells the emulator the public half and the APIv3 key,
and builds a gateway whose verifier starts with NO platform certificate: the first answer's
serial is unknown, so the gateway downloads /v3/certificates once and goes on.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payments import codepay
from payments.codepay import Answer, Call, Step
from payments.exceptions import MissingSignature, SignatureInvalid
from payments.gateway import BillHashMismatch, BillRefused, WechatPayGateway, WxPayApiError, WxPayTimeout
from payments.wxpay_v3 import PlatformCertificateStore, WechatPayVerifier, decrypt_resource

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
NOTIFY = "https://shop.example.com/pay/notify"


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def pay_url(base_url: str) -> str:
    return f"{base_url}/_emulator/pay"


@pytest.fixture
def apiv3_key() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def gateway(app, pay_url, merchant_key, apiv3_key) -> WechatPayGateway:
    pem = merchant_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    r = requests.post(f"{pay_url}/control/merchant", json={
        "mchid": MCHID, "appid": APPID, "serial_no": SERIAL, "public_key": pem,
        "apiv3_key": apiv3_key}, timeout=5)
    assert r.status_code == 200, r.text
    return WechatPayGateway(mchid=MCHID, appid=APPID, serial_no=SERIAL, private_key=merchant_key,
                            apiv3_key=apiv3_key, verifier=WechatPayVerifier(PlatformCertificateStore()),
                            api_base=pay_url, timeout=(2, 3))


def control(pay_url: str, what: str, **body) -> dict:
    r = requests.post(f"{pay_url}/control/{what}", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def emu_state(pay_url: str) -> dict:
    return requests.get(f"{pay_url}/control/state", timeout=5).json()


def out_no() -> str:
    return "T" + secrets.token_hex(10)


def test_native_order_query_close(gateway, pay_url):
    no = out_no()
    expire = datetime.now(timezone.utc) + timedelta(minutes=30)
    code_url = gateway.native(no, "一楼化妆品", 12_800, NOTIFY, time_expire=expire)
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    # the first answer carried an unknown serial: exactly one certificate download
    assert gateway.certificate_downloads == 1
    found = gateway.query_by_out_trade_no(no)
    assert found["trade_state"] == "NOTPAY" and found["amount"]["total"] == 12_800
    # repeating the same request gives the same answer; a different one is OUT_TRADE_NO_USED
    assert gateway.native(no, "一楼化妆品", 12_800, NOTIFY, time_expire=expire) == code_url
    with pytest.raises(WxPayApiError) as info:
        gateway.native(no, "一楼化妆品", 99, NOTIFY)
    assert (info.value.status, info.value.code, info.value.retryable) == (403, "OUT_TRADE_NO_USED", False)
    gateway.close(no)  # 204, verified over the empty body
    assert gateway.query_by_out_trade_no(no)["trade_state"] == "CLOSED"
    with pytest.raises(WxPayApiError) as info:
        gateway.query_by_out_trade_no("nope" + no)
    assert (info.value.status, info.value.code) == (404, "ORDER_NOT_EXIST")
    assert gateway.certificate_downloads == 1
    assert emu_state(pay_url)["calls"]["certificates"] == 1


def test_shopper_pays_native_and_jsapi(gateway, pay_url):
    no = out_no()
    code_url = gateway.native(no, "二楼女装", 5_000, NOTIFY)
    paid = control(pay_url, "pay", code_url=code_url, openid="oShopper1")
    assert paid["trade_state"] == "SUCCESS"
    found = gateway.query_by_out_trade_no(no)
    assert found["trade_state"] == "SUCCESS" and found["payer"]["openid"] == "oShopper1"
    assert gateway.query_by_transaction_id(found["transaction_id"])["out_trade_no"] == no
    with pytest.raises(WxPayApiError) as info:
        gateway.close(no)
    assert info.value.code == "TRADE_ERROR"

    no2 = out_no()
    prepay_id = gateway.jsapi(no2, "三楼男装", 300, NOTIFY, payer_openid="oShopper2")
    assert prepay_id.startswith("wx")
    params = gateway.jsapi_pay_params(prepay_id)
    assert params["package"] == f"prepay_id={prepay_id}"
    control(pay_url, "pay", prepay_id=prepay_id)
    assert gateway.query_by_out_trade_no(no2)["trade_state"] == "SUCCESS"


def test_bad_merchant_signature_is_sign_error(gateway, pay_url):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = WechatPayGateway(mchid=MCHID, appid=APPID, serial_no=SERIAL, private_key=other,
                              apiv3_key=gateway.apiv3_key, verifier=gateway.verifier, api_base=pay_url)
    gateway.native(out_no(), "x", 1, NOTIFY)  # fetch certificates with the good key
    with pytest.raises(WxPayApiError) as info:
        forged.native(out_no(), "x", 1, NOTIFY)
    assert (info.value.status, info.value.code, info.value.retryable) == (401, "SIGN_ERROR", False)
    with pytest.raises(WxPayApiError) as info:  # signed but incomplete: PARAM_ERROR
        gateway._call("POST", "/v3/pay/transactions/native", body={"appid": APPID})
    assert info.value.code == "PARAM_ERROR" and info.value.status == 400


def test_tampered_and_unsigned_answers_are_rejected(gateway, pay_url):
    gateway.native(out_no(), "x", 1, NOTIFY)
    control(pay_url, "faults", api="native", tamper=True)
    with pytest.raises(SignatureInvalid):
        gateway.native(out_no(), "x", 1, NOTIFY)
    control(pay_url, "faults", api="query", unsigned=True)
    with pytest.raises(MissingSignature):
        gateway.query_by_out_trade_no("whatever")
    # an extra field slipped in by the emulator (as a proxy could) is fine only when signed
    control(pay_url, "faults", api="query", tamper=True)
    with pytest.raises(SignatureInvalid):
        gateway.query_by_out_trade_no("whatever")


def test_unknown_serial_downloads_certificates_once_then_succeeds(gateway, pay_url):
    gateway.native(out_no(), "x", 1, NOTIFY)
    gateway.native(out_no(), "x", 1, NOTIFY)
    assert gateway.certificate_downloads == 1
    new_serial = control(pay_url, "rotate-certificate")["serial"]
    assert new_serial not in gateway.verifier.certificates.serials()
    gateway.native(out_no(), "x", 1, NOTIFY)
    assert gateway.certificate_downloads == 2
    assert new_serial in gateway.verifier.certificates.serials()
    gateway.native(out_no(), "x", 1, NOTIFY)
    assert gateway.certificate_downloads == 2
    assert emu_state(pay_url)["calls"]["certificates"] == 2


def test_errors_are_typed_with_retryability(gateway, pay_url):
    no = out_no()
    control(pay_url, "faults", api="native", code="SYSTEM_ERROR")
    with pytest.raises(WxPayApiError) as info:
        gateway.native(no, "x", 1, NOTIFY)
    assert (info.value.status, info.value.code, info.value.retryable) == (500, "SYSTEM_ERROR", True)
    assert gateway.native(no, "x", 1, NOTIFY)  # the same parameters, retried: fine
    gateway.timeout = (1.0, 0.5)  # bounded: a hung WeChat costs the till half a second
    control(pay_url, "faults", api="query", delay=1.5)
    started = time.monotonic()
    with pytest.raises(WxPayTimeout) as info:
        gateway.query_by_out_trade_no(no)
    assert info.value.retryable and info.value.code == "TIMEOUT"
    assert time.monotonic() - started < 1.4


def _submit(gateway, auth_code: str, no: str) -> codepay.Answer:
    answer = gateway.codepay(no, "一楼收银台", 2_000, auth_code, "store-01", "10.0.0.8")
    return answer


def _query_result(gateway, no: str) -> str:
    try:
        return gateway.query_by_out_trade_no(no)["trade_state"]
    except WxPayTimeout:
        return "TIMEOUT"
    except WxPayApiError as exc:
        return exc.code


def _reverse_answer(gateway, no: str) -> tuple[str, bool]:
    try:
        return "SUCCESS", gateway.reverse(no)
    except WxPayApiError as exc:
        return exc.code, False


def test_codepay_userpaying_then_query_success_and_reverse(gateway, pay_url):
    auth_code = control(pay_url, "payment-code", seconds=0.4, outcome="pay", openid="oCode1")["auth_code"]
    assert codepay.valid_auth_code(auth_code)
    no = out_no()
    answer = _submit(gateway, auth_code, no)
    assert (answer.result, answer.status) == ("USERPAYING", 202)
    deadline = time.monotonic() + 5
    while gateway.query_by_out_trade_no(no)["trade_state"] == "USERPAYING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert gateway.query_by_out_trade_no(no)["trade_state"] == "SUCCESS"
    assert gateway.reverse(no) is False  # reverse after payment refunds the shopper
    assert gateway.query_by_out_trade_no(no)["trade_state"] == "REVOKED"
    # payment-code failures come back as answers, not exceptions
    poor = control(pay_url, "payment-code", outcome="notenough")["auth_code"]
    assert _submit(gateway, poor, out_no()).result == "NOTENOUGH"
    assert _submit(gateway, "123", out_no()).result == "PARAM_ERROR"
    instant = control(pay_url, "payment-code", seconds=0)["auth_code"]
    assert _submit(gateway, instant, out_no()).result == "SUCCESS"
    # reverse recall=Y (as WeChat's v2 answer) and a 5xx both mean "call reverse again"
    control(pay_url, "faults", api="reverse", extra={"recall": "Y"})
    assert gateway.reverse(no) is True
    control(pay_url, "faults", api="reverse", code="SYSTEM_ERROR")
    assert gateway.reverse(no) is True


def _drive_schedule(gateway, no: str, first: codepay.Answer, factor: float) -> tuple[codepay.Decision, list[Answer]]:
    """Run the pure schedule on the emulator's real answers with simulated time: simulated
    seconds pass `factor` times faster than real ones."""
    t0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    real0 = time.monotonic()
    sim = lambda: t0 + timedelta(seconds=(time.monotonic() - real0) * factor)  # noqa: E731
    history = [Answer(Call.SUBMIT, t0, first.result)]
    for _ in range(40):
        decision = codepay.next_step(t0, history, sim())
        if decision.done:
            return decision, history
        wait = (decision.at - sim()).total_seconds() / factor
        if wait > 0:
            time.sleep(wait)
        if decision.step is Step.QUERY:
            history.append(Answer(Call.QUERY, max(sim(), decision.at), _query_result(gateway, no)))
        else:
            result, recall = _reverse_answer(gateway, no)
            history.append(Answer(Call.REVERSE, max(sim(), decision.at), result, recall))
    raise AssertionError(f"schedule did not settle: {history}")


def test_codepay_schedule_shopper_pays(gateway, pay_url):
    auth_code = control(pay_url, "payment-code", seconds=0.35, outcome="pay")["auth_code"]
    no = out_no()
    first = _submit(gateway, auth_code, no)
    assert first.result == "USERPAYING"
    decision, history = _drive_schedule(gateway, no, first, factor=25)
    assert decision.step is Step.DONE_PAID, history
    assert [a.call for a in history][:2] == [Call.SUBMIT, Call.QUERY]
    assert all(a.call is not Call.REVERSE for a in history)


def test_codepay_schedule_shopper_gives_up(gateway, pay_url):
    auth_code = control(pay_url, "payment-code", seconds=0.4, outcome="give_up")["auth_code"]
    no = out_no()
    first = _submit(gateway, auth_code, no)
    assert first.result == "USERPAYING"
    decision, history = _drive_schedule(gateway, no, first, factor=25)
    assert decision.step is Step.DONE_REVERSED, history
    queries = [a for a in history if a.call is Call.QUERY]
    assert queries and all(a.result == "USERPAYING" for a in queries)
    reverse = next(a for a in history if a.call is Call.REVERSE)
    assert reverse.at - history[0].at >= codepay.QUERY_WINDOW  # only after the 45 s window
    assert gateway.query_by_out_trade_no(no)["trade_state"] == "REVOKED"


def test_reverse_while_shopper_types_says_userpaying(gateway, pay_url):
    auth_code = control(pay_url, "payment-code", seconds=30, outcome="pay")["auth_code"]
    no = out_no()
    assert _submit(gateway, auth_code, no).result == "USERPAYING"
    with pytest.raises(WxPayApiError) as info:
        gateway.reverse(no)
    assert info.value.code == "USERPAYING"
    assert codepay.next_step(datetime(2026, 1, 1, tzinfo=timezone.utc),
                             [Answer(Call.SUBMIT, datetime(2026, 1, 1, tzinfo=timezone.utc), "USERPAYING"),
                              Answer(Call.REVERSE, datetime(2026, 1, 1, 0, 0, 20, tzinfo=timezone.utc),
                                     info.value.code)],
                             datetime(2026, 1, 1, 0, 0, 20, tzinfo=timezone.utc)).step is Step.QUERY


def test_refund_and_query_refund(gateway, pay_url):
    no = out_no()
    gateway.native(no, "四楼家电", 10_000, NOTIFY)
    control(pay_url, "pay", out_trade_no=no)
    with pytest.raises(WxPayApiError) as info:
        gateway.refund("R" + no, no, 100, 9_999)
    assert info.value.code == "PARAM_ERROR"
    refund = gateway.refund("R" + no, no, 4_000, 10_000, notify_url=NOTIFY, reason="尺码不合")
    assert refund["status"] == "PROCESSING" and refund["amount"]["refund"] == 4_000
    assert gateway.refund("R" + no, no, 4_000, 10_000, notify_url=NOTIFY, reason="尺码不合")["refund_id"] \
        == refund["refund_id"]  # the same out_refund_no and parameters: the same refund
    with pytest.raises(WxPayApiError) as info:
        gateway.refund("R2" + no, no, 6_001, 10_000)
    assert info.value.code == "INVALID_REQUEST"
    deadline = time.monotonic() + 5
    while gateway.query_refund("R" + no)["status"] != "SUCCESS":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert gateway.query_by_out_trade_no(no)["trade_state"] == "REFUND"
    with pytest.raises(WxPayApiError) as info:
        gateway.query_refund("nope")
    assert info.value.status == 404


def test_trade_bill_sha1_checked_and_tampered_file_refused(gateway, pay_url):
    no = out_no()
    gateway.native(no, "五楼童装", 2_345, NOTIFY)
    control(pay_url, "pay", out_trade_no=no)
    today = datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m-%d")
    content = gateway.trade_bill(today)
    lines = content.decode("utf-8").split("\r\n")
    assert lines[0].startswith("交易时间,公众账号ID,商户号")
    assert any(f"`{no}," in line and "`23.45," in line for line in lines[1:])
    assert lines[-3].startswith("总交易单数") and lines[-2].startswith("`1,`23.45")
    control(pay_url, "faults", api="billdownload", tamper=True)
    with pytest.raises(BillHashMismatch):
        gateway.trade_bill(today)
    with pytest.raises(WxPayApiError) as info:
        gateway.trade_bill("2001-01-01")
    assert info.value.code == "NO_STATEMENT_EXIST"
    # the signed answer names the hash, so tampering it there is caught by the signature
    control(pay_url, "faults", api="tradebill", tamper=True)
    with pytest.raises(SignatureInvalid):
        gateway.trade_bill(today)
    assert hashlib.sha1(content).hexdigest()


class _Receiver(BaseHTTPRequestHandler):
    fail_first = 2
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        ok = len(type(self).received) > type(self).fail_first
        self.send_response(204 if ok else 500)
        self.end_headers()
        if not ok:
            pass

    def log_message(self, *args):
        pass


def test_notifications_signed_encrypted_and_retried(gateway, pay_url, apiv3_key):
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/pay/notify"
        control(pay_url, "config", notify_time_factor=1000)  # 15 s -> 15 ms
        no = out_no()
        gateway.native(no, "六楼运动", 888, url)
        control(pay_url, "pay", out_trade_no=no)
        deadline = time.monotonic() + 5
        while not any(n["delivered"] for n in emu_state(pay_url)["notifications"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        note = emu_state(pay_url)["notifications"][0]
        assert [a["status"] for a in note["attempts"]] == [500, 500, 204]
        headers, body = _Receiver.received[-1]
        gateway.verifier.verify(headers, body)  # signed by the platform key
        notice = json.loads(body)
        assert notice["event_type"] == "TRANSACTION.SUCCESS"
        resource = json.loads(decrypt_resource(apiv3_key, notice["resource"]))
        assert resource["out_trade_no"] == no and resource["amount"]["total"] == 888
        assert resource["mchid"] == MCHID and resource["trade_state"] == "SUCCESS"

        gateway.refund("R" + no, no, 300, 888, notify_url=url)
        deadline = time.monotonic() + 5
        while len([n for n in emu_state(pay_url)["notifications"] if n["delivered"]]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        headers, body = _Receiver.received[-1]
        gateway.verifier.verify(headers, body)
        notice = json.loads(body)
        assert notice["event_type"] == "REFUND.SUCCESS"
        assert notice["resource"]["associated_data"] == "refund"
        resource = json.loads(decrypt_resource(apiv3_key, notice["resource"]))
        assert (resource["out_refund_no"], resource["refund_status"], resource["amount"]["refund"]) \
            == ("R" + no, "SUCCESS", 300)
    finally:
        server.shutdown()


def test_wechat_auto_revokes_unpaid_payment_code_order(gateway, pay_url):
    control(pay_url, "config", codepay_auto_revoke_seconds=0.3)  # 45 s, compressed
    auth_code = control(pay_url, "payment-code", seconds=10, outcome="pay")["auth_code"]
    no = out_no()
    assert _submit(gateway, auth_code, no).result == "USERPAYING"
    assert gateway.query_by_out_trade_no(no)["trade_state"] == "USERPAYING"
    time.sleep(0.4)
    assert gateway.query_by_out_trade_no(no)["trade_state"] == "REVOKED"
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    decision = codepay.next_step(t0, [Answer(Call.SUBMIT, t0, "USERPAYING"),
                                      Answer(Call.QUERY, t0 + timedelta(seconds=5), "REVOKED")],
                                 t0 + timedelta(seconds=5))
    assert decision.step is Step.DONE_REVERSED


def test_unsigned_5xx_is_retryable_and_foreign_bill_host_refused(gateway, pay_url):
    gateway.native(out_no(), "x", 1, NOTIFY)
    control(pay_url, "faults", api="query", code="SYSTEM_ERROR", unsigned=True)
    with pytest.raises(WxPayApiError) as info:
        gateway.query_by_out_trade_no("whatever")
    assert info.value.status == 500 and info.value.retryable
    no = out_no()
    gateway.native(no, "x", 100, NOTIFY)
    control(pay_url, "pay", out_trade_no=no)
    today = datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m-%d")
    # signed, but pointing elsewhere: the Authorization header must not travel to another host
    control(pay_url, "faults", api="tradebill", extra={"download_url": "http://evil.example/file?x=1"})
    with pytest.raises(BillRefused):
        gateway.trade_bill(today)
