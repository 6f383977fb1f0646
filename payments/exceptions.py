"""Errors of the payments package, so callers can tell a forged callback from a stale or probed one."""
from __future__ import annotations


class WxPayError(Exception):
    """Base of every WeChat Pay protocol error: catch this to refuse a response or callback."""


class VerificationFailed(WxPayError):
    """A response or notification could not be authenticated; nothing in it may be trusted."""


class SignatureInvalid(VerificationFailed):
    """The Wechatpay-Signature does not verify over `timestamp\\nnonce\\nbody\\n` (forged or altered)."""


class MissingSignature(VerificationFailed):
    """A Wechatpay-* header is absent: an unsigned 2xx must be treated as forged (§10.2)."""


class StaleTimestamp(VerificationFailed):
    """Wechatpay-Timestamp is more than 300 s from now: a replay or a badly skewed clock (§11.3)."""


class UnknownSerial(VerificationFailed):
    """No platform certificate or public key is held for this Wechatpay-Serial.

    Distinct so the caller can refetch platform certificates once and retry (§10.2).
    """

    def __init__(self, serial: str) -> None:
        super().__init__(f"no WeChat Pay key for serial {serial!r}")
        self.serial = serial


class SignatureProbe(VerificationFailed):
    """WeChat Pay's deliberate probe (signature starting "WECHATPAY/SIGNTEST/"): run no business logic."""


class DecryptFailed(WxPayError):
    """AES-256-GCM authentication failed (wrong APIv3 key, altered ciphertext, nonce or associated data)."""


class KeyLoadError(WxPayError):
    """A PEM key or certificate could not be read or is not the kind required (RSA)."""
