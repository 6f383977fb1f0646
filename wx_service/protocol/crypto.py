"""AES message encryption for compatible and safe mode (reference §2).

wechatpy's cipher does the AES-256-CBC; the layout checks around it are strict here because
wechatpy's own decrypt trusts the padding and length bytes, and an attacker controls both.
"""
from __future__ import annotations

import base64
import binascii
import secrets
import string
import struct

from wechatpy.crypto import PrpCrypto
from wechatpy.crypto.cryptography import WeChatCipher

from wx_service.protocol.errors import DecryptError, IllegalAesKey, IllegalBuffer, InvalidAppId
from wx_service.protocol.signature import sign

BLOCK = 32
_RANDOM_ALPHABET = string.ascii_letters + string.digits


def aes_key_from_encoding_key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IllegalAesKey("EncodingAESKey is not base64") from exc
    if len(encoding_aes_key) != 43 or len(key) != 32:
        raise IllegalAesKey("EncodingAESKey must be 43 characters giving 32 bytes")
    return key


class _FixedRandomPrp(PrpCrypto):
    def __init__(self, key: bytes, random_prefix: str) -> None:
        super().__init__(key)
        self._random_prefix = random_prefix

    def get_random_string(self) -> str:
        return self._random_prefix


class MessageCrypto:
    """Encrypts and decrypts one account's pushes and replies."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        self.token = token
        self.appid = appid
        self.key = aes_key_from_encoding_key(encoding_aes_key)

    def encrypt(self, plaintext: str | bytes, random_prefix: str | None = None) -> str:
        """Base64 of AES-CBC(random16 || len || msg || appid || PKCS#7/32)."""
        prefix = random_prefix or "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(16))
        if len(prefix.encode()) != 16:
            raise ValueError("the random prefix must be 16 bytes")
        return _FixedRandomPrp(self.key, prefix).encrypt(plaintext, self.appid).decode("ascii")

    def decrypt(self, encrypt: str, expected_appid: str | None = None) -> bytes:
        """The message bytes, after checking padding, length and the receiver id."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptError("Encrypt is not base64") from exc
        if not raw or len(raw) % 16:
            raise DecryptError("ciphertext is not a whole number of AES blocks")
        plain = WeChatCipher(self.key).decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise IllegalBuffer("bad PKCS#7 padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise IllegalBuffer("buffer too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise IllegalBuffer("message length exceeds the buffer")
        message = content[4 : 4 + length]
        receiver = content[4 + length :]
        expected = (expected_appid or self.appid).encode()
        if receiver != expected:
            raise InvalidAppId("message was encrypted for another app id")
        return message

    def encrypted_reply(self, reply_xml: str, timestamp: str, nonce: str, random_prefix: str | None = None) -> str:
        """The safe-mode reply envelope (reference §2.5), field names as WeChat expects them."""
        encrypt = self.encrypt(reply_xml, random_prefix)
        signature = sign(self.token, timestamp, nonce, encrypt)
        return (
            "<xml>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{nonce}]]></Nonce>"
            "</xml>"
        )
