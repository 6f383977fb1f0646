"""The app's own WeChat Pay configuration against the emulator: the demo merchant's keys, the
emulator trusting that merchant across resets, and the platform certificate the merchant stores."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from payments.config import PaymentsOff, current_payment_config
from payments.demo_keys import DEMO_MCHID, ensure_demo_merchant
from payments.gateway import WxPayApiError


def test_demo_keys_are_made_once_and_kept(tmp_path):
    first = ensure_demo_merchant(tmp_path / "wxpay")
    key_bytes = open(first["WXPAY_PRIVATE_KEY_FILE"], "rb").read()
    second = ensure_demo_merchant(tmp_path / "wxpay")
    assert first == second
    assert open(second["WXPAY_PRIVATE_KEY_FILE"], "rb").read() == key_bytes
    assert first["WXPAY_MCHID"] == DEMO_MCHID
    assert len(open(first["WXPAY_APIV3_KEY_FILE"]).read().strip()) == 32
    out = subprocess.run([sys.executable, "-m", "payments.demo_keys", str(tmp_path / "wxpay")],
                         capture_output=True, text=True, check=True).stdout
    assert f"export WXPAY_CERT_SERIAL='{first['WXPAY_CERT_SERIAL']}'" in out


def test_the_apps_gateway_places_orders_at_the_emulator_for_both_apps(app, base_url):
    settings = app.extensions["wx"].settings
    with app.app_context():
        config = current_payment_config()
        code_url = config.gateway(settings.WECHAT_APPID).native(
            "WIRING0001", "wiring", 100, config.notify_url)
        prepay = config.gateway(settings.mp_appid).jsapi("WIRING0002", "wiring", 100, config.notify_url,
                                                         payer_openid="o-mp-user")
    assert code_url.startswith("weixin://")
    assert prepay
    # The emulator signs with the platform key whose certificate the merchant stores (until a test
    # rotates it): the serial in WXPAY_PLATFORM_CERTS_DIR is the emulator's first one.
    stored = {p.name for p in Path(settings.WXPAY_PLATFORM_CERTS_DIR).glob("*.pem")}
    first = requests.get(f"{base_url}/_emulator/pay/control/state", timeout=5).json()["platform_serials"][0]
    assert stored == {f"wechatpay_{first}.pem"}


def test_the_emulator_keeps_the_apps_merchant_across_resets(app, base_url, emulator):
    emulator.reset()
    with app.app_context():
        config = current_payment_config()
        gateway = config.gateway(app.extensions["wx"].settings.WECHAT_APPID)
        with pytest.raises(WxPayApiError) as refused:
            gateway.query_by_out_trade_no("NO-SUCH-ORDER")
    # WeChat's ORDER_NOT_EXIST, not SIGN_ERROR: the merchant is still known after the reset.
    assert refused.value.code == "ORDER_NOT_EXIST"
    state = requests.get(f"{base_url}/_emulator/pay/control/state", timeout=5).json()
    assert state["calls"].get("query") == 1


def test_payments_off_is_a_clear_error(app, monkeypatch):
    monkeypatch.setitem(app.extensions, "wx_pay", None)
    with app.app_context(), pytest.raises(PaymentsOff, match="WXPAY_"):
        current_payment_config()
