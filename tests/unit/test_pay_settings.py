"""WeChat Pay settings: all empty means payments off; partly set names what is missing; production
refuses keys kept in the repository and inline APIv3 keys."""
import os

import pytest

from config import ConfigError, load_settings
from config.settings import REPO_ROOT
from payments.config import load_payment_config
from tests.unit.test_config import GOOD_PRODUCTION


def _files(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "apiv3.key").write_text("0123456789abcdefghijKLMNOPQRSTUV")
    (tmp_path / "merchant.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return {"WXPAY_MCHID": "1900000109", "WXPAY_APIV3_KEY_FILE": str(tmp_path / "apiv3.key"),
            "WXPAY_CERT_SERIAL": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            "WXPAY_PRIVATE_KEY_FILE": str(tmp_path / "merchant.pem"),
            "WXPAY_PUBLIC_KEY_FILE": str(tmp_path / "pub.pem"),
            "WXPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0000000000000024101100397200000006",
            "WXPAY_NOTIFY_URL_BASE": "https://store.example.com"}


def test_payments_are_off_when_nothing_is_set():
    s = load_settings({})
    assert not s.payments_enabled and load_payment_config(s) is None
    assert s.WXPAY_API_BASE == "https://api.mch.weixin.qq.com"


def test_a_partial_configuration_names_every_missing_setting():
    with pytest.raises(ConfigError) as err:
        load_settings({"WXPAY_MCHID": "1900000109"})
    message = str(err.value)
    for name in ("WXPAY_APIV3_KEY_FILE", "WXPAY_CERT_SERIAL", "WXPAY_PRIVATE_KEY_FILE",
                 "WXPAY_PUBLIC_KEY_FILE or WXPAY_PLATFORM_CERTS_DIR", "WXPAY_NOTIFY_URL_BASE"):
        assert name in message


def test_a_full_configuration_loads_keys_from_the_named_files(tmp_path):
    config = load_payment_config(load_settings(_files(tmp_path)))
    assert config.mchid == "1900000109" and len(config.apiv3_key) == 32
    assert "0123456789" not in repr(config)


def test_missing_files_and_bad_values_are_named(tmp_path):
    env = {**_files(tmp_path), "WXPAY_PRIVATE_KEY_FILE": str(tmp_path / "nope.pem"),
           "WXPAY_PUBLIC_KEY_ID": "", "WXPAY_MCHID": "abc"}
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    message = str(err.value)
    assert "WXPAY_PRIVATE_KEY_FILE names no readable file" in message
    assert "WXPAY_PUBLIC_KEY_FILE and WXPAY_PUBLIC_KEY_ID" in message
    assert "WXPAY_MCHID" in message


def test_production_refuses_keys_from_the_repository_and_inline_keys(tmp_path):
    demo = os.path.join(REPO_ROOT, "config", "settings.py")  # any file inside the repo
    env = {**GOOD_PRODUCTION, **_files(tmp_path), "WXPAY_PRIVATE_KEY_FILE": demo,
           "WXPAY_APIV3_KEY": "0123456789abcdefghijKLMNOPQRSTUV"}
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    message = str(err.value)
    assert "WXPAY_PRIVATE_KEY_FILE points into the repository" in message
    assert "WXPAY_APIV3_KEY must not be given inline" in message


def test_production_accepts_real_key_files(tmp_path):
    assert load_settings({**GOOD_PRODUCTION, **_files(tmp_path)}).payments_enabled
