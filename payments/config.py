"""WeChat Pay configuration built once per app from settings: keys loaded, verifier ready.

`load_payment_config(settings)` returns None when payments are off (every WXPAY_* empty).
Key material is read from the files the environment names; a bad file fails at start-up.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from payments import wxpay_v3
from payments.exceptions import KeyLoadError


@dataclass(frozen=True)
class PaymentConfig:
    mchid: str
    apiv3_key: bytes
    verifier: wxpay_v3.WechatPayVerifier
    signer: wxpay_v3.MerchantSigner
    api_base: str
    notify_url_base: str
    order_ttl_minutes: int = 15
    _gateways: dict = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def notify_url(self) -> str:
        return self.notify_url_base.rstrip("/") + "/pay/notify"

    @property
    def refund_notify_url(self) -> str:
        return self.notify_url_base.rstrip("/") + "/pay/refund-notify"

    def gateway(self, appid: str):
        """The v3 client for orders placed for `appid` (the OA's or the mini-program's), one per
        app per process: it shares the verifier, so a certificate downloaded once serves all."""
        from payments.gateway import WechatPayGateway

        with self._lock:
            gateway = self._gateways.get(appid)
            if gateway is None:
                gateway = WechatPayGateway(mchid=self.mchid, appid=appid, serial_no=self.signer.serial_no,
                                           private_key=self.signer.private_key, apiv3_key=self.apiv3_key,
                                           verifier=self.verifier, api_base=self.api_base)
                self._gateways[appid] = gateway
            return gateway

    def __repr__(self) -> str:  # never print the key
        return f"PaymentConfig(mchid={self.mchid!r}, api_base={self.api_base!r})"


def _platform_store(folder: str) -> wxpay_v3.PlatformCertificateStore:
    store = wxpay_v3.PlatformCertificateStore()
    for name in sorted(os.listdir(folder)):
        if name.endswith((".pem", ".crt")):
            for cert in wxpay_v3.load_certificates(os.path.join(folder, name)):
                store.add(cert)
    return store


def load_payment_config(settings) -> PaymentConfig | None:
    if not settings.payments_enabled:
        return None
    if settings.WXPAY_APIV3_KEY_FILE:
        with open(settings.WXPAY_APIV3_KEY_FILE, "rb") as fh:
            raw = fh.read().strip()
    else:
        raw = settings.WXPAY_APIV3_KEY.encode()
    key = wxpay_v3.api_v3_key(raw)
    certificates = _platform_store(settings.WXPAY_PLATFORM_CERTS_DIR) if settings.WXPAY_PLATFORM_CERTS_DIR else None
    public_key = None
    if settings.WXPAY_PUBLIC_KEY_FILE:
        public_key = wxpay_v3.WechatPayPublicKey(settings.WXPAY_PUBLIC_KEY_ID,
                                                 wxpay_v3.load_public_key(settings.WXPAY_PUBLIC_KEY_FILE))
    if certificates is not None and not len(certificates) and public_key is None:
        raise KeyLoadError(f"no platform certificate in {settings.WXPAY_PLATFORM_CERTS_DIR}")
    verifier = wxpay_v3.WechatPayVerifier(certificates, public_key)
    private_key: rsa.RSAPrivateKey = wxpay_v3.load_private_key(settings.WXPAY_PRIVATE_KEY_FILE)
    signer = wxpay_v3.MerchantSigner(settings.WXPAY_MCHID, settings.WXPAY_CERT_SERIAL, private_key)
    return PaymentConfig(settings.WXPAY_MCHID, key, verifier, signer, settings.WXPAY_API_BASE,
                         settings.WXPAY_NOTIFY_URL_BASE, settings.WXPAY_ORDER_TTL_MINUTES)



class PaymentsOff(RuntimeError):
    """WeChat Pay is not configured (every WXPAY_* setting is empty)."""


def current_payment_config() -> PaymentConfig:
    """The running app's payment configuration; PaymentsOff when payments are not set up."""
    from flask import current_app

    config = current_app.extensions.get("wx_pay")
    if config is None:
        raise PaymentsOff("WeChat Pay is not configured: set the WXPAY_* settings (see README)")
    return config
