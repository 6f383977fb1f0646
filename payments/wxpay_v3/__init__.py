"""WeChat Pay API v3 protocol: request signing, response/callback verification, AES-GCM, paySign.

Pure functions and small classes over `cryptography`; no Flask, no database, no I/O except the
PEM loaders, which take a path the caller got from the environment (keys never live in the repo).
Reference: shared/reference/wechat-protocol.md §10-§11, vectors V-PAY3-1..6.

One module per noun: `keys` (loading PEM keys and certificates), `signing` (Authorization,
MerchantSigner, paySign), `verification` (verifier, platform certificate store, public-key mode,
freshness, probe detection), `resource` (APIv3 key, AES-GCM resources and certificates). Every
public name is re-exported here, so `from payments.wxpay_v3 import …` keeps working.
"""
from payments.wxpay_v3._bytes import Bytesish
from payments.wxpay_v3.keys import (
    certificate_serial,
    certificates_from_pem,
    load_certificates,
    load_private_key,
    load_public_key,
    private_key_from_pem,
    public_key_from_pem,
)
from payments.wxpay_v3.resource import (
    AEAD_ALGORITHM,
    APIV3_KEY_LENGTH,
    CERTIFICATE_ASSOCIATED_DATA,
    GCM_NONCE_LENGTH,
    aead_decrypt,
    aead_encrypt,
    api_v3_key,
    certificates_from_download,
    decrypt_certificate,
    decrypt_resource,
    encrypt_resource,
    new_gcm_nonce,
)
from payments.wxpay_v3.signing import (
    AUTH_SCHEME,
    MerchantSigner,
    build_pay_sign_message,
    build_request_message,
    canonical_url,
    format_authorization,
    jsapi_pay_params,
    new_nonce,
    parse_authorization,
    sign,
)
from payments.wxpay_v3.verification import (
    HEADER_NONCE,
    HEADER_SERIAL,
    HEADER_SIGNATURE,
    HEADER_SIGNATURE_TYPE,
    HEADER_TIMESTAMP,
    MAX_CLOCK_SKEW_SECONDS,
    PROBE_PREFIX,
    PUB_KEY_ID_PREFIX,
    SIGNATURE_TYPE,
    PlatformCertificateStore,
    VerifiedMessage,
    WechatPayPublicKey,
    WechatPayVerifier,
    build_verify_message,
    check_fresh,
    verify_signature,
)

__all__ = [
    "AEAD_ALGORITHM", "APIV3_KEY_LENGTH", "AUTH_SCHEME", "CERTIFICATE_ASSOCIATED_DATA", "GCM_NONCE_LENGTH",
    "HEADER_NONCE", "HEADER_SERIAL", "HEADER_SIGNATURE", "HEADER_SIGNATURE_TYPE", "HEADER_TIMESTAMP",
    "MAX_CLOCK_SKEW_SECONDS", "PROBE_PREFIX", "PUB_KEY_ID_PREFIX", "SIGNATURE_TYPE",
    "Bytesish", "MerchantSigner", "PlatformCertificateStore", "VerifiedMessage", "WechatPayPublicKey",
    "WechatPayVerifier",
    "aead_decrypt", "aead_encrypt", "api_v3_key", "build_pay_sign_message", "build_request_message",
    "build_verify_message", "canonical_url", "certificate_serial", "certificates_from_download",
    "certificates_from_pem", "check_fresh", "decrypt_certificate", "decrypt_resource", "encrypt_resource",
    "format_authorization", "jsapi_pay_params", "load_certificates", "load_private_key", "load_public_key",
    "new_gcm_nonce", "new_nonce", "parse_authorization", "private_key_from_pem", "public_key_from_pem",
    "sign", "verify_signature",
]
