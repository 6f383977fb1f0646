"""Protocol failures, each carrying the WXBizMsgCrypt code that Tencent's samples use."""
from __future__ import annotations


class ProtocolError(Exception):
    """A push that must be refused. `code` follows WXBizMsgCrypt (-40001 ...) where one fits."""

    code = -1
    http_status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidSignature(ProtocolError):
    code = -40001
    http_status = 403


class MalformedXml(ProtocolError):
    code = -40002


class IllegalAesKey(ProtocolError):
    code = -40004


class InvalidAppId(ProtocolError):
    code = -40005
    http_status = 403


class DecryptError(ProtocolError):
    code = -40007


class IllegalBuffer(ProtocolError):
    code = -40008


class DecodeBase64Error(DecryptError):
    """Encrypt is not base64 (WXBizMsgCrypt -40010); still a DecryptError for callers."""

    code = -40010


class StaleTimestamp(ProtocolError):
    http_status = 403


class ReplayedRequest(ProtocolError):
    http_status = 403


class BodyTooLarge(ProtocolError):
    http_status = 413


class EncryptionRequired(ProtocolError):
    http_status = 403
