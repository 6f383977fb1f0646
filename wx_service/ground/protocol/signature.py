"""The sorted-SHA1 signatures WeChat uses (reference §1, §2.4 and §4.4)."""
from __future__ import annotations

import hashlib
import hmac

from wx_service.ground.protocol.errors import InvalidSignature


def _as_bytes(part: str | bytes | int) -> bytes:
    if isinstance(part, bytes):
        return part
    return str(part).encode("utf-8")


def sign(*parts: str) -> str:
    """SHA-1 of the parts sorted in byte order and joined: `signature` and `msg_signature`.

    Written out rather than borrowed from wechatpy's WeChatSigner, which turns any falsy value
    (an int 0, say) into an empty string before signing.
    """
    data = sorted(_as_bytes(part) for part in parts)
    return hashlib.sha1(b"".join(data)).hexdigest()


def _matches(expected: str, given: str | None) -> bool:
    # Constant time, case-sensitive (WeChat sends lowercase hex).
    return hmac.compare_digest(expected.encode("ascii"), (given or "").encode("utf-8", "replace"))


def check_signature(token: str, timestamp: str, nonce: str, signature: str | None) -> None:
    """The URL signature over token/timestamp/nonce; it does not cover the body."""
    if not _matches(sign(token, timestamp, nonce), signature):
        raise InvalidSignature("signature does not match")


def check_msg_signature(token: str, timestamp: str, nonce: str, encrypt: str, msg_signature: str | None) -> None:
    """The safe-mode signature, which also covers the Encrypt string."""
    if not _matches(sign(token, timestamp, nonce, encrypt), msg_signature):
        raise InvalidSignature("msg_signature does not match")


def jsapi_string1(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """The JS-SDK string to sign: keys in ASCII order, raw values, the URL without its #fragment."""
    page = url.split("#", 1)[0]
    return f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={page}"


def jsapi_signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """The `wx.config` signature: hex SHA-1 of `jsapi_string1` (reference §4.4, V-JSSDK-1)."""
    return hashlib.sha1(jsapi_string1(ticket, noncestr, timestamp, url).encode("utf-8")).hexdigest()


def card_ext_signature(api_ticket: str, timestamp: str, card_id: str, nonce_str: str) -> str:
    """wx.addCard's cardExt signature: SHA-1 of the values sorted and joined, like the push
    signature (wechatpy's get_jsapi_card_params signs the same way)."""
    return sign(api_ticket, timestamp, card_id, nonce_str)
