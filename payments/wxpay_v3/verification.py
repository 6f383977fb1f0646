"""WeChat Pay API v3 protocol: request signing, response/callback verification, AES-GCM, paySign.

Pure functions and small classes over `cryptography`; no Flask, no database, no I/O except the
PEM loaders, which take a path the caller got from the environment (keys never live in the repo).
Reference: shared/reference/wechat-protocol.md §10-§11, vectors V-PAY3-1..6.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.exceptions import (
    DecryptFailed,
    KeyLoadError,
    MissingSignature,
    SignatureInvalid,
    SignatureProbe,
    StaleTimestamp,
    UnknownSerial,
)

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
PUB_KEY_ID_PREFIX = "PUB_KEY_ID_"
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
CERTIFICATE_ASSOCIATED_DATA = "certificate"
MAX_CLOCK_SKEW_SECONDS = 300
APIV3_KEY_LENGTH = 32
GCM_NONCE_LENGTH = 12

_HEX_SERIAL = re.compile(r"[0-9A-Fa-f]{1,64}")

HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"

Bytesish = bytes | str


def _b(value: Bytesish) -> bytes:
    """Encode text as UTF-8: WeChat signs and encrypts the UTF-8 bytes of every string."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


# --- keys ------------------------------------------------------------------------------------


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise KeyLoadError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from exc


def private_key_from_pem(pem: Bytesish) -> rsa.RSAPrivateKey:
    """Parse the merchant API private key (apiclient_key.pem, PKCS#8 or PKCS#1); RSA only."""
    try:
        key = serialization.load_pem_private_key(_b(pem), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyLoadError("not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyLoadError("merchant API key must be RSA (SHA256withRSA)")
    return key


def public_key_from_pem(pem: Bytesish) -> rsa.RSAPublicKey:
    """Parse a WeChat Pay public key (pub_key.pem, SubjectPublicKeyInfo); RSA only."""
    try:
        key = serialization.load_pem_public_key(_b(pem))
    except (ValueError, TypeError) as exc:
        raise KeyLoadError("not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyLoadError("WeChat Pay public key must be RSA")
    return key


def certificates_from_pem(pem: Bytesish) -> list[x509.Certificate]:
    """Parse one or more PEM certificates (a platform-cert bundle may hold several during rotation)."""
    try:
        certs = x509.load_pem_x509_certificates(_b(pem))
    except ValueError as exc:
        raise KeyLoadError("not a PEM certificate") from exc
    return certs


def load_private_key(path: str | os.PathLike[str]) -> rsa.RSAPrivateKey:
    """Load the merchant private key from a path the caller took from the environment."""
    return private_key_from_pem(_read(path))


def load_public_key(path: str | os.PathLike[str]) -> rsa.RSAPublicKey:
    """Load the WeChat Pay public key (public-key mode) from a path taken from the environment."""
    return public_key_from_pem(_read(path))


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Load platform certificates from a PEM file whose path comes from the environment."""
    return certificates_from_pem(_read(path))


def api_v3_key(value: Bytesish) -> bytes:
    """Validate the APIv3 key: 32 ASCII bytes, so a truncated or padded setting fails at start-up."""
    key = _b(value)
    if len(key) != APIV3_KEY_LENGTH:
        raise KeyLoadError(f"APIv3 key must be {APIV3_KEY_LENGTH} bytes, got {len(key)}")
    return key


def certificate_serial(cert: x509.Certificate) -> str:
    """The serial as WeChat writes it in Wechatpay-Serial: uppercase hex without leading zeros."""
    return format(cert.serial_number, "X")


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


# --- verification of responses and callbacks (§10.2) -----------------------------------------


def build_verify_message(timestamp: int | str, nonce: str, body: Bytesish) -> bytes:
    """`timestamp\\nnonce\\nbody\\n` over the RAW body bytes (re-serialised JSON would not verify)."""
    return f"{timestamp}\n{nonce}\n".encode() + _b(body) + b"\n"


def verify_signature(public_key: rsa.RSAPublicKey, message: Bytesish, signature_b64: str) -> None:
    """Raise SignatureInvalid unless signature_b64 is a SHA256withRSA signature of message."""
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid("signature is not Base64") from exc
    try:
        public_key.verify(raw, _b(message), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureInvalid("signature does not verify") from exc


class PlatformCertificateStore:
    """WeChat Pay platform certificates held in memory, selected by serial.

    Several can be valid at once while WeChat rotates them; an unknown serial raises
    UnknownSerial so the caller can refetch /v3/certificates once and try again.
    """

    def __init__(self, pems: Iterable[Bytesish] = ()) -> None:
        self._by_serial: dict[int, x509.Certificate] = {}
        for pem in pems:
            self.add_pem(pem)

    def add(self, cert: x509.Certificate) -> str:
        """Hold one certificate; returns its serial as WeChat writes it."""
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise KeyLoadError("platform certificate must carry an RSA key")
        self._by_serial[cert.serial_number] = cert
        return certificate_serial(cert)

    def add_pem(self, pem: Bytesish) -> list[str]:
        """Hold every certificate in a PEM text; returns their serials."""
        return [self.add(cert) for cert in certificates_from_pem(pem)]

    def serials(self) -> list[str]:
        """Serials held, for logs and for deciding whether a refetch is due."""
        return [format(n, "X") for n in self._by_serial]

    def get(self, serial: str, *, now: float | None = None) -> x509.Certificate:
        """The certificate for a Wechatpay-Serial (hex, case-insensitive); UnknownSerial if none.

        With `now` (Unix seconds), a certificate outside its validity period counts as unknown,
        so the caller refetches instead of trusting a retired key.
        """
        if not _HEX_SERIAL.fullmatch(serial):  # int(..., 16) alone would accept "0x", "_", spaces
            raise UnknownSerial(serial)
        cert = self._by_serial.get(int(serial, 16))
        if cert is None:
            raise UnknownSerial(serial)
        if now is not None and not (
            cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp()
        ):
            raise UnknownSerial(serial)
        return cert

    def public_key(self, serial: str, *, now: float | None = None) -> rsa.RSAPublicKey:
        """The RSA key that verifies signatures sent with this serial (valid at `now` if given)."""
        key = self.get(serial, now=now).public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # checked in add()
        return key

    def __len__(self) -> int:
        return len(self._by_serial)


@dataclass(frozen=True)
class WechatPayPublicKey:
    """WeChat Pay public-key mode: one downloaded key and its id ("PUB_KEY_ID_…"), no certificates."""

    key_id: str
    public_key: rsa.RSAPublicKey

    def __post_init__(self) -> None:
        if not self.key_id.startswith(PUB_KEY_ID_PREFIX):
            raise KeyLoadError(f"public key id must start with {PUB_KEY_ID_PREFIX!r}")


@dataclass(frozen=True)
class VerifiedMessage:
    """What a successful verification vouches for: the serial used and the signed timestamp/nonce."""

    serial: str
    timestamp: int
    nonce: str


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup: frameworks and proxies disagree on header case."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                value = candidate
                break
    return value


class WechatPayVerifier:
    """Verifies WeChat Pay's signature on responses and notifications.

    Holds platform certificates, a WeChat Pay public key, or both (the migration period, as
    wechatpay-java's RSACombinedNotificationConfig): the Wechatpay-Serial header chooses.
    """

    def __init__(
        self,
        certificates: PlatformCertificateStore | None = None,
        public_key: WechatPayPublicKey | None = None,
        *,
        max_skew: int = MAX_CLOCK_SKEW_SECONDS,
    ) -> None:
        if certificates is None and public_key is None:
            raise ValueError("configure platform certificates, a WeChat Pay public key, or both")
        self.certificates = certificates
        self.public_key = public_key
        self.max_skew = max_skew

    def key_for(self, serial: str, *, now: float | None = None) -> rsa.RSAPublicKey:
        """Choose the key by serial: PUB_KEY_ID_… is public-key mode, anything else a certificate.

        `now` (Unix seconds) makes an expired or not-yet-valid platform certificate unknown.
        """
        if serial.startswith(PUB_KEY_ID_PREFIX):
            if self.public_key is not None and secrets.compare_digest(
                serial.encode(), self.public_key.key_id.encode()
            ):
                return self.public_key.public_key
            raise UnknownSerial(serial)
        if self.certificates is None:
            raise UnknownSerial(serial)
        return self.certificates.public_key(serial, now=now)

    def verify(
        self, headers: Mapping[str, str], body: Bytesish, *, now: float | None = None
    ) -> VerifiedMessage:
        """Authenticate a response or callback before anything in its body is used.

        Order: all headers present, not a signature probe, fresh, known serial, valid signature.
        `now` (Unix seconds) is injectable so tests and replays of vectors can pin the clock.
        """
        timestamp = _header(headers, HEADER_TIMESTAMP)
        nonce = _header(headers, HEADER_NONCE)
        signature = _header(headers, HEADER_SIGNATURE)
        serial = _header(headers, HEADER_SERIAL)
        if not (timestamp and nonce and signature and serial):
            raise MissingSignature("Wechatpay-Timestamp/Nonce/Signature/Serial required")
        if signature.startswith(PROBE_PREFIX):
            # §10.2: probe traffic is a verification failure; never a bypass, never processed.
            raise SignatureProbe("Wechatpay-Signature is a WECHATPAY/SIGNTEST/ probe")
        signature_type = _header(headers, HEADER_SIGNATURE_TYPE)
        if signature_type is not None and signature_type != SIGNATURE_TYPE:
            raise SignatureInvalid(f"unsupported Wechatpay-Signature-Type {signature_type!r}")
        current = time.time() if now is None else now
        ts = check_fresh(timestamp, now=current, max_skew=self.max_skew)
        key = self.key_for(serial, now=current)
        verify_signature(key, build_verify_message(timestamp, nonce, body), signature)
        return VerifiedMessage(serial=serial, timestamp=ts, nonce=nonce)


def check_fresh(
    timestamp: int | str, *, now: float | None = None, max_skew: int = MAX_CLOCK_SKEW_SECONDS
) -> int:
    """Refuse |now - timestamp| > max_skew seconds (300 by default, §11.3); returns the timestamp."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        raise StaleTimestamp(f"Wechatpay-Timestamp {timestamp!r} is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > max_skew:
        raise StaleTimestamp(f"Wechatpay-Timestamp {ts} is {current - ts:+.0f} s from now")
    return ts


# --- AEAD_AES_256_GCM (§10.3) ----------------------------------------------------------------


def aead_decrypt(
    key: Bytesish, nonce: Bytesish, associated_data: Bytesish | None, ciphertext_b64: str
) -> bytes:
    """AES-GCM open: ciphertext is Base64(ct ‖ 16-byte tag), nonce and AAD are UTF-8 text.

    The key is not length-checked beyond what AES allows: the SDK vectors use 16-byte keys,
    and production keys are checked once by `api_v3_key`. Every failure is DecryptFailed.
    """
    try:
        raw = base64.b64decode(ciphertext_b64, validate=True)
        return AESGCM(_b(key)).decrypt(_b(nonce), raw, _b(associated_data or b""))
    except (InvalidTag, binascii.Error, ValueError, TypeError) as exc:
        raise DecryptFailed("AES-GCM decryption failed") from exc


def aead_encrypt(
    key: Bytesish, nonce: Bytesish, associated_data: Bytesish | None, plaintext: Bytesish
) -> str:
    """AES-GCM seal, the inverse of `aead_decrypt`: what WeChat (and our emulator) sends."""
    try:
        sealed = AESGCM(_b(key)).encrypt(_b(nonce), _b(plaintext), _b(associated_data or b""))
    except ValueError as exc:
        raise DecryptFailed(f"AES-GCM encryption refused: {exc}") from exc
    return base64.b64encode(sealed).decode("ascii")


def new_gcm_nonce() -> str:
    """12 alphanumeric characters, the shape WeChat uses for resource nonces."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(GCM_NONCE_LENGTH))


def decrypt_resource(key: Bytesish, resource: Mapping[str, Any]) -> bytes:
    """Decrypt a notification `resource` {algorithm, ciphertext, associated_data, nonce}.

    Call only after `WechatPayVerifier.verify` accepted the body it came from.
    """
    algorithm = resource.get("algorithm")
    if algorithm != AEAD_ALGORITHM:
        raise DecryptFailed(f"unsupported resource algorithm {algorithm!r}")
    ciphertext, nonce = resource.get("ciphertext"), resource.get("nonce")
    if not isinstance(ciphertext, str) or not isinstance(nonce, str):
        raise DecryptFailed("resource lacks ciphertext or nonce")
    associated_data = resource.get("associated_data") or ""
    if not isinstance(associated_data, str):
        raise DecryptFailed("resource associated_data must be a string")
    return aead_decrypt(key, nonce, associated_data, ciphertext)


def encrypt_resource(
    key: Bytesish,
    plaintext: Bytesish,
    *,
    associated_data: str = "",
    original_type: str = "transaction",
    nonce: str | None = None,
) -> dict[str, str]:
    """Build a notification `resource` the way WeChat does (for the local emulator and tests)."""
    nc = new_gcm_nonce() if nonce is None else nonce
    return {
        "original_type": original_type,
        "algorithm": AEAD_ALGORITHM,
        "ciphertext": aead_encrypt(key, nc, associated_data, plaintext),
        "associated_data": associated_data,
        "nonce": nc,
    }


def decrypt_certificate(key: Bytesish, encrypt_certificate: Mapping[str, Any]) -> x509.Certificate:
    """Decrypt one `encrypt_certificate` from GET /v3/certificates into a certificate.

    associated_data must be "certificate", so a notification resource cannot be passed off as one.
    """
    if encrypt_certificate.get("associated_data") != CERTIFICATE_ASSOCIATED_DATA:
        raise DecryptFailed("platform certificate associated_data must be 'certificate'")
    pem = decrypt_resource(key, encrypt_certificate)
    certs = certificates_from_pem(pem)
    if len(certs) != 1:
        raise DecryptFailed("expected exactly one certificate")
    return certs[0]


def certificates_from_download(
    key: Bytesish, response: Mapping[str, Any]
) -> list[x509.Certificate]:
    """Decrypt every entry of a /v3/certificates response, checking each against its serial_no.

    The response itself must already have passed `WechatPayVerifier.verify` (or, on first
    fetch, be checked against a certificate obtained out of band).
    """
    certs: list[x509.Certificate] = []
    for entry in response.get("data") or []:
        cert = decrypt_certificate(key, entry["encrypt_certificate"])
        declared = entry.get("serial_no")
        if declared is not None and int(declared, 16) != cert.serial_number:
            raise DecryptFailed(f"certificate serial differs from serial_no {declared!r}")
        certs.append(cert)
    return certs
