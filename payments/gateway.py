"""WeChat Pay API v3 over HTTP: sign every request, verify every answer, raise typed errors.

Built from explicit arguments (no Flask, no settings): the caller passes mchid, appid, the
merchant certificate serial and private key, the APIv3 key, a `WechatPayVerifier` and the API
base (https://api.mch.weixin.qq.com in production, `<host>/_emulator/pay` under the emulator).

* Every request carries `Authorization: WECHATPAY2-SHA256-RSA2048 …` over the exact bytes sent
  (reference §10.1).
* Every answer is verified before its body is used (§10.2), errors included; a 204 is verified
  over the empty body. The only unsigned answers accepted are bill files, which are checked
  against the SHA1 the signed bill answer announced. An unsigned 5xx is still reported as a
  retryable error (nothing in it is used).
* An unknown Wechatpay-Serial makes the gateway download /v3/certificates once, decrypt them
  with the APIv3 key, check that download's own signature with them, add them to the verifier's
  store and verify the original answer again; a second unknown serial fails.
* Errors are `WxPayApiError` carrying WeChat's `code`, the HTTP `status` and `retryable`: whether
  the SAME request (same out_trade_no, same amounts) may be sent again (§10.6: 5xx,
  SYSTEM_ERROR, FREQUENCY_LIMITED, timeouts and connection failures). Timeouts are bounded.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.exceptions import MissingSignature, UnknownSerial, VerificationFailed, WxPayError
from payments.wxpay_v3 import (
    MerchantSigner,
    PlatformCertificateStore,
    WechatPayVerifier,
    api_v3_key,
    certificates_from_download,
)

# (connect, read) seconds: WeChat answers in well under a second; a hung call must not hold a
# till or a worker. A read timeout is "unknown" (retryable with the same parameters).
DEFAULT_TIMEOUT = (3.05, 10.0)
USER_AGENT = "dept-store-wx-service/1.0 (+requests)"
SHANGHAI = timezone(timedelta(hours=8))

# §10.6: retry 5xx with the same parameters. SYSTEM_ERROR (any status) likewise, and a
# frequency limit: nothing was processed, so the same request later is safe.
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "SYSTEMERROR", "BANK_ERROR", "FREQUENCY_LIMITED"})


class WxPayApiError(WxPayError):
    """WeChat answered with an error (or did not answer): its code, the HTTP status, and whether
    the same request may be repeated with the SAME parameters (never a new out_trade_no)."""

    def __init__(self, status: int, code: str, message: str = "", detail: Any = None,
                 retryable: bool = False) -> None:
        super().__init__(f"WeChat Pay {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.retryable = retryable


class WxPayTimeout(WxPayApiError):
    """No answer in time (or the connection failed): the outcome is unknown; query or retry."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "TIMEOUT", message, retryable=True)


class BillRefused(WxPayError):
    """The bill cannot be trusted: unknown hash_type, or a download_url on another host."""


class BillHashMismatch(BillRefused):
    """The downloaded bill's SHA1 differs from the signed hash_value: the file is refused."""


@dataclass(frozen=True)
class CodepayAnswer:
    """What the payment-code submit answered: SUCCESS, USERPAYING (202), WeChat's error code, or
    TIMEOUT; `retryable` as in WxPayApiError; `body` the verified JSON (the transaction on SUCCESS)."""

    result: str
    status: int
    retryable: bool = False
    body: dict[str, Any] = field(default_factory=dict)


def rfc3339(value: datetime | str) -> str:
    """time_expire as WeChat wants it: RFC 3339 with an offset (shown in Beijing time)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("time_expire must be timezone-aware")
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds")


class WechatPayGateway:
    """A v3 client for one direct merchant; thread-safe as far as `requests.Session` is."""

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        serial_no: str,
        private_key: rsa.RSAPrivateKey,
        apiv3_key: str | bytes,
        verifier: WechatPayVerifier,
        api_base: str = "https://api.mch.weixin.qq.com",
        timeout: tuple[float, float] | float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.mchid = mchid
        self.appid = appid
        self.signer = MerchantSigner(mchid=mchid, serial_no=serial_no, private_key=private_key)
        self.apiv3_key = api_v3_key(apiv3_key)
        self.verifier = verifier
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.certificate_downloads = 0  # how many times /v3/certificates was fetched

    # -- transport ---------------------------------------------------------------------------

    def _send(self, method: str, url: str, body: bytes = b"") -> requests.Response:
        headers = {
            "Authorization": self.signer.authorization(method, url, body),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if method != "GET":
            headers["Content-Type"] = "application/json"
        try:
            return self.session.request(method, url, data=body if body else None, headers=headers,
                                        timeout=self.timeout, allow_redirects=False)
        except requests.Timeout as exc:
            raise WxPayTimeout(f"{method} {urlsplit(url).path} timed out") from exc
        except requests.ConnectionError as exc:
            raise WxPayTimeout(f"{method} {urlsplit(url).path} failed to connect: {exc}") from exc

    def _verify(self, response: requests.Response, *, refetch: bool = True) -> None:
        """Verify the signature over the raw body; on an unknown serial refetch certificates once."""
        try:
            self.verifier.verify(response.headers, response.content)
        except UnknownSerial:
            if not refetch:
                raise
            self.download_certificates()
            self.verifier.verify(response.headers, response.content)

    def _call(self, method: str, path: str, *, body: dict[str, Any] | None = None,
              params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """One signed call; returns (status, verified JSON) for 2xx, raises WxPayApiError otherwise."""
        url = self.api_base + path + (f"?{urlencode(params)}" if params else "")
        raw = b"" if body is None else json.dumps(
            body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        response = self._send(method, url, raw)
        status = response.status_code
        try:
            self._verify(response)
        except VerificationFailed:
            if status >= 500:  # nothing of it is used; the same request may simply be repeated
                raise WxPayApiError(status, "SYSTEM_ERROR", "unverified 5xx answer",
                                    retryable=True) from None
            raise
        data: dict[str, Any] = {}
        if response.content:
            try:
                parsed = json.loads(response.content)
            except ValueError:
                raise WxPayApiError(status, "BAD_RESPONSE", "answer is not JSON",
                                    retryable=status >= 500) from None
            if isinstance(parsed, dict):
                data = parsed
        if 200 <= status < 300:
            return status, data
        code = str(data.get("code") or f"HTTP_{status}")
        raise WxPayApiError(status, code, str(data.get("message", "")), data.get("detail"),
                            retryable=status >= 500 or code in RETRYABLE_CODES)

    # -- platform certificates ---------------------------------------------------------------

    def download_certificates(self) -> list[str]:
        """GET /v3/certificates, decrypt with the APIv3 key, check the download's own signature
        with what it carries, then add the certificates to the verifier's store."""
        store = self.verifier.certificates
        if store is None:
            raise UnknownSerial("platform certificates are not used in public-key mode")
        self.certificate_downloads += 1
        url = self.api_base + "/v3/certificates"
        response = self._send("GET", url)
        if response.status_code != 200:
            raise WxPayApiError(response.status_code, "CERTIFICATES_UNAVAILABLE",
                                "certificate download failed",
                                retryable=response.status_code >= 500)
        try:
            certs = certificates_from_download(self.apiv3_key, json.loads(response.content))
        except (ValueError, KeyError, TypeError) as exc:
            raise VerificationFailed(f"certificate download unusable: {exc}") from exc
        fresh = PlatformCertificateStore()
        for cert in certs:
            fresh.add(cert)
        WechatPayVerifier(fresh, max_skew=self.verifier.max_skew).verify(
            response.headers, response.content)
        return [store.add(cert) for cert in certs]

    # -- orders ------------------------------------------------------------------------------

    def _order_body(self, out_trade_no: str, description: str, amount_fen: int, notify_url: str,
                    time_expire: datetime | str | None, attach: str | None) -> dict[str, Any]:
        if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
            raise ValueError("amount is a positive integer number of fen")
        body: dict[str, Any] = {"appid": self.appid, "mchid": self.mchid,
                                "description": description, "out_trade_no": out_trade_no}
        if time_expire is not None:
            body["time_expire"] = rfc3339(time_expire)
        if attach is not None:
            body["attach"] = attach
        body["notify_url"] = notify_url
        body["amount"] = {"total": amount_fen, "currency": "CNY"}
        return body

    def native(self, out_trade_no: str, description: str, amount_fen: int, notify_url: str,
               time_expire: datetime | str | None = None, attach: str | None = None) -> str:
        """POST /v3/pay/transactions/native -> code_url (to be shown as a QR code)."""
        body = self._order_body(out_trade_no, description, amount_fen, notify_url, time_expire, attach)
        _, data = self._call("POST", "/v3/pay/transactions/native", body=body)
        return _required(data, "code_url")

    def jsapi(self, out_trade_no: str, description: str, amount_fen: int, notify_url: str,
              payer_openid: str, time_expire: datetime | str | None = None,
              attach: str | None = None) -> str:
        """POST /v3/pay/transactions/jsapi -> prepay_id (for `jsapi_pay_params`)."""
        body = self._order_body(out_trade_no, description, amount_fen, notify_url, time_expire, attach)
        body["payer"] = {"openid": payer_openid}
        _, data = self._call("POST", "/v3/pay/transactions/jsapi", body=body)
        return _required(data, "prepay_id")

    def jsapi_pay_params(self, prepay_id: str) -> dict[str, str]:
        """What wx.requestPayment / WeixinJSBridge needs for a prepay_id (§10.7), signed by us."""
        return self.signer.jsapi_pay_params(self.appid, prepay_id)

    def codepay(self, out_trade_no: str, description: str, amount_fen: int, auth_code: str,
                store_id: str, device_ip: str) -> CodepayAnswer:
        """POST /v3/pay/transactions/codepay. Never raises for WeChat's answers (the pure
        schedule in payments/codepay.py decides from them); raises only when the answer cannot
        be trusted (verification failed)."""
        if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
            raise ValueError("amount is a positive integer number of fen")
        body = {"appid": self.appid, "mchid": self.mchid, "description": description,
                "out_trade_no": out_trade_no, "payer": {"auth_code": auth_code},
                "amount": {"total": amount_fen, "currency": "CNY"},
                "scene_info": {"store_info": {"out_id": store_id}, "device_ip": device_ip}}
        try:
            status, data = self._call("POST", "/v3/pay/transactions/codepay", body=body)
        except WxPayTimeout as exc:
            return CodepayAnswer("TIMEOUT", 0, True, {"message": exc.message})
        except WxPayApiError as exc:
            return CodepayAnswer(exc.code, exc.status, exc.retryable,
                                 {"code": exc.code, "message": exc.message})
        if status == 202 or data.get("code") == "USERPAYING" or data.get("trade_state") == "USERPAYING":
            return CodepayAnswer("USERPAYING", status, False, data)
        state = str(data.get("trade_state") or "SUCCESS")
        return CodepayAnswer(state, status, False, data)

    def query_by_out_trade_no(self, out_trade_no: str) -> dict[str, Any]:
        """GET …/out-trade-no/{no}?mchid=… -> the transaction (trade_state etc.)."""
        _, data = self._call("GET", f"/v3/pay/transactions/out-trade-no/{_seg(out_trade_no)}",
                             params={"mchid": self.mchid})
        return data

    def query_by_transaction_id(self, transaction_id: str) -> dict[str, Any]:
        _, data = self._call("GET", f"/v3/pay/transactions/id/{_seg(transaction_id)}",
                             params={"mchid": self.mchid})
        return data

    def close(self, out_trade_no: str) -> None:
        """POST …/close -> 204 (verified over the empty body)."""
        self._call("POST", f"/v3/pay/transactions/out-trade-no/{_seg(out_trade_no)}/close",
                   body={"mchid": self.mchid})

    def reverse(self, out_trade_no: str) -> bool:
        """POST …/reverse (payment code only). Returns whether reverse must be called again
        (the v2 `recall=Y`, §9.3): True on a retryable failure (5xx, SYSTEM_ERROR, timeout) or
        an answer carrying recall=Y; False when WeChat confirmed the reverse. Definite errors
        (USERPAYING: "keep querying", ORDER_NOT_EXIST, …) raise WxPayApiError."""
        try:
            status, data = self._call(
                "POST", f"/v3/pay/transactions/out-trade-no/{_seg(out_trade_no)}/reverse",
                body={"appid": self.appid, "mchid": self.mchid})
        except WxPayApiError as exc:
            if exc.retryable:
                return True
            raise
        if status == 202 or data.get("code") == "USERPAYING":  # "正在支付中不能发起撤销"
            raise WxPayApiError(status, "USERPAYING", str(data.get("message", "")))
        return str(data.get("recall", "N")).upper() in ("Y", "TRUE")

    # -- refunds -----------------------------------------------------------------------------

    def refund(self, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int,
               notify_url: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """POST /v3/refund/domestic/refunds -> the refund (status PROCESSING/SUCCESS/…)."""
        for value in (refund_fen, total_fen):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError("amounts are positive integers of fen")
        if refund_fen > total_fen:
            raise ValueError("refund exceeds the order total")
        body: dict[str, Any] = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no}
        if reason:
            body["reason"] = reason
        if notify_url:
            body["notify_url"] = notify_url
        body["amount"] = {"refund": refund_fen, "total": total_fen, "currency": "CNY"}
        _, data = self._call("POST", "/v3/refund/domestic/refunds", body=body)
        return data

    def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        _, data = self._call("GET", f"/v3/refund/domestic/refunds/{_seg(out_refund_no)}")
        return data

    # -- bills -------------------------------------------------------------------------------

    def trade_bill(self, bill_date: str, bill_type: str = "ALL") -> bytes:
        """The trade bill of one day: signed answer {hash_type, hash_value, download_url}, then
        the file (unsigned, so its SHA1 is checked against hash_value; BillHashMismatch if not).
        The Authorization header goes only to the API host, never to another host."""
        _, meta = self._call("GET", "/v3/bill/tradebill",
                             params={"bill_date": bill_date, "bill_type": bill_type})
        download_url = _required(meta, "download_url")
        if str(meta.get("hash_type", "")).upper() != "SHA1":
            raise BillRefused(f"unsupported hash_type {meta.get('hash_type')!r}")
        expected = _required(meta, "hash_value").lower()
        base, target = urlsplit(self.api_base), urlsplit(download_url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise BillRefused(f"download_url points to another host: {target.netloc}")
        response = self._send("GET", download_url)
        if response.status_code != 200:
            raise WxPayApiError(response.status_code, "BILL_DOWNLOAD_FAILED",
                                response.text[:200], retryable=response.status_code >= 500)
        content = response.content
        actual = hashlib.sha1(content).hexdigest()
        if not hmac.compare_digest(actual, expected):
            raise BillHashMismatch(f"bill SHA1 {actual} differs from {expected}")
        return content


def _seg(value: str) -> str:
    """A path segment, percent-encoded so it cannot change the signed path."""
    return quote(value, safe="")


def _required(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise WxPayApiError(200, "BAD_RESPONSE", f"answer lacks {name}")
    return value


__all__ = [
    "BillHashMismatch", "BillRefused", "CodepayAnswer", "DEFAULT_TIMEOUT", "MissingSignature",
    "WechatPayGateway", "WxPayApiError", "WxPayTimeout", "rfc3339",
]
