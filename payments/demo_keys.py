"""Key material for the demo and the tests: a made-up merchant and the emulator's platform key.

A real merchant downloads its private key and certificate serial from the merchant platform,
sets its APIv3 key there, and fetches WeChat Pay's platform certificates (or public key). For
the emulator all of that is generated here, once, into a folder outside the repository's
tracked files (`instance/wxpay` for `./dev demo`, a temporary folder for the tests):

    merchant_key.pem     the merchant's RSA private key (WXPAY_PRIVATE_KEY_FILE)
    merchant.serial      the serial of the merchant certificate (WXPAY_CERT_SERIAL)
    apiv3.key            the 32-character APIv3 key (WXPAY_APIV3_KEY_FILE)
    emulator_platform.pem   the emulated WeChat Pay's private key + certificate (EMULATOR_PAY_KEY_FILE)
    platform_certs/      that certificate alone, as a merchant stores it (WXPAY_PLATFORM_CERTS_DIR)

`python -m payments.demo_keys FOLDER` prints the settings as shell `export` lines.
"""
from __future__ import annotations

import secrets
import string
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# WeChat's documentation uses 1230000109 as its example merchant number: clearly not a real one.
DEMO_MCHID = "1230000109"


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _self_signed(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    serial = secrets.randbits(159) | (1 << 158)  # 40 hex digits, as WeChat's serials
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=5 * 365))
            .sign(key, hashes.SHA256()))


def ensure_demo_merchant(folder: str | Path) -> dict[str, str]:
    """Create the files once (kept on later runs) and return the settings that use them."""
    root = Path(folder).resolve()
    certs = root / "platform_certs"
    certs.mkdir(parents=True, exist_ok=True)
    merchant_key, serial_file = root / "merchant_key.pem", root / "merchant.serial"
    apiv3, platform = root / "apiv3.key", root / "emulator_platform.pem"
    if not merchant_key.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        merchant_key.write_bytes(_private_pem(key))
        merchant_key.chmod(0o600)
        serial_file.write_text(format(_self_signed(key, DEMO_MCHID).serial_number, "X") + "\n")
    if not apiv3.exists():
        alphabet = string.ascii_letters + string.digits
        apiv3.write_text("".join(secrets.choice(alphabet) for _ in range(32)) + "\n")
        apiv3.chmod(0o600)
    if not platform.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _self_signed(key, "Tenpay.com Root CA (emulated)")
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        platform.write_bytes(_private_pem(key) + cert_pem)
        for old in certs.glob("*.pem"):
            old.unlink()
        (certs / f"wechatpay_{format(cert.serial_number, 'X')}.pem").write_bytes(cert_pem)
    return {
        "WXPAY_MCHID": DEMO_MCHID,
        "WXPAY_CERT_SERIAL": serial_file.read_text().strip(),
        "WXPAY_PRIVATE_KEY_FILE": str(merchant_key),
        "WXPAY_APIV3_KEY_FILE": str(apiv3),
        "WXPAY_PLATFORM_CERTS_DIR": str(certs),
        "EMULATOR_PAY_KEY_FILE": str(platform),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m payments.demo_keys FOLDER", file=sys.stderr)
        return 2
    for name, value in ensure_demo_merchant(argv[0]).items():
        print(f"export {name}='{value}'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
