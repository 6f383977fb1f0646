"""The sorted-SHA1 signatures WeChat puts on every push (reference §1 and §2.4)."""
from __future__ import annotations

import hmac

from wechatpy.utils import WeChatSigner

from wx_service.protocol.errors import InvalidSignature


def sign(*parts: str) -> str:
    """SHA-1 of the parts sorted in byte order and joined: `signature` and `msg_signature`."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


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
