"""Request signing (Authorization header, MerchantSigner) and the JSAPI/mini-program paySign.

Reference: shared/reference/wechat-protocol.md §10.1 and §10.7, vectors V-PAY3-1..6.
"""
from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payments.exceptions import SignatureInvalid
from payments.wxpay_v3._bytes import Bytesish, _b

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"


# --- request signing (§10.1) -----------------------------------------------------------------


def new_nonce() -> str:
    """32 uppercase hex characters, the shape of the doc's nonce_str; unpredictable by design."""
    return secrets.token_hex(16).upper()


def canonical_url(url: str) -> str:
    """Path plus `?query` exactly as sent, without scheme or host: what WeChat puts in the message."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def build_request_message(
    method: str, url: str, timestamp: int | str, nonce: str, body: Bytesish = b""
) -> bytes:
    """`METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n`: five lines, each (the last too) ending in LF.

    The body is the exact bytes sent (empty for GET); its own trailing newline is kept.
    """
    head = f"{method.upper()}\n{canonical_url(url)}\n{timestamp}\n{nonce}\n".encode()
    return head + _b(body) + b"\n"


def sign(private_key: rsa.RSAPrivateKey, message: Bytesish) -> str:
    """SHA256withRSA (PKCS#1 v1.5, deterministic) then Base64, as every v3 signature is made."""
    raw = private_key.sign(_b(message), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def format_authorization(
    mchid: str, serial_no: str, nonce: str, timestamp: int | str, signature: str
) -> str:
    """The Authorization header value; serial_no is the MERCHANT certificate serial, not WeChat's."""
    return (
        f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


@dataclass(frozen=True)
class MerchantSigner:
    """What the merchant needs to sign requests and paySign: mchid, cert serial, private key."""

    mchid: str
    serial_no: str
    private_key: rsa.RSAPrivateKey

    def authorization(
        self,
        method: str,
        url: str,
        body: Bytesish = b"",
        *,
        timestamp: int | str | None = None,
        nonce: str | None = None,
    ) -> str:
        """Sign one request; timestamp and nonce are injectable so tests can pin them."""
        ts = int(time.time()) if timestamp is None else timestamp
        nc = new_nonce() if nonce is None else nonce
        signature = sign(self.private_key, build_request_message(method, url, ts, nc, body))
        return format_authorization(self.mchid, self.serial_no, nc, ts, signature)

    def jsapi_pay_params(
        self,
        app_id: str,
        prepay_id: str,
        *,
        timestamp: int | str | None = None,
        nonce: str | None = None,
    ) -> dict[str, str]:
        """Front-end parameters for WeixinJSBridge / wx.requestPayment (see `jsapi_pay_params`)."""
        return jsapi_pay_params(
            self.private_key, app_id, prepay_id, timestamp=timestamp, nonce=nonce
        )


def parse_authorization(header: str) -> dict[str, str]:
    """Split an Authorization header into its items (for the emulator, which must check them)."""
    scheme, _, rest = header.partition(" ")
    if scheme != AUTH_SCHEME:
        raise SignatureInvalid(f"unsupported authorization scheme {scheme!r}")
    items: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq or len(value) < 2 or value[0] != '"' or value[-1] != '"':
            raise SignatureInvalid("malformed authorization item")
        items[name] = value[1:-1]
    missing = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - items.keys()
    if missing:
        raise SignatureInvalid(f"authorization lacks {sorted(missing)}")
    return items


# --- JSAPI / mini-program paySign (§10.7) -----------------------------------------------------


def build_pay_sign_message(app_id: str, timestamp: int | str, nonce: str, package: str) -> bytes:
    """`appId\\ntimeStamp\\nnonceStr\\npackage\\n`, the string the front end's paySign covers."""
    return f"{app_id}\n{timestamp}\n{nonce}\n{package}\n".encode()


def jsapi_pay_params(
    private_key: rsa.RSAPrivateKey,
    app_id: str,
    prepay_id: str,
    *,
    timestamp: int | str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """{appId, timeStamp, nonceStr, package, signType: "RSA", paySign}; timeStamp is a string.

    wx.requestPayment ignores appId; WeixinJSBridge needs it, so it is always included.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nc = new_nonce() if nonce is None else nonce
    package = f"prepay_id={prepay_id}"
    pay_sign = sign(private_key, build_pay_sign_message(app_id, ts, nc, package))
    return {
        "appId": app_id,
        "timeStamp": ts,
        "nonceStr": nc,
        "package": package,
        "signType": "RSA",
        "paySign": pay_sign,
    }
