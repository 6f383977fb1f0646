"""The payment-notification benchmark's baseline: verify + decrypt, nothing else.

`POST /pay/notify` checks WeChat Pay's signature with the service's own verifier
(payments.wxpay_v3.WechatPayVerifier: headers, probe, freshness, serial, SHA256withRSA over the
raw body), parses the envelope, decrypts the AES-256-GCM resource with the APIv3 key
(payments.wxpay_v3.decrypt_resource), parses the plaintext and answers 204. No database, no
order lock, no state machine, no points, no logging: what any v3 notify endpoint must spend
before it can trust a notification, and so the ceiling the full pipeline is compared with.

Served by gunicorn exactly like the real app (bench/pay_notify_load.py starts both):

    gunicorn -w 2 -k gthread --threads 4 bench.pay_baseline_app:app

Keys come from the same WXPAY_* environment variables as the service: WXPAY_APIV3_KEY_FILE (or
WXPAY_APIV3_KEY), and WXPAY_PLATFORM_CERTS_DIR and/or WXPAY_PUBLIC_KEY_FILE + WXPAY_PUBLIC_KEY_ID.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask, Response, request

from payments.exceptions import DecryptFailed, VerificationFailed
from payments.wxpay_v3 import (
    PlatformCertificateStore,
    WechatPayPublicKey,
    WechatPayVerifier,
    api_v3_key,
    decrypt_resource,
    load_certificates,
    load_public_key,
)

MAX_BODY = 64 * 1024  # the service's cap (wx_service/pay_notify.py)


def _verifier() -> WechatPayVerifier:
    """Platform certificates and/or the public key, as payments/config.py builds them."""
    certificates = None
    folder = os.environ.get("WXPAY_PLATFORM_CERTS_DIR")
    if folder:
        certificates = PlatformCertificateStore()
        for name in sorted(os.listdir(folder)):
            if name.endswith((".pem", ".crt")):
                for cert in load_certificates(os.path.join(folder, name)):
                    certificates.add(cert)
    public_key = None
    if os.environ.get("WXPAY_PUBLIC_KEY_FILE"):
        public_key = WechatPayPublicKey(os.environ["WXPAY_PUBLIC_KEY_ID"],
                                        load_public_key(os.environ["WXPAY_PUBLIC_KEY_FILE"]))
    return WechatPayVerifier(certificates, public_key)


def _apiv3_key() -> bytes:
    path = os.environ.get("WXPAY_APIV3_KEY_FILE")
    return api_v3_key(Path(path).read_bytes().strip() if path else os.environ["WXPAY_APIV3_KEY"].encode())


app = Flask(__name__)
verifier = _verifier()
apiv3_key = _apiv3_key()


@app.post("/pay/notify")
def payment_notify() -> Response:
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return Response("body too large\n", status=413, mimetype="text/plain")
    try:
        verifier.verify(request.headers, body)
    except VerificationFailed as exc:
        return Response(f"{type(exc).__name__}\n", status=401, mimetype="text/plain")
    try:
        resource = json.loads(body)["resource"]
        plain = json.loads(decrypt_resource(apiv3_key, resource))
        if not isinstance(plain, dict):
            raise ValueError("resource is not an object")
    except (DecryptFailed, ValueError, KeyError, TypeError) as exc:
        return Response(f"{type(exc).__name__}\n", status=400, mimetype="text/plain")
    return Response(status=204)


@app.get("/healthz")
def healthz() -> Response:
    return Response("ok\n", mimetype="text/plain")
