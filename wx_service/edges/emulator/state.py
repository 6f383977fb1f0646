"""What the emulated WeChat remembers: credentials, followers, windows, the menu, QR tickets, chats.

In memory, behind one lock: the emulator runs inside one process (the demo server or a test's live
server). Time comes from `now()`, which tests can move forward to reach WeChat's time limits.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from wx_service.edges.emulator.pay_state import PayEmulatorState

PREFIX = "/_emulator"  # where the emulator is mounted

TOKEN_LIFETIME = 7200
HANDOVER = 300  # both old and new stable tokens work for 5 minutes around a refresh

# Customer-service windows (reference §5.2): a user message opens 5 messages for 48 h; a menu
# click, a follow or a QR scan opens 3 messages for 1 minute; in a mini-program, the user entering
# the customer-service session (user_enter_tempsession) opens 2 messages for 1 minute.
MESSAGE_WINDOW = (48 * 3600, 5)
EVENT_WINDOW = (60, 3)
MP_SESSION_WINDOW = (60, 2)

# Temporary material (新增临时素材, media/upload) is kept by WeChat for 3 days; media/get answers
# 40007 after that.
MEDIA_LIFETIME = 3 * 24 * 3600


@dataclass
class Window:
    opened_at: float
    seconds: int
    quota: int
    used: int = 0
    # A mini-program's session window: the shopper needn't follow the OA for it.
    needs_follow: bool = True


@dataclass
class Media:
    """One piece of temporary material: uploaded through media/upload, or a shopper's own
    picture or voice (WeChat stores those as media too, and pushes their MediaId)."""

    media_id: str
    kind: str  # image | voice | video | thumb
    content_type: str
    data: bytes
    filename: str
    created_at: float
    # Permanent material (material/add_material) never expires and is not temporary media:
    # media/get does not answer it.
    permanent: bool = False


@dataclass
class Shopper:
    openid: str
    nickname: str
    unionid: str
    subscribed: bool = False
    window: Window | None = None
    chat: list[dict[str, Any]] = field(default_factory=list)
    # Mini-program side: its own openid (same unionid), the codes wx.login and the phone button
    # minted (kept after use, so a reuse answers 40163), the latest session_key, code2Session calls.
    mp_openid: str = field(default_factory=lambda: "oMp" + secrets.token_hex(12))
    mp_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    mp_session_key: str = ""
    mp_login_calls: list[float] = field(default_factory=list)
    # One-time subscribe-message consents WeChat holds for this shopper: template id -> how many
    # accepts are left (each lets one message/subscribe/send through, reference §7.7).
    subscribe_consents: dict[str, int] = field(default_factory=dict)


@dataclass
class Fault:
    """Make the next `times` calls to `api` ("*" for any) fail with `errcode`, or be slow."""

    api: str
    errcode: int | None = None
    errmsg: str = ""
    delay: float = 0.0
    times: int = 1


ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40125: "invalid appsecret",
    41001: "access_token missing",
    46003: "menu no exist",
    42001: "access_token expired",
    44002: "empty post data",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    47003: "argument invalid!",
    43101: "user refuse to accept the msg",
    40037: "invalid template_id",
    40053: "invalid action_name",
    40016: "invalid button size",
    40056: "invalid serial code",
    40073: "invalid card id",
    40004: "invalid media type",
    40006: "invalid meida size",  # sic: WeChat's own spelling
    40007: "invalid media_id",
    40005: "invalid file type",
    40009: "invalid image size",
    41005: "media data missing",
}


class EmulatorState:
    def __init__(self, appid: str, secret: str, token: str, aes_key: str, original_id: str,
                 push_timeout: float, pay: PayEmulatorState | None = None) -> None:
        self.appid = appid
        self.secret = secret
        self.token = token
        self.aes_key = aes_key
        self.original_id = original_id or "gh_emulated0001"
        self.push_timeout = push_timeout
        self.push_url: str | None = None
        self.push_mode = "safe"  # plaintext | compatible | safe
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        if pay is not None:
            self.pay = pay
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, float] = {}  # token -> expires_at
            self.stable_token: str | None = None
            self.last_force_refresh = 0.0
            self.calls: dict[str, int] = {}
            self.faults: list[Fault] = []
            self.menu: dict | None = None
            self.qr_tickets: dict[str, dict[str, Any]] = {}
            self.shoppers: dict[str, Shopper] = {}
            # Template sends by client_msg_id -> the msgid of the first (a repeat shows nothing new).
            self.client_msg_ids: dict[str, int] = {}
            self.pushes: list[dict[str, Any]] = []
            # Member cards: card_id -> {"card": create body, "form": activation form};
            # code -> {card_id, openid, status, has_active, bonus, custom_fields, answers, ...}.
            self.cards: dict[str, dict[str, Any]] = {}
            self.card_tickets: set[str] = set()
            self.card_codes: dict[str, dict[str, Any]] = {}
            self.media: dict[str, Media] = {}
            self._msg_id = int(time.time()) * 1000
            for i, nickname in enumerate(["小美", "阿强", "Lily"], start=1):
                self.add_shopper(f"oEmu{i:02d}" + secrets.token_hex(10)[:20], nickname)
            # WeChat Pay (pay_api.py): platform keys survive a reset, the rest is forgotten.
            if not hasattr(self, "pay"):
                self.pay = PayEmulatorState()
            self.pay.reset()

    def now(self) -> float:
        return time.time() + self.clock_offset

    def add_shopper(self, openid: str, nickname: str) -> Shopper:
        with self.lock:
            shopper = Shopper(openid=openid, nickname=nickname, unionid="oUnion" + secrets.token_hex(11))
            self.shoppers[openid] = shopper
            return shopper

    def next_msg_id(self) -> int:
        with self.lock:
            self._msg_id += secrets.randbelow(1000) + 1
            return self._msg_id

    def count_call(self, api: str) -> None:
        with self.lock:
            self.calls[api] = self.calls.get(api, 0) + 1

    def take_fault(self, api: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.api in (api, "*") and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- credentials ---------------------------------------------------------------------------
    def issue_token(self) -> tuple[str, int]:
        """/cgi-bin/token: always a new token; the previous ones stay valid for 5 minutes."""
        with self.lock:
            now = self.now()
            for old, expires in list(self.tokens.items()):
                self.tokens[old] = min(expires, now + HANDOVER)
            value = secrets.token_urlsafe(96)
            self.tokens[value] = now + TOKEN_LIFETIME
            return value, TOKEN_LIFETIME

    def stable(self, force_refresh: bool) -> tuple[str, int]:
        """/cgi-bin/stable_token: the same token while it has over 5 minutes left."""
        with self.lock:
            now = self.now()
            current = self.stable_token
            if force_refresh and current and now - self.last_force_refresh >= 30:
                self.tokens.pop(current, None)
                current = None
                self.last_force_refresh = now
            if current and self.tokens.get(current, 0) - now > HANDOVER:
                return current, int(self.tokens[current] - now)
            value = secrets.token_urlsafe(96)
            self.tokens[value] = now + TOKEN_LIFETIME
            self.stable_token = value
            return value, TOKEN_LIFETIME

    def check_token(self, value: str | None) -> int:
        """0 if the token may be used, else WeChat's errcode."""
        with self.lock:
            if not value:
                return 41001 if value is None else 40014
            expires = self.tokens.get(value)
            if expires is None:
                return 40001
            if expires <= self.now():
                return 42001
            return 0

    def expire_all_tokens(self) -> None:
        """Make every issued token expired (as after a long outage), to exercise the refresh path."""
        with self.lock:
            for value in self.tokens:
                self.tokens[value] = self.now() - 1

    # -- temporary material ----------------------------------------------------------------------
    def store_media(self, kind: str, data: bytes, content_type: str, filename: str = "",
                    permanent: bool = False) -> Media:
        """Keep `data` as temporary (or permanent) material and hand back its new media_id (and the rest)."""
        with self.lock:
            media = Media(media_id=secrets.token_urlsafe(32 if permanent else 48), kind=kind,
                          content_type=content_type, data=data, filename=filename, created_at=self.now(),
                          permanent=permanent)
            self.media[media.media_id] = media
            return media

    def find_media(self, media_id: str, *, live: bool = True) -> Media | None:
        """The material behind `media_id`; None when unknown or (with `live`: temporary material
        only) past its 3 days."""
        with self.lock:
            media = self.media.get(media_id)
            if media is None or (live and (media.permanent or media.created_at + MEDIA_LIFETIME <= self.now())):
                return None
            return media

    # -- interaction windows ---------------------------------------------------------------------
    def open_window(self, openid: str, by_message: bool, mp_session: bool = False) -> None:
        """Open the window the interaction earns (reference §5.2). A short window (event, or the
        mini-program's session entry) never cuts short an open 48 h message window."""
        with self.lock:
            shopper = self.shoppers[openid]
            if by_message:
                seconds, quota = MESSAGE_WINDOW
            else:
                seconds, quota = MP_SESSION_WINDOW if mp_session else EVENT_WINDOW
            current = shopper.window
            now = self.now()
            if (by_message or current is None or current.opened_at + current.seconds < now
                    or current.seconds < MESSAGE_WINDOW[0]):
                shopper.window = Window(opened_at=now, seconds=seconds, quota=quota, needs_follow=not mp_session)

    def use_window(self, openid: str) -> int:
        """0 if a customer-service message may go to `openid` now, else 45015/45047/40003."""
        with self.lock:
            shopper = self.shoppers.get(openid)
            if shopper is None:
                return 40003
            window = shopper.window
            if window is None or window.opened_at + window.seconds < self.now():
                return 45015
            if window.needs_follow and not shopper.subscribed:
                return 45015
            if window.used >= window.quota:
                return 45047
            window.used += 1
            return 0

    def say(self, openid: str, sender: str, kind: str, via: str, **content: Any) -> None:
        with self.lock:
            shopper = self.shoppers.get(openid)
            if shopper is not None:
                shopper.chat.append({"seq": len(shopper.chat) + 1, "from": sender, "kind": kind, "via": via,
                                     "at": int(self.now()), **content})

    # -- mini-program (reference §8) -----------------------------------------------------------
    # Codes live on the shopper, so reset() (which recreates the shoppers) forgets them too.
    def mp_shopper(self, openid: str) -> Shopper | None:
        """A shopper by OA openid or mini-program openid."""
        with self.lock:
            found = self.shoppers.get(openid)
            return found or next((s for s in self.shoppers.values() if s.mp_openid == openid), None)

    def mint_mp_code(self, shopper: Shopper, kind: str, **extra: Any) -> str:
        """What wx.login ('login', 32 chars) or the getPhoneNumber button ('phone', 64) hands the
        mini-program: single-use, valid for 5 minutes."""
        with self.lock:
            code = secrets.token_hex(16 if kind == "login" else 32)
            shopper.mp_codes[code] = {"kind": kind, "expires_at": self.now() + MP_CODE_LIFETIME,
                                      "used": False, **extra}
            return code

    def take_mp_code(self, code: str, kind: str) -> tuple[int, Shopper | None, dict[str, Any]]:
        """(0, shopper, details) and the code is spent; or (40163 used | 40029 unknown/expired, ...)."""
        with self.lock:
            for shopper in self.shoppers.values():
                found = shopper.mp_codes.get(code)
                if found is None or found["kind"] != kind:
                    continue
                if found["used"]:
                    return 40163, shopper, found
                if found["expires_at"] <= self.now():
                    return 40029, shopper, found
                found["used"] = True
                return 0, shopper, found
            return 40029, None, {}

    def mp_login_allowed(self, shopper: Shopper) -> bool:
        """code2Session's per-user quota: 100 calls a minute, else 45011."""
        with self.lock:
            now = self.now()
            shopper.mp_login_calls = [t for t in shopper.mp_login_calls if t > now - 60]
            if len(shopper.mp_login_calls) >= MP_LOGIN_PER_MINUTE:
                return False
            shopper.mp_login_calls.append(now)
            return True


MP_CODE_LIFETIME = 300
MP_LOGIN_PER_MINUTE = 100
