"""Start-up validation: the operator is told every problem at once, and production is strict."""
import pytest

from config import ConfigError, load_settings
from config.settings import DEMO_AES_KEY, DEMO_APPID

GOOD_PRODUCTION = {
    "APP_ENV": "production",
    "WECHAT_APPID": "wx1234567890abcdef",
    "WECHAT_SECRET": "a-real-secret-from-the-console",
    "WECHAT_TOKEN": "StoreToken2026",
    "WECHAT_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "DATABASE_URL": "postgresql+psycopg://app@db/store",
    "REDIS_URL": "redis://cache:6379/0",
    "SECRET_KEY": "a-long-random-secret-key",
}


def test_development_defaults_run_embedded_with_the_emulator():
    s = load_settings({})
    assert s.DATABASE_URL.startswith("sqlite")
    assert s.uses_memory_redis and s.JOB_QUEUE == "inprocess"
    assert s.WECHAT_EMULATOR is True
    assert s.WECHAT_API_BASE == "https://api.weixin.qq.com"


def test_a_real_redis_url_switches_the_queue_to_rq():
    assert load_settings({"REDIS_URL": "redis://127.0.0.1:6379/0"}).JOB_QUEUE == "rq"


def test_valid_production_settings_load():
    s = load_settings(GOOD_PRODUCTION)
    assert s.JOB_QUEUE == "rq" and s.WECHAT_EMULATOR is False


def test_production_lists_every_missing_variable_by_name():
    with pytest.raises(ConfigError) as err:
        load_settings({"APP_ENV": "production"})
    message = str(err.value)
    for name in ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_TOKEN", "WECHAT_AES_KEY", "DATABASE_URL",
                 "REDIS_URL", "SECRET_KEY"):
        assert f"{name} is missing" in message


@pytest.mark.parametrize("override, complaint", [
    ({"WECHAT_EMULATOR": "true"}, "WECHAT_EMULATOR must be off in production"),
    ({"WECHAT_AES_KEY": DEMO_AES_KEY}, "WECHAT_AES_KEY is a demo default"),
    ({"WECHAT_APPID": DEMO_APPID}, "WECHAT_APPID is the demo app id"),
    ({"DATABASE_URL": "sqlite:///x.db"}, "must point at Postgres"),
    ({"REDIS_URL": "memory://"}, "not memory://"),
    ({"JOB_QUEUE": "inprocess"}, "JOB_QUEUE must be rq in production"),
])
def test_production_refuses_demo_and_embedded_choices(override, complaint):
    with pytest.raises(ConfigError, match=complaint):
        load_settings({**GOOD_PRODUCTION, **override})


@pytest.mark.parametrize("name, value, complaint", [
    ("WECHAT_APPID", "wx123", "WECHAT_APPID must look like wx"),
    ("WECHAT_AES_KEY", "short", "43-character EncodingAESKey"),
    ("WECHAT_AES_KEY", "!" * 43, "43-character EncodingAESKey"),
    ("WECHAT_TOKEN", "has spaces in it", "WECHAT_TOKEN must be"),
    ("WECHAT_API_BASE", "ftp://nowhere", "WECHAT_API_BASE must be an http"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL must be"),
    ("WECHAT_ORIGINAL_ID", "store", "must start with gh_"),
    ("FUNNEL_ATTRIBUTION_DAYS", "0", "FUNNEL_ATTRIBUTION_DAYS must be 1 to 90"),
    ("FUNNEL_ATTRIBUTION_DAYS", "365", "FUNNEL_ATTRIBUTION_DAYS must be 1 to 90"),
    ("BRAND_NEWS_QUIET_HOURS", "9pm-9am", "BRAND_NEWS_QUIET_HOURS must be HH:MM-HH:MM"),
    ("BRAND_NEWS_QUIET_HOURS", "21:00-24:00", "BRAND_NEWS_QUIET_HOURS must be HH:MM-HH:MM"),
    ("BRAND_NEWS_WEEKLY_CAP", "-1", "BRAND_NEWS_WEEKLY_CAP must be 0 or more"),
    ("BRAND_NEWS_CHUNK_SIZE", "0", "BRAND_NEWS_CHUNK_SIZE must be 1 to 5000"),
])
def test_malformed_values_are_named(name, value, complaint):
    with pytest.raises(ConfigError, match=complaint):
        load_settings({**GOOD_PRODUCTION, name: value})


def test_non_numeric_number_is_reported_not_crashed():
    with pytest.raises(ConfigError, match="WEBHOOK_MAX_SKEW is malformed"):
        load_settings({"WEBHOOK_MAX_SKEW": "five minutes"})


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="APP_ENV must be one of"):
        load_settings({"APP_ENV": "staging"})


def test_production_app_refuses_to_start_with_the_emulator():
    from wx_service.app import create_app

    with pytest.raises(ConfigError):
        create_app(load_settings({**GOOD_PRODUCTION, "WECHAT_EMULATOR": "1"}))


def test_the_funnels_window_is_7_days_unless_set():
    assert load_settings(GOOD_PRODUCTION).FUNNEL_ATTRIBUTION_DAYS == 7
    assert load_settings({**GOOD_PRODUCTION, "FUNNEL_ATTRIBUTION_DAYS": "14"}).FUNNEL_ATTRIBUTION_DAYS == 14


def test_brand_news_quiet_hours_default_and_may_be_off():
    assert load_settings(GOOD_PRODUCTION).BRAND_NEWS_QUIET_HOURS == "21:00-09:00"
    assert load_settings({**GOOD_PRODUCTION, "BRAND_NEWS_QUIET_HOURS": "off"}).BRAND_NEWS_QUIET_HOURS == "off"
