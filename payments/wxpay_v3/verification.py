"""Verification of WeChat Pay's responses and notifications: signature, freshness, probe detection.

Platform certificates held by serial, public-key mode (PUB_KEY_ID_…), or both during a migration.
Reference: shared/reference/wechat-protocol.md §10.2 and §11.3, vectors V-PAY3-1..6.
"""
from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payments.exceptions import (
    KeyLoadError,
    MissingSignature,
    SignatureInvalid,
    SignatureProbe,
    StaleTimestamp,
    UnknownSerial,
)
from payments.wxpay_v3._bytes import Bytesish, _b
from payments.wxpay_v3.keys import certificate_serial, certificates_from_pem

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
PUB_KEY_ID_PREFIX = "PUB_KEY_ID_"
MAX_CLOCK_SKEW_SECONDS = 300

_HEX_SERIAL = re.compile(r"[0-9A-Fa-f]{1,64}")

HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"


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
