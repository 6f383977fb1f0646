"""AEAD_AES_256_GCM with the APIv3 key: notification resources and downloaded platform certificates.

Reference: shared/reference/wechat-protocol.md §10.3, vectors V-PAY3-1..6.
"""
from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.exceptions import DecryptFailed, KeyLoadError
from payments.wxpay_v3._bytes import Bytesish, _b
from payments.wxpay_v3.keys import certificates_from_pem

AEAD_ALGORITHM = "AEAD_AES_256_GCM"
CERTIFICATE_ASSOCIATED_DATA = "certificate"
APIV3_KEY_LENGTH = 32
GCM_NONCE_LENGTH = 12


def api_v3_key(value: Bytesish) -> bytes:
    """Validate the APIv3 key: 32 ASCII bytes, so a truncated or padded setting fails at start-up."""
    key = _b(value)
    if len(key) != APIV3_KEY_LENGTH:
        raise KeyLoadError(f"APIv3 key must be {APIV3_KEY_LENGTH} bytes, got {len(key)}")
    return key


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
