"""The emulator playing the shopper's WeChat app: it builds pushes exactly as WeChat does, signs
and (in compatible or safe mode) encrypts them, posts them to the service, retries when no answer
comes in time, checks and decrypts the reply, and shows the shopper what WeChat would show.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import requests

from wx_service.edges.emulator.media_api import picture_path
from wx_service.edges.emulator.state import EmulatorState
from wx_service.ground.protocol.crypto import MessageCrypto
from wx_service.ground.protocol.errors import ProtocolError
from wx_service.ground.protocol.signature import check_msg_signature, sign
from wx_service.ground.protocol.xml import parse_xml

UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
ATTEMPTS = 3  # WeChat tries a push three times in all
VOICE_CONTENT_TYPES = {"amr": "audio/amr", "mp3": "audio/mpeg", "speex": "audio/speex"}


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _elements(fields: list[tuple[str, Any]]) -> list[str]:
    lines = []
    for name, value in fields:
        if isinstance(value, list):  # a nested block: its children, as (name, value) pairs
            lines.append(f"<{name}>{''.join(_elements(value))}</{name}>")
        elif isinstance(value, int):
            lines.append(f"<{name}>{value}</{name}>")
        else:
            lines.append(f"<{name}>{_cdata(str(value))}</{name}>")
    return lines


def build_push_xml(fields: list[tuple[str, Any]]) -> str:
    """XML as WeChat writes it: strings in CDATA, numbers bare, one element per line; a list value
    is a nested block (SubscribeMsgPopupEvent's List entries)."""
    return "\n".join(["<xml>", *_elements(fields), "</xml>"])


def sign_and_wrap(state: EmulatorState, plain_xml: str, mode: str, timestamp: str | None = None,
                  nonce: str | None = None) -> tuple[dict[str, str], bytes]:
    """The query string and body WeChat would send for this push in `mode`."""
    timestamp = timestamp or str(int(state.now()))
    nonce = nonce or str(secrets.randbelow(10**10))
    query = {"signature": sign(state.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if mode == "plaintext":
        return query, plain_xml.encode("utf-8")
    crypto = MessageCrypto(state.token, state.aes_key, state.appid)
    encrypt = crypto.encrypt(plain_xml)
    query.update(encrypt_type="aes", msg_signature=sign(state.token, timestamp, nonce, encrypt))
    if mode == "compatible":
        # Before the root's closing tag only: a shopper may type "</xml>" inside a CDATA value.
        head, closing, tail = plain_xml.rpartition("</xml>")
        body = f"{head}<Encrypt>{_cdata(encrypt)}</Encrypt>\n</xml>{tail}" if closing else plain_xml
    else:
        body = f"<xml>\n<ToUserName>{_cdata(state.original_id)}</ToUserName>\n<Encrypt>{_cdata(encrypt)}</Encrypt>\n</xml>"
    return query, body.encode("utf-8")


class ShopperClient:
    """Sends one shopper's actions to the service and records what the shopper sees."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def _common(self, openid: str, msg_type: str) -> list[tuple[str, Any]]:
        return [("ToUserName", self.state.original_id), ("FromUserName", openid),
                ("CreateTime", int(self.state.now())), ("MsgType", msg_type)]

    def text(self, openid: str, content: str) -> dict[str, Any]:
        fields = self._common(openid, "text") + [("Content", content), ("MsgId", self.state.next_msg_id())]
        self.state.say(openid, "user", "text", "message", content=content)
        self.state.open_window(openid, by_message=True)
        return self.deliver(openid, fields)

    def click(self, openid: str, key: str) -> dict[str, Any]:
        fields = self._common(openid, "event") + [("Event", "CLICK"), ("EventKey", key)]
        self.state.say(openid, "user", "click", "menu", key=key)
        self.state.open_window(openid, by_message=False)
        return self.deliver(openid, fields)

    def subscribe(self, openid: str) -> dict[str, Any]:
        self.state.shoppers[openid].subscribed = True
        fields = self._common(openid, "event") + [("Event", "subscribe"), ("EventKey", "")]
        self.state.say(openid, "user", "subscribe", "event")
        self.state.open_window(openid, by_message=False)
        return self.deliver(openid, fields)

    def unsubscribe(self, openid: str) -> dict[str, Any]:
        self.state.shoppers[openid].subscribed = False
        fields = self._common(openid, "event") + [("Event", "unsubscribe"), ("EventKey", "")]
        self.state.say(openid, "user", "unsubscribe", "event")
        return self.deliver(openid, fields, show_reply=False)

    def scan(self, openid: str, scene: str) -> dict[str, Any]:
        """Scan a parametric code: a follow with qrscene_ for a new follower, SCAN otherwise."""
        shopper = self.state.shoppers[openid]
        ticket = next((t for t, info in self.state.qr_tickets.items() if info["scene"] == scene),
                      "gQ" + hashlib.sha1(scene.encode()).hexdigest())
        if shopper.subscribed:
            fields = self._common(openid, "event") + [("Event", "SCAN"), ("EventKey", scene), ("Ticket", ticket)]
        else:
            shopper.subscribed = True
            fields = self._common(openid, "event") + [("Event", "subscribe"), ("EventKey", f"qrscene_{scene}"),
                                                      ("Ticket", ticket)]
        self.state.say(openid, "user", "scan", "event", scene=scene)
        self.state.open_window(openid, by_message=False)
        return self.deliver(openid, fields)

    def location(self, openid: str, latitude: float, longitude: float, label: str = "", scale: int = 15
                 ) -> dict[str, Any]:
        """Send a location from the chat (+ → 位置): a location message (reference §3.2)."""
        fields = self._common(openid, "location") + [
            ("Location_X", f"{latitude:.6f}"), ("Location_Y", f"{longitude:.6f}"), ("Scale", scale), ("Label", label),
            ("MsgId", self.state.next_msg_id())]
        self.state.say(openid, "user", "location", "message", latitude=latitude, longitude=longitude, label=label)
        self.state.open_window(openid, by_message=True)
        return self.deliver(openid, fields)

    def report_location(self, openid: str, latitude: float, longitude: float, precision: float = 65.0
                        ) -> dict[str, Any]:
        """WeChat reporting where the shopper is as they enter the chat (an OA that asks for it): a
        LOCATION event (reference §3.3). It opens no customer-service window (§5.2)."""
        fields = self._common(openid, "event") + [("Event", "LOCATION"), ("Latitude", f"{latitude:.6f}"),
                                                  ("Longitude", f"{longitude:.6f}"), ("Precision", f"{precision:.6f}")]
        self.state.say(openid, "user", "location", "event", latitude=latitude, longitude=longitude)
        return self.deliver(openid, fields)

    # -- media, menus and the mini-program's customer-service entry -------------------------------
    def picture_url(self, media_id: str) -> str:
        """The PicUrl WeChat would push: where the picture can be fetched, here on the emulator's
        own host (taken from the push URL, which is this server's /wechat in the demo and tests)."""
        parts = urlsplit(self.state.push_url or "")
        return f"{parts.scheme or 'http'}://{parts.netloc}{picture_path(media_id)}"

    def image(self, openid: str, data: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
        """Send a picture: WeChat keeps it as media and pushes MsgType=image with PicUrl, MediaId
        and MsgId; like any user message it opens the 48 h window. The outcome carries media_id."""
        media = self.state.store_media("image", data, content_type or "image/jpeg")
        fields = self._common(openid, "image") + [("PicUrl", self.picture_url(media.media_id)),
                                                  ("MediaId", media.media_id), ("MsgId", self.state.next_msg_id())]
        self.state.say(openid, "user", "image", "message", media_id=media.media_id)
        self.state.open_window(openid, by_message=True)
        return {**self.deliver(openid, fields), "media_id": media.media_id}

    def voice(self, openid: str, data: bytes, fmt: str = "amr") -> dict[str, Any]:
        """Send a voice message: kept as media, pushed as MsgType=voice with MediaId, Format, an
        empty Recognition (speech recognition off) and MsgId; opens the 48 h window."""
        fmt = fmt.lower()
        media = self.state.store_media("voice", data, VOICE_CONTENT_TYPES.get(fmt, "audio/amr"))
        fields = self._common(openid, "voice") + [("MediaId", media.media_id), ("Format", fmt),
                                                  ("Recognition", ""), ("MsgId", self.state.next_msg_id())]
        self.state.say(openid, "user", "voice", "message", media_id=media.media_id, format=fmt)
        self.state.open_window(openid, by_message=True)
        return {**self.deliver(openid, fields), "media_id": media.media_id}

    def tap_menu(self, openid: str, menu_id: str, content: str | None = None) -> dict[str, Any]:
        """Tap an option of a msgmenu customer-service message the shopper was sent: WeChat pushes
        a text whose Content is the option's content, with `bizmsgmenuid` = the option's id, and
        (a user message) it opens the 48 h window. LookupError when no such option was shown."""
        option = self._menu_option(openid, menu_id)
        if option is None or (content is not None and content != option["content"]):
            raise LookupError(f"no msgmenu option {menu_id!r} was sent to this shopper")
        content = option["content"]
        # A numeric id comes bare, as in WeChat's sample (<bizmsgmenuid>101</bizmsgmenuid>).
        numeric = menu_id.isascii() and menu_id.isdigit() and str(int(menu_id)) == menu_id
        menu_field: int | str = int(menu_id) if numeric else menu_id
        fields = self._common(openid, "text") + [("Content", content), ("MsgId", self.state.next_msg_id()),
                                                 ("bizmsgmenuid", menu_field)]
        self.state.say(openid, "user", "text", "message", content=content, bizmsgmenuid=menu_id)
        self.state.open_window(openid, by_message=True)
        return self.deliver(openid, fields)

    def _menu_option(self, openid: str, menu_id: str) -> dict[str, Any] | None:
        with self.state.lock:
            for line in reversed(self.state.shoppers[openid].chat):
                if line.get("kind") == "msgmenu":
                    for item in line.get("list") or []:
                        if isinstance(item, dict) and item.get("id") == menu_id:
                            return item
        return None

    def contact(self, openid: str, session_from: str = "") -> dict[str, Any]:
        """Enter customer service from the mini-program's contact button (open-type="contact"
        with session-from): WeChat pushes the event user_enter_tempsession with SessionFrom and
        opens the mini-program's short window (2 messages, 1 minute).

        The emulator plays a single app in the demo, so this push goes to the same push URL, from
        the same openid and to the same original ID as the OA's pushes; the real mini-program
        pushes to its own message URL with its own openid."""
        fields = self._common(openid, "event") + [("Event", "user_enter_tempsession"), ("SessionFrom", session_from)]
        self.state.say(openid, "user", "contact", "event", session_from=session_from)
        self.state.open_window(openid, by_message=False, mp_session=True)
        return self.deliver(openid, fields)

    # -- subscribe-message consents ----------------------------------------------------------------
    def subscribe_popup(self, openid: str, decisions: dict[str, str], scene: int = 2) -> dict[str, Any]:
        """The OA's consent popup: WeChat keeps a consent per accept, then pushes
        subscribe_msg_popup_event with one List per template shown (reference §3.3)."""
        from wx_service.edges.emulator.subscribe_api import grant

        shopper = self.state.shoppers[openid]
        grant(self.state, shopper, decisions)
        block = [("List", [("TemplateId", t), ("SubscribeStatusString", a), ("PopupScene", scene)])
                 for t, a in decisions.items()]
        fields = self._common(openid, "event") + [("Event", "subscribe_msg_popup_event"),
                                                  ("SubscribeMsgPopupEvent", block)]
        self.state.say(openid, "user", "subscribe_popup", "event",
                       content=" ".join(f"{t}:{a}" for t, a in decisions.items()))
        return self.deliver(openid, fields, show_reply=False)

    def request_subscribe_message(self, openid: str, decisions: dict[str, str],
                                  report: tuple[str, str] | None = None) -> dict[str, Any]:
        """wx.requestSubscribeMessage in the mini-program: WeChat keeps a consent per accept; with
        `report` = (service URL, the mini-program's session token), the accepts are reported to
        the service's API as the store's mini-program does."""
        from wx_service.edges.emulator.subscribe_api import grant, report_to_service

        shopper = self.state.mp_shopper(openid)
        if shopper is None:
            raise LookupError("unknown shopper")
        result = grant(self.state, shopper, decisions)
        reported = report_to_service(report[0], report[1], result) if report else None
        return {"errMsg": "requestSubscribeMessage:ok", **result, "reported": reported}

    # -- member card -----------------------------------------------------------------------------
    def _held_code(self, openid: str, status: str | None = "NORMAL") -> tuple[str, dict[str, Any]] | None:
        for code, entry in self.state.card_codes.items():
            if entry["openid"] == openid and (status is None or entry["status"] == status):
                return code, entry
        return None

    def _card_fields(self, openid: str, event: str, code: str, entry: dict[str, Any]) -> list[tuple[str, Any]]:
        return self._common(openid, "event") + [("Event", event), ("CardId", entry["card_id"]),
                                                ("UserCardCode", code)]

    def get_card(self, openid: str, outer_str: str = "", card_id: str = "") -> dict[str, Any]:
        """Claim the member card (get_limit 1): a new 12-digit code, or the deleted one restored,
        then push user_get_card with the fields of the official sample."""
        state = self.state
        with state.lock:
            card_id = card_id or next(iter(state.cards), "")
            if card_id not in state.cards:
                raise LookupError("no member card has been created (run `card push`)")
            held = self._held_code(openid, status=None)
            restored = held is not None and held[1]["status"] == "DELETE"
            if held is not None and not restored:
                return {"delivered": False, "reply": "already holds the card", "code": held[0]}
            if restored:
                code, entry = held  # type: ignore[misc]
                entry["status"] = "NORMAL"
            else:
                code = str(100_000_000_000 + secrets.randbelow(900_000_000_000))
                entry = {"card_id": card_id, "openid": openid, "status": "NORMAL", "has_active": False, "bonus": 0,
                         "custom_fields": {}, "answers": {}, "issued_at": int(state.now()), "outer_str": outer_str}
                state.card_codes[code] = entry
        shopper = state.shoppers[openid]
        fields = self._common(openid, "event") + [
            ("Event", "user_get_card"), ("CardId", card_id), ("IsGiveByFriend", 0), ("UserCardCode", code),
            ("FriendUserName", ""), ("OuterId", 0), ("OldUserCardCode", ""), ("OuterStr", outer_str),
            ("IsRestoreMemberCard", 1 if restored else 0), ("IsRecommendByFriend", 0), ("UnionId", shopper.unionid),
            ("SourceScene", "SOURCE_SCENE_QRCODE" if outer_str else "SOURCE_SCENE_UNKNOW")]
        state.say(openid, "user", "card", "event", content=f"领取会员卡 {code}")
        return {**self.deliver(openid, fields, show_reply=False), "code": code}

    def submit_card_form(self, openid: str, name: str, phone: str, birthday: str) -> dict[str, Any]:
        """Fill in the one-click activation form; WeChat pushes submit_membercard_user_info."""
        held = self._held_code(openid)
        if held is None:
            raise LookupError("the shopper holds no card")
        code, entry = held
        with self.state.lock:
            entry["answers"] = {"USER_FORM_INFO_FLAG_NAME": name, "USER_FORM_INFO_FLAG_MOBILE": phone,
                                "USER_FORM_INFO_FLAG_BIRTHDAY": birthday}
        self.state.say(openid, "user", "card", "event", content="提交会员卡激活资料")
        self.state.open_window(openid, by_message=False)
        return {**self.deliver(openid, self._card_fields(openid, "submit_membercard_user_info", code, entry),
                               show_reply=False), "code": code}

    def view_card(self, openid: str) -> dict[str, Any]:
        """Open the card in the card wallet: push user_view_card, show the card face."""
        held = self._held_code(openid)
        if held is None:
            raise LookupError("the shopper holds no card")
        code, entry = held
        outcome = self.deliver(openid, self._card_fields(openid, "user_view_card", code, entry) + [("OuterStr", "")],
                               show_reply=False)
        return {**outcome, "card": self.card_face(code)}

    def card_face(self, code: str) -> dict[str, Any]:
        entry = self.state.card_codes[code]
        return {"code": code, "card_id": entry["card_id"], "status": entry["status"], "active": entry["has_active"],
                "bonus": entry["bonus"], "level": entry["custom_fields"].get(1, "")}

    def del_card(self, openid: str) -> dict[str, Any]:
        held = self._held_code(openid)
        if held is None:
            raise LookupError("the shopper holds no card")
        code, entry = held
        with self.state.lock:
            entry["status"] = "DELETE"
        self.state.say(openid, "user", "card", "event", content="删除会员卡")
        return {**self.deliver(openid, self._card_fields(openid, "user_del_card", code, entry), show_reply=False),
                "code": code}

    def deliver(self, openid: str, fields: list[tuple[str, Any]], show_reply: bool = True) -> dict[str, Any]:
        """POST the push; retry (same bytes) on timeout or server error, three tries in all."""
        state = self.state
        mode = state.push_mode
        plain = build_push_xml(fields)
        query, body = sign_and_wrap(state, plain, mode)
        attempts: list[dict[str, Any]] = []
        outcome: dict[str, Any] = {"mode": mode, "attempts": attempts}
        for attempt in range(1, ATTEMPTS + 1):
            started = time.monotonic()
            try:
                response = requests.post(state.push_url, params=query, data=body, timeout=state.push_timeout,
                                         headers={"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"})
            except requests.Timeout:
                attempts.append({"attempt": attempt, "result": "timeout"})
                continue
            except requests.ConnectionError:
                attempts.append({"attempt": attempt, "result": "connection refused"})
                continue
            attempts.append({"attempt": attempt, "status": response.status_code,
                             "ms": round((time.monotonic() - started) * 1000, 1)})
            if response.status_code >= 500:
                continue
            if response.status_code != 200:
                break
            shown = self._show_reply(openid, response.content, mode, show_reply)
            outcome.update(delivered=True, reply=shown)
            state.pushes.append({"openid": openid, "query": query, "body": body.decode(), **outcome})
            return outcome
        if show_reply:
            state.say(openid, "system", "notice", "system", content=UNAVAILABLE)
        outcome.update(delivered=False, reply=UNAVAILABLE)
        state.pushes.append({"openid": openid, "query": query, "body": body.decode(), **outcome})
        return outcome

    def _show_reply(self, openid: str, raw: bytes, mode: str, show: bool) -> str:
        """Check the reply as WeChat does; anything malformed shows the shopper the failure notice."""
        if raw in (b"", b"success"):
            return "(no reply)"
        try:
            fields = parse_xml(raw)
            if "Encrypt" in fields and "MsgSignature" in fields:
                check_msg_signature(self.state.token, str(fields.get("TimeStamp", "")), str(fields.get("Nonce", "")),
                                    fields["Encrypt"], fields["MsgSignature"])
                crypto = MessageCrypto(self.state.token, self.state.aes_key, self.state.appid)
                fields = parse_xml(crypto.decrypt(fields["Encrypt"]))
            elif mode == "safe":
                raise ProtocolError("a safe-mode push needs an encrypted reply")
            if fields.get("ToUserName") != openid or fields.get("FromUserName") != self.state.original_id:
                raise ProtocolError("reply addressed to the wrong user or from the wrong account")
        except ProtocolError:
            if show:
                self.state.say(openid, "system", "notice", "system", content=UNAVAILABLE)
            return UNAVAILABLE
        kind = fields.get("MsgType", "")
        if not show:
            return kind
        if kind == "text":
            self.state.say(openid, "account", "text", "passive", content=fields.get("Content", ""))
        elif kind == "news":
            items = (fields.get("Articles") or {}).get("item") or []
            items = items if isinstance(items, list) else [items]
            self.state.say(openid, "account", "news", "passive", articles=[
                {"title": i.get("Title", ""), "description": i.get("Description", ""), "url": i.get("Url", ""),
                 "picurl": i.get("PicUrl", "")} for i in items])
        elif kind in ("image", "voice"):
            block = fields.get(kind.capitalize()) or {}
            self.state.say(openid, "account", kind, "passive",
                           media_id=block.get("MediaId", "") if isinstance(block, dict) else "")
        elif kind == "transfer_customer_service":
            self.state.say(openid, "system", "notice", "system", content="已为您转接人工客服，请稍候")
        else:
            self.state.say(openid, "account", kind, "passive", content=escape(str(fields)))
        return kind
