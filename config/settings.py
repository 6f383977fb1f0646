"""Settings from environment variables (and a `.env` file outside production).

Every setting has one name in the environment. Start-up validation names each variable that is
missing or malformed in a single error, so an operator fixes them all in one go.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, fields
from typing import Mapping

# Demo values: good enough to run the service and its emulator locally, refused in production.
DEMO_APPID = "wx00d3a0cafe5e7a11"
DEMO_SECRET = "demo-app-secret-not-for-production"
DEMO_TOKEN = "demostoretoken"
DEMO_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
DEMO_ORIGINAL_ID = "gh_demo00store"
DEMO_SECRET_KEY = "dev-secret-key-not-for-production"
DEMO_SECRETS = {DEMO_SECRET, DEMO_TOKEN, DEMO_AES_KEY, DEMO_SECRET_KEY}

WECHAT_PUBLIC_API = "https://api.weixin.qq.com"
WXPAY_PUBLIC_API = "https://api.mch.weixin.qq.com"
WECHAT_OAUTH_PUBLIC = "https://open.weixin.qq.com"  # web authorization (网页授权) pages
# Files below this folder ship with the repo (demo and test keys): production refuses them.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WXPAY_FIELDS = ("WXPAY_MCHID", "WXPAY_APIV3_KEY_FILE", "WXPAY_APIV3_KEY", "WXPAY_CERT_SERIAL",
                "WXPAY_PRIVATE_KEY_FILE", "WXPAY_PUBLIC_KEY_FILE", "WXPAY_PUBLIC_KEY_ID",
                "WXPAY_PLATFORM_CERTS_DIR", "WXPAY_NOTIFY_URL_BASE")
MEMORY_REDIS = "memory://"

_APPID_RE = re.compile(r"^wx[0-9a-f]{16}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9]{3,32}$")
_AES_KEY_RE = re.compile(r"^[A-Za-z0-9+/]{43}$")


class ConfigError(RuntimeError):
    """Raised at start-up when settings are missing or malformed; the message lists them all."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Base settings. Field names are the environment variable names."""

    ENV_NAME = "base"

    WECHAT_APPID: str = ""
    WECHAT_SECRET: str = ""
    WECHAT_TOKEN: str = ""
    WECHAT_AES_KEY: str = ""
    # The account's original id (gh_...). When set, pushes addressed elsewhere are refused.
    WECHAT_ORIGINAL_ID: str = ""
    WECHAT_API_BASE: str = WECHAT_PUBLIC_API
    # The mini-program's own AppID and AppSecret: a separate WeChat account, linked to the OA by
    # the unionid. Empty: the OA's are used (the demo, whose emulator plays a single app).
    WECHAT_MP_APPID: str = ""
    WECHAT_MP_SECRET: str = ""
    DATABASE_URL: str = ""
    REDIS_URL: str = ""
    SECRET_KEY: str = ""
    # "rq" (a real RQ queue on REDIS_URL) or "inprocess" (a thread in this process; demo/tests).
    JOB_QUEUE: str = ""
    WECHAT_EMULATOR: bool = False
    # Refuse unencrypted pushes. Turn on when the account runs in safe mode: a plaintext push is
    # signed only over token/timestamp/nonce, so a captured query string could carry any body.
    WECHAT_REQUIRE_ENCRYPTION: bool = False
    # How far a push's timestamp may be from now, in seconds.
    WEBHOOK_MAX_SKEW: int = 300
    # Largest webhook body accepted, in bytes. WeChat's pushes are a few KB.
    WEBHOOK_MAX_BODY: int = 64 * 1024
    # How long a push's claim lasts, in seconds: longer than WeChat's retry window (three attempts,
    # 5 s apart), so that its retries find it; a push still unfinished after this may run again.
    DEDUP_PENDING_TTL: int = 30
    WELCOME_TEXT: str = "欢迎关注！回复“帮助”查看可以为您做的事。"
    HELP_TEXT: str = (
        "您可以：\n"
        "· 回复“活动”查看商场最新活动\n"
        "· 回复“新闻”查看商场资讯\n"
        "· 回复“门店”查看营业时间与地址\n"
        "· 回复“人工”联系客服"
    )
    LOG_FORMAT: str = "json"
    LOG_LEVEL: str = "INFO"
    # One-key customer service. The hours agents answer (store time, Asia/Shanghai); outside them a
    # shopper who asks for a person is queued and told when someone will answer.
    DESK_HOURS: str = "10:00-22:00"
    # Seconds an agent has to open a conversation offered to them before it goes to the next one.
    DESK_OFFER_SECONDS: int = 45
    # The OA template an agent's answer goes out as when WeChat's customer-service window is shut
    # (keywords: first, keyword1 = the store's name, keyword2 = the answer, remark). Empty: no fallback.
    DESK_FALLBACK_TEMPLATE_ID: str = ""
    # Longest answer an agent may send, in characters (WeChat's text messages take about 2,000).
    DESK_MAX_MESSAGE: int = 2000
    # The O2O funnel (marketing.funnel): a payment is credited to the last campaign touch at most
    # this many days before it (last-touch view).
    FUNNEL_ATTRIBUTION_DAYS: int = 7
    # Reservations. Open bookings (booked or awaiting confirmation) one shopper may have at once.
    RESERVATION_MAX_OPEN: int = 3
    # No cancel or reschedule by the shopper within this many minutes of the start (the counter can).
    RESERVATION_CUTOFF_MINUTES: int = 120
    # Not checked in by start + this many minutes: a no-show.
    RESERVATION_NOSHOW_GRACE_MINUTES: int = 15
    # After this many no-shows in RESERVATION_NOSHOW_DAYS, a booking waits for the counter to confirm it.
    RESERVATION_NOSHOW_LIMIT: int = 2
    RESERVATION_NOSHOW_DAYS: int = 90
    # Minutes a waitlist offer is held for the shopper before it passes to the next one.
    RESERVATION_OFFER_MINUTES: int = 15
    # Reminders, in minutes before the start (24 h and 2 h); one of each kind per booking.
    RESERVATION_REMINDERS: tuple[int, ...] = (1440, 120)
    # Holds end this many minutes after the chosen visit day's store midnight (1440: end of that day).
    RESERVATION_HOLD_MINUTES: int = 1440
    # Confirm new goods holds at once (no staff step).
    RESERVATION_AUTO_CONFIRM_HOLDS: bool = False
    # The mini-program's subscribe-message template for reservations (thing1 = what, time2 = when,
    # thing3 = where, thing4 = the note, phrase5 = what happened), and the OA template used where no
    # consent remains (keyword1 = what, keyword2 = when, keyword3 = where, keyword4 = what happened,
    # keyword5 = the note; the legacy first/remark are not shown by WeChat). Empty: that channel is off.
    RESERVATION_SUBSCRIBE_TEMPLATE_ID: str = ""
    RESERVATION_TEMPLATE_ID: str = ""
    # Brand news to a brand's subscribers (marketing/announcements.py): the OA template (keyword1 =
    # brand, keyword2 = what, keyword3 = when, keyword4 = the note) and the mini-program subscribe
    # template used while the shopper has a one-time consent left (thing1 brand, thing2 what,
    # time3 when, thing4 note). Empty: that channel is off.
    BRAND_NEWS_TEMPLATE_ID: str = ""
    BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID: str = ""
    # At most this many brand-news messages per shopper in any 7 days, across brands (0: none).
    BRAND_NEWS_WEEKLY_CAP: int = 2
    # Store-time hours in which no brand news is sent ("off" for none): a chunk due then waits for the end.
    BRAND_NEWS_QUIET_HOURS: str = "21:00-09:00"
    # Subscribers per chunk job (each chunk is its own unit of work).
    BRAND_NEWS_CHUNK_SIZE: int = 500
    # Seconds the emulator waits for the webhook before retrying a push (WeChat: 5).
    EMULATOR_PUSH_TIMEOUT: float = 5.0
    # Back-off (seconds) between retries of jobs that failed on a transient WeChat error.
    JOB_RETRY_INTERVALS: tuple[int, ...] = (5, 30, 120, 600)
    # WeChat Pay (API v3). All empty: payments are off (the notify endpoints answer 503). Keys are
    # read from the files named here, never from the repo; WXPAY_APIV3_KEY may carry the key itself.
    WXPAY_MCHID: str = ""
    WXPAY_APIV3_KEY_FILE: str = ""
    WXPAY_APIV3_KEY: str = ""
    WXPAY_CERT_SERIAL: str = ""
    WXPAY_PRIVATE_KEY_FILE: str = ""
    WXPAY_PUBLIC_KEY_FILE: str = ""
    WXPAY_PUBLIC_KEY_ID: str = ""
    WXPAY_PLATFORM_CERTS_DIR: str = ""
    WXPAY_API_BASE: str = WXPAY_PUBLIC_API
    WXPAY_NOTIFY_URL_BASE: str = ""
    # How long a counter QR or a mini-program prepay stays payable before the order is closed.
    WXPAY_ORDER_TTL_MINUTES: int = 15
    # The emulator only: a PEM file holding the platform private key and certificate the emulated
    # WeChat Pay signs with (its certificate is what WXPAY_PLATFORM_CERTS_DIR holds). Written by
    # `python -m payments.demo_keys`; empty: the emulator makes a fresh key at start.
    EMULATOR_PAY_KEY_FILE: str = ""

    @property
    def payments_enabled(self) -> bool:
        return any(getattr(self, name) for name in WXPAY_FIELDS)

    def payment_problems(self) -> list[str]:
        """WeChat Pay settings: all or nothing. Key files are checked to exist, not parsed here."""
        if not self.payments_enabled:
            return []
        found: list[str] = []
        for name in ("WXPAY_MCHID", "WXPAY_CERT_SERIAL", "WXPAY_PRIVATE_KEY_FILE",
                     "WXPAY_NOTIFY_URL_BASE"):
            if not getattr(self, name):
                found.append(f"{name} is missing (WeChat Pay is partly configured)")
        if not (self.WXPAY_APIV3_KEY_FILE or self.WXPAY_APIV3_KEY):
            found.append("WXPAY_APIV3_KEY_FILE (or WXPAY_APIV3_KEY) is missing (WeChat Pay is partly configured)")
        if self.WXPAY_APIV3_KEY and len(self.WXPAY_APIV3_KEY.encode()) != 32:
            found.append("WXPAY_APIV3_KEY must be the 32-character APIv3 key")
        if bool(self.WXPAY_PUBLIC_KEY_FILE) != bool(self.WXPAY_PUBLIC_KEY_ID):
            found.append("WXPAY_PUBLIC_KEY_FILE and WXPAY_PUBLIC_KEY_ID are set together (or neither)")
        if self.WXPAY_PUBLIC_KEY_ID and not self.WXPAY_PUBLIC_KEY_ID.startswith("PUB_KEY_ID_"):
            found.append("WXPAY_PUBLIC_KEY_ID must start with PUB_KEY_ID_")
        if not (self.WXPAY_PUBLIC_KEY_FILE or self.WXPAY_PLATFORM_CERTS_DIR):
            found.append("WXPAY_PUBLIC_KEY_FILE or WXPAY_PLATFORM_CERTS_DIR is missing "
                         "(needed to verify WeChat Pay's signatures)")
        if self.WXPAY_MCHID and not re.match(r"^[0-9]{8,12}$", self.WXPAY_MCHID):
            found.append("WXPAY_MCHID must be the merchant number (digits)")
        for name in ("WXPAY_APIV3_KEY_FILE", "WXPAY_PRIVATE_KEY_FILE", "WXPAY_PUBLIC_KEY_FILE"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                found.append(f"{name} names no readable file: {path}")
        if self.WXPAY_PLATFORM_CERTS_DIR and not os.path.isdir(self.WXPAY_PLATFORM_CERTS_DIR):
            found.append(f"WXPAY_PLATFORM_CERTS_DIR is not a directory: {self.WXPAY_PLATFORM_CERTS_DIR}")
        if not re.match(r"^https?://[^\s/]+", self.WXPAY_API_BASE or ""):
            found.append("WXPAY_API_BASE must be an http(s) URL")
        if self.WXPAY_NOTIFY_URL_BASE and not re.match(r"^https?://[^\s/]+", self.WXPAY_NOTIFY_URL_BASE):
            found.append("WXPAY_NOTIFY_URL_BASE must be an http(s) URL")
        return found

    @property
    def uses_memory_redis(self) -> bool:
        return self.REDIS_URL == MEMORY_REDIS

    @property
    def mp_appid(self) -> str:
        return self.WECHAT_MP_APPID or self.WECHAT_APPID

    @property
    def oauth_base(self) -> str:
        """Where the shopper's browser is sent for web authorization: WeChat's open.weixin.qq.com,
        or the emulator (which serves /connect/oauth2/authorize beside its API) when it is on and
        WECHAT_API_BASE points at it."""
        if self.WECHAT_EMULATOR and self.WECHAT_API_BASE.rstrip("/") != WECHAT_PUBLIC_API:
            return self.WECHAT_API_BASE.rstrip("/")
        return WECHAT_OAUTH_PUBLIC

    @property
    def mp_secret(self) -> str:
        return self.WECHAT_MP_SECRET if self.WECHAT_MP_APPID else self.WECHAT_SECRET

    @property
    def aes_key_bytes(self) -> bytes:
        return base64.b64decode(self.WECHAT_AES_KEY + "=")

    def problems(self) -> list[str]:
        """Every malformed or missing setting, described for the operator."""
        found: list[str] = []
        for name in ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_TOKEN", "WECHAT_AES_KEY",
                     "DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
            if not getattr(self, name):
                found.append(f"{name} is missing")
        if self.WECHAT_APPID and not _APPID_RE.match(self.WECHAT_APPID):
            found.append("WECHAT_APPID must look like wx followed by 16 hex digits")
        if self.WECHAT_MP_APPID and not _APPID_RE.match(self.WECHAT_MP_APPID):
            found.append("WECHAT_MP_APPID must look like wx followed by 16 hex digits")
        if bool(self.WECHAT_MP_APPID) != bool(self.WECHAT_MP_SECRET):
            found.append("WECHAT_MP_APPID and WECHAT_MP_SECRET are set together (or neither)")
        if self.WECHAT_TOKEN and not _TOKEN_RE.match(self.WECHAT_TOKEN):
            found.append("WECHAT_TOKEN must be 3-32 letters or digits (as the WeChat console requires)")
        if self.WECHAT_AES_KEY:
            ok = bool(_AES_KEY_RE.match(self.WECHAT_AES_KEY))
            if ok:
                try:
                    ok = len(self.aes_key_bytes) == 32
                except (binascii.Error, ValueError):
                    ok = False
            if not ok:
                found.append("WECHAT_AES_KEY must be the 43-character EncodingAESKey from the console")
        if self.WECHAT_ORIGINAL_ID and not self.WECHAT_ORIGINAL_ID.startswith("gh_"):
            found.append("WECHAT_ORIGINAL_ID must start with gh_")
        if not re.match(r"^https?://[^\s/]+", self.WECHAT_API_BASE or ""):
            found.append("WECHAT_API_BASE must be an http(s) URL")
        if self.JOB_QUEUE not in {"rq", "inprocess"}:
            found.append("JOB_QUEUE must be rq or inprocess")
        if self.JOB_QUEUE == "rq" and self.uses_memory_redis:
            found.append("JOB_QUEUE=rq needs a real REDIS_URL (redis://...), not memory://")
        if self.REDIS_URL and not (self.uses_memory_redis or self.REDIS_URL.startswith(("redis://", "rediss://", "unix://"))):
            found.append("REDIS_URL must be redis://, rediss://, unix:// or memory://")
        if self.DATABASE_URL and "://" not in self.DATABASE_URL:
            found.append("DATABASE_URL must be a SQLAlchemy URL such as postgresql+psycopg://...")
        if self.LOG_FORMAT not in {"json", "text"}:
            found.append("LOG_FORMAT must be json or text")
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]", self.DESK_HOURS or ""):
            found.append("DESK_HOURS must be HH:MM-HH:MM in store time, e.g. 10:00-22:00")
        if self.DESK_OFFER_SECONDS < 5:
            found.append("DESK_OFFER_SECONDS must be at least 5")
        if not 1 <= self.FUNNEL_ATTRIBUTION_DAYS <= 90:
            found.append("FUNNEL_ATTRIBUTION_DAYS must be 1 to 90 (days before a payment a campaign touch counts)")
        if self.RESERVATION_MAX_OPEN < 1:
            found.append("RESERVATION_MAX_OPEN must be at least 1")
        if self.RESERVATION_OFFER_MINUTES < 1:
            found.append("RESERVATION_OFFER_MINUTES must be at least 1")
        if any(m <= 0 for m in self.RESERVATION_REMINDERS):
            found.append("RESERVATION_REMINDERS are minutes before the start, each above 0 (e.g. 1440,120)")
        if not 1 <= self.RESERVATION_HOLD_MINUTES <= 7 * 1440:
            found.append("RESERVATION_HOLD_MINUTES must be 1 to 10080")
        if self.BRAND_NEWS_QUIET_HOURS not in ("", "off") and not re.fullmatch(
                r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]", self.BRAND_NEWS_QUIET_HOURS):
            found.append("BRAND_NEWS_QUIET_HOURS must be HH:MM-HH:MM in store time (e.g. 21:00-09:00), or off")
        if self.BRAND_NEWS_WEEKLY_CAP < 0:
            found.append("BRAND_NEWS_WEEKLY_CAP must be 0 or more")
        if not 1 <= self.BRAND_NEWS_CHUNK_SIZE <= 5000:
            found.append("BRAND_NEWS_CHUNK_SIZE must be 1 to 5000")
        found.extend(self.payment_problems())
        return found

    def validate(self) -> "Settings":
        found = self.problems()
        if found:
            raise ConfigError(
                f"Invalid {self.ENV_NAME} configuration:\n  - " + "\n  - ".join(found)
            )
        return self


@dataclass(frozen=True)
class DevelopmentSettings(Settings):
    """The one-command demo: embedded SQLite, in-process Redis and queue, the emulator on."""

    ENV_NAME = "development"

    WECHAT_APPID: str = DEMO_APPID
    WECHAT_SECRET: str = DEMO_SECRET
    WECHAT_TOKEN: str = DEMO_TOKEN
    WECHAT_AES_KEY: str = DEMO_AES_KEY
    WECHAT_ORIGINAL_ID: str = DEMO_ORIGINAL_ID
    DATABASE_URL: str = "sqlite:///instance/wx_service.db"
    REDIS_URL: str = MEMORY_REDIS
    SECRET_KEY: str = DEMO_SECRET_KEY
    WECHAT_EMULATOR: bool = True
    LOG_FORMAT: str = "text"
    # The emulator knows these templates as if they had been added in the MP console.
    DESK_FALLBACK_TEMPLATE_ID: str = "DEMO_desk_answer_template"
    RESERVATION_SUBSCRIBE_TEMPLATE_ID: str = "DEMO_reservation_subscribe"
    RESERVATION_TEMPLATE_ID: str = "DEMO_reservation_template"
    BRAND_NEWS_TEMPLATE_ID: str = "DEMO_brand_news_template"
    BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID: str = "DEMO_brand_news_subscribe"


@dataclass(frozen=True)
class TestSettings(DevelopmentSettings):
    """The test suite: like development, but an in-memory database unless one is given."""

    ENV_NAME = "test"

    DATABASE_URL: str = "sqlite://"
    EMULATOR_PUSH_TIMEOUT: float = 1.0
    JOB_RETRY_INTERVALS: tuple[int, ...] = (0, 0, 0)
    LOG_LEVEL: str = "WARNING"
    # The desk is staffed round the clock in tests, whatever time the suite runs; the hours
    # themselves are tested with explicit times.
    DESK_HOURS: str = "00:00-24:00"
    # Likewise no quiet hours for brand news; the quiet hours are tested with explicit times.
    BRAND_NEWS_QUIET_HOURS: str = "off"


@dataclass(frozen=True)
class ProductionSettings(Settings):
    """Production: everything from the environment; demo secrets and the emulator are refused."""

    ENV_NAME = "production"

    JOB_QUEUE: str = "rq"

    def problems(self) -> list[str]:
        found = super().problems()
        if self.WECHAT_EMULATOR:
            found.append("WECHAT_EMULATOR must be off in production")
        for name in ("WECHAT_SECRET", "WECHAT_MP_SECRET", "WECHAT_TOKEN", "WECHAT_AES_KEY", "SECRET_KEY"):
            if getattr(self, name) in DEMO_SECRETS:
                found.append(f"{name} is a demo default; set the real value")
        if self.WECHAT_APPID == DEMO_APPID:
            found.append("WECHAT_APPID is the demo app id; set the real one")
        if self.DATABASE_URL.startswith("sqlite"):
            found.append("DATABASE_URL must point at Postgres in production, not SQLite")
        if self.uses_memory_redis:
            found.append("REDIS_URL must be a real Redis in production, not memory://")
        if self.JOB_QUEUE != "rq":
            found.append("JOB_QUEUE must be rq in production")
        for name in ("WXPAY_APIV3_KEY_FILE", "WXPAY_PRIVATE_KEY_FILE", "WXPAY_PUBLIC_KEY_FILE",
                     "WXPAY_PLATFORM_CERTS_DIR"):
            path = getattr(self, name)
            if path and os.path.realpath(path).startswith(REPO_ROOT + os.sep):
                found.append(f"{name} points into the repository (a demo key); use the real key's file")
        if self.WXPAY_APIV3_KEY:
            found.append("WXPAY_APIV3_KEY must not be given inline in production; use WXPAY_APIV3_KEY_FILE")
        if self.payments_enabled and not self.WXPAY_NOTIFY_URL_BASE.startswith("https://"):
            found.append("WXPAY_NOTIFY_URL_BASE must be https:// in production")
        return found


ENVIRONMENTS: dict[str, type[Settings]] = {
    "development": DevelopmentSettings,
    "test": TestSettings,
    "production": ProductionSettings,
}


def _coerce(raw: str, default: object) -> object:
    if isinstance(default, bool):
        return _bool(raw)
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(int(part) for part in raw.split(",") if part.strip())
    return raw.strip()


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build and validate the settings for APP_ENV (development by default).

    A `.env` file in the working directory is read first outside production; real environment
    variables win over it, and keyword overrides (used by tests) win over both.
    """
    if env is None:
        env = dict(os.environ)
        if env.get("APP_ENV", "development") != "production":
            from dotenv import dotenv_values

            file_values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
            env = {**file_values, **env}
    env_name = env.get("APP_ENV", "development")
    if env_name not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env_name!r}")
    cls = ENVIRONMENTS[env_name]
    values: dict[str, object] = {}
    bad: list[str] = []
    for f in fields(cls):
        default = f.default
        if f.name in env and env[f.name] != "":
            try:
                values[f.name] = _coerce(env[f.name], default)
            except ValueError:
                bad.append(f"{f.name} is malformed: {env[f.name]!r}")
    if bad:
        raise ConfigError(f"Invalid {env_name} configuration:\n  - " + "\n  - ".join(bad))
    values.update(overrides)
    settings = cls(**values)  # type: ignore[arg-type]
    if not settings.JOB_QUEUE:
        object.__setattr__(settings, "JOB_QUEUE", "inprocess" if settings.uses_memory_redis else "rq")
    return settings.validate()
