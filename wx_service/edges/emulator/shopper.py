"""The emulator playing the shopper's WeChat app: it builds pushes exactly as WeChat does, signs
and (in compatible or safe mode) encrypts them, posts them to the service, retries when no answer
comes in time, checks and decrypts the reply, and shows the shopper what WeChat would show.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any
from xml.sax.saxutils import escape

import requests

from wx_service.edges.emulator.state import EmulatorState
from wx_service.ground.protocol.crypto import MessageCrypto
from wx_service.ground.protocol.errors import ProtocolError
from wx_service.ground.protocol.signature import check_msg_signature, sign
from wx_service.ground.protocol.xml import parse_xml

UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
ATTEMPTS = 3  # WeChat tries a push three times in all


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_push_xml(fields: list[tuple[str, Any]]) -> str:
    """XML as WeChat writes it: strings in CDATA, numbers bare, one element per line."""
    lines = ["<xml>"]
    for name, value in fields:
        if isinstance(value, int):
            lines.append(f"<{name}>{value}</{name}>")
        else:
            lines.append(f"<{name}>{_cdata(str(value))}</{name}>")
    lines.append("</xml>")
    return "\n".join(lines)


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
        elif kind == "image":
            self.state.say(openid, "account", "image", "passive", media_id=(fields.get("Image") or {}).get("MediaId", ""))
        elif kind == "transfer_customer_service":
            self.state.say(openid, "system", "notice", "system", content="已为您转接人工客服，请稍候")
        else:
            self.state.say(openid, "account", kind, "passive", content=escape(str(fields)))
        return kind
