"""What the emulated WeChat Pay remembers: its platform keys, merchants, orders, refunds, payment
codes shown by shoppers, injected faults, notifications sent and bill files.

The platform key and certificate are generated once when the emulator starts and survive
`reset()` (a rotation control adds a new one); everything else is forgotten on reset, and a
generation counter stops notification threads of the previous test.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SHANGHAI = timezone(timedelta(hours=8))  # WeChat writes times in Beijing time

# §10.4: WeChat's notification retry schedule after the first attempt (seconds).
NOTIFY_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800,
                   21600, 21600)


@dataclass
class PlatformCert:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    serial: str
    pem: bytes


def new_platform_cert() -> PlatformCert:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (emulated)")])
    now = datetime.now(timezone.utc)
    serial = secrets.randbits(159) | (1 << 158)  # 40 hex digits, as WeChat's serials
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=5 * 365))
            .sign(key, hashes.SHA256()))
    return PlatformCert(key, cert, format(serial, "X"), cert.public_bytes(serialization.Encoding.PEM))


def load_platform_cert(path: str) -> PlatformCert:
    """The platform key and certificate from one PEM file (payments/demo_keys.py writes it), so
    that a merchant configured with that certificate trusts the emulator across restarts."""
    with open(path, "rb") as fh:
        data = fh.read()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an RSA private key")
    cert = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE-----"):])
    return PlatformCert(key, cert, format(cert.serial_number, "X"), cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class PayFault:
    """The next `times` calls to `api` ("*" any): answer `status`/`code`, or wait `delay` s, or
    sign the answer and then alter it (`tamper`), or send it unsigned, or add `extra` fields."""

    api: str
    status: int | None = None
    code: str = ""
    message: str = ""
    delay: float = 0.0
    tamper: bool = False
    unsigned: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    times: int = 1


class PayEmulatorState:
    def __init__(self, platform: PlatformCert | None = None) -> None:
        self.platform: list[PlatformCert] = [platform or new_platform_cert()]
        # Merchants registered when the app starts (its own WXPAY_* configuration, as if set up in
        # the merchant platform): they survive reset(), test-registered ones do not.
        self.standing_merchants: dict[str, dict[str, Any]] = {}
        self.reset()

    @property
    def current(self) -> PlatformCert:
        return self.platform[-1]

    def rotate(self) -> PlatformCert:
        """A new platform certificate signs from now on; the old one stays listed."""
        cert = new_platform_cert()
        self.platform.append(cert)
        return cert

    def reset(self) -> None:
        for timer in getattr(self, "timers", []):
            timer.cancel()
        self.timers: list[threading.Timer] = []
        self.generation = getattr(self, "generation", 0) + 1
        # mchid -> {appids, serial_no, public_key, apiv3_key}
        self.merchants: dict[str, dict[str, Any]] = dict(self.standing_merchants)
        self.orders: dict[str, dict[str, Any]] = {}  # (mchid, out_trade_no) keyed as "mchid/no"
        self.refunds: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}  # auth_code -> {openid, seconds, outcome, used}
        self.faults: list[PayFault] = []
        self.notifications: list[dict[str, Any]] = []
        self.bills: dict[str, bytes] = {}
        self.calls: dict[str, int] = {}
        self.notify_time_factor = 1.0  # divide the retry schedule by this (tests: 1000)
        self.refund_settle_seconds = 0.2  # PROCESSING -> SUCCESS after this
        # §9.3: WeChat revokes an unpaid payment-code order 45 s after creation.
        self.codepay_auto_revoke_seconds = 45.0

    def take_fault(self, api: str) -> PayFault | None:
        for fault in self.faults:
            if fault.api in (api, "*") and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None
