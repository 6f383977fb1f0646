"""The mini-program's own app credentials: optional, set together, and the OA's by default."""
from __future__ import annotations

import pytest

from config import load_settings
from config.settings import ConfigError


def test_mini_program_defaults_to_the_oa_app():
    s = load_settings({"APP_ENV": "test"})
    assert (s.mp_appid, s.mp_secret) == (s.WECHAT_APPID, s.WECHAT_SECRET)


def test_mini_program_app_of_its_own():
    s = load_settings({"APP_ENV": "test", "WECHAT_MP_APPID": "wx" + "ab" * 8, "WECHAT_MP_SECRET": "mp-secret"})
    assert (s.mp_appid, s.mp_secret) == ("wx" + "ab" * 8, "mp-secret")


@pytest.mark.parametrize("env, message", [
    ({"WECHAT_MP_APPID": "wx" + "ab" * 8}, "set together"),
    ({"WECHAT_MP_SECRET": "mp-secret"}, "set together"),
    ({"WECHAT_MP_APPID": "not-an-appid", "WECHAT_MP_SECRET": "x"}, "WECHAT_MP_APPID must look like"),
])
def test_mini_program_credentials_are_validated(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"APP_ENV": "test", **env})
