"""Turning a parsed push into a wechatpy message, and the push's natural dedup key."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from wechatpy.events import EVENT_TYPES
from wechatpy.messages import MESSAGE_TYPES, BaseMessage, UnknownMessage

from wx_service.ground.protocol.errors import MalformedXml

REQUIRED = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
EVENT_DISCRIMINATORS = ("MsgID", "CardId", "UserCardCode", "OrderId", "SessionFrom")
_MSG_ID = re.compile(r"[0-9]{1,20}")  # a 64-bit integer (reference §3.1)
_CREATE_TIME = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits only: int() must accept it


@dataclass(frozen=True)
class Push:
    """One inbound push: its fields, the wechatpy message built from them, and its dedup key."""

    fields: dict[str, Any]
    message: BaseMessage
    dedup_key: str

    @property
    def openid(self) -> str:
        return self.fields["FromUserName"]

    @property
    def msg_type(self) -> str:
        return self.fields["MsgType"].lower()

    @property
    def event(self) -> str:
        """The event name as wechatpy normalises it (lower case; subscribe_scan for QR follows);
        for an event wechatpy has no class for (subscribe_msg_popup_event), the Event field."""
        return getattr(self.message, "event", "") or str(self.fields.get("Event") or "").strip().lower()

    @property
    def is_user_message(self) -> bool:
        return self.msg_type != "event"


def dedup_key_for(fields: dict[str, Any]) -> str:
    """MsgId for messages; FromUserName+CreateTime+Event+EventKey for events (reference §3.6).

    A retry is the same push again, so any field of it can join the key without breaking dedup;
    the fields in EVENT_DISCRIMINATORS are added (when present) because without them two different
    events of one user in one second would collide and the second be dropped as a "retry": two
    cards claimed at once (user_get_card, CardId/UserCardCode), two template sends finishing
    together (TEMPLATESENDJOBFINISH, MsgID), two mini-program contact entries from different pages
    (user_enter_tempsession, SessionFrom).
    """
    msg_id = _scalar(fields.get("MsgId")) or _scalar(fields.get("MsgID"))
    if msg_id and _scalar(fields.get("MsgType")).lower() != "event":
        if _MSG_ID.fullmatch(msg_id):
            return f"msg:{msg_id}"
        return "msg:h:" + hashlib.sha1(msg_id.encode()).hexdigest()  # keep the key short and bounded
    parts = [
        _scalar(fields.get("FromUserName")),
        _scalar(fields.get("CreateTime")),
        _scalar(fields.get("Event")),
        _scalar(fields.get("EventKey")),
    ]
    parts += [f"{name}={fields[name]}" for name in EVENT_DISCRIMINATORS if _scalar(fields.get(name))]
    digest = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()
    return f"evt:{digest}"


def _scalar(value: Any) -> str:
    """A field as text: strings as they are, integers (a JSON push's CreateTime) in decimal, and
    nested elements as nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def build_push(fields: dict[str, Any]) -> Push:
    """Validate the common header and pick the wechatpy class the way wechatpy.parse_message does."""
    for name in REQUIRED:
        if not isinstance(fields.get(name), str) or not fields[name]:
            raise MalformedXml(f"missing or malformed {name}")
    if not _CREATE_TIME.fullmatch(fields["CreateTime"]):
        raise MalformedXml("CreateTime must be an integer")
    message_type = fields["MsgType"].lower()
    data = dict(fields)
    if message_type == "event":
        event_type = str(data.get("Event", "")).lower()
        event_key = data.get("EventKey")
        if event_type == "subscribe" and isinstance(event_key, str) and event_key.startswith("qrscene_"):
            event_type = "subscribe_scan"
            data["Event"] = event_type
            data["EventKey"] = event_key[len("qrscene_"):]
        message_class = EVENT_TYPES.get(event_type, UnknownMessage)
    else:
        message_class = MESSAGE_TYPES.get(message_type, UnknownMessage)
    try:
        message = message_class(data)
    except (TypeError, ValueError) as exc:
        raise MalformedXml(f"fields do not fit a {message_type} push: {exc}") from exc
    return Push(fields=fields, message=message, dedup_key=dedup_key_for(fields))
