"""AES message encryption for compatible and safe mode (reference §2).

The packet layout is written out here, byte by byte, so that it can be checked against the
published vectors (appendix A: V-ENC-*, V-WECOM-*); wechatpy's cipher only does the AES-256-CBC.
The checks on the way in are strict because wechatpy's own decrypt trusts the padding and length
bytes, and until the receiver id has been compared an attacker controls both.

The key and IV never change for an account (IV = AESKey[:16]), so the `Cipher` is built once per
`MessageCrypto`; each call only takes a fresh encryptor/decryptor context from it (a `Cipher` is
immutable and shared safely between threads, a context is not and never is).
"""
from __future__ import annotations

import base64
import binascii
import secrets
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wx_service.ground.protocol.errors import DecodeBase64Error, DecryptError, IllegalAesKey, IllegalBuffer, InvalidAppId
from wx_service.ground.protocol.signature import sign

BLOCK = 32  # WeChat's PKCS#7 block: pad counts run 1..32, not 1..16 (reference §2.3)
RANDOM_LENGTH = 16


def aes_key_from_encoding_key(encoding_aes_key: str) -> bytes:
    """AESKey = Base64_Decode(EncodingAESKey + "="): 43 characters give 32 bytes (reference §2.2)."""
    if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != 43:
        raise IllegalAesKey("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IllegalAesKey("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise IllegalAesKey("EncodingAESKey must give 32 bytes")
    return key


def pkcs7_pad(data: bytes, block: int = BLOCK) -> bytes:
    count = block - len(data) % block  # 1..block; a whole block when already aligned
    return data + bytes([count]) * count


def pkcs7_unpad(data: bytes, block: int = BLOCK) -> bytes:
    if not data:
        raise IllegalBuffer("empty plaintext")
    count = data[-1]
    if not 1 <= count <= block or count > len(data) or data[-count:] != bytes([count]) * count:
        raise IllegalBuffer("bad PKCS#7 padding")
    return data[:-count]


def pack(random_prefix: bytes, message: bytes, receive_id: bytes) -> bytes:
    """FullStr = random(16) || msg_len (uint32, big-endian) || msg || receiveid, before padding."""
    if len(random_prefix) != RANDOM_LENGTH:
        raise ValueError("the random prefix must be 16 bytes")
    return random_prefix + struct.pack(">I", len(message)) + message + receive_id


@dataclass(frozen=True)
class Packet:
    """A decrypted FullStr, split into its parts (the receive id not yet checked)."""

    random: bytes
    message: bytes
    receive_id: bytes

    @property
    def msg_len(self) -> int:
        return len(self.message)


def unpack(full_str: bytes) -> Packet:
    """The inverse of `pack`, refusing a length that runs past the buffer."""
    if len(full_str) < RANDOM_LENGTH + 4:
        raise IllegalBuffer("buffer too short")
    (length,) = struct.unpack(">I", full_str[RANDOM_LENGTH:RANDOM_LENGTH + 4])
    body = full_str[RANDOM_LENGTH + 4:]
    if length > len(body):
        raise IllegalBuffer("message length exceeds the buffer")
    return Packet(random=full_str[:RANDOM_LENGTH], message=body[:length], receive_id=body[length:])


def _to_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


class MessageCrypto:
    """Encrypts and decrypts one account's pushes and replies."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        self.token = token
        self.appid = appid
        self.key = aes_key_from_encoding_key(encoding_aes_key)
        # AES-256-CBC with IV = key[:16], as wechatpy's WeChatCipher builds it on every call.
        self._cipher = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def full_str(self, plaintext: str | bytes, random_prefix: str | bytes) -> bytes:
        """The unpadded FullStr for this account's app id (reference §2.3 worked layout)."""
        return pack(_to_bytes(random_prefix), _to_bytes(plaintext), self.appid.encode("utf-8"))

    def encrypt(self, plaintext: str | bytes, random_prefix: str | bytes | None = None) -> str:
        """Base64 of AES-CBC(random16 || len || msg || appid || PKCS#7/32)."""
        if random_prefix is None:
            # 16 alphanumeric characters, as Tencent's samples use (token_hex: cheap and alphanumeric).
            random_prefix = secrets.token_hex(RANDOM_LENGTH // 2)
        padded = pkcs7_pad(self.full_str(plaintext, random_prefix))
        encryptor = self._cipher.encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def open_packet(self, encrypt: str | bytes) -> Packet:
        """Base64-decode, AES-decrypt, strip the padding and split the layout; no app id check."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise DecodeBase64Error("Encrypt is not base64") from exc
        if not raw or len(raw) % 16:
            raise DecryptError("ciphertext is not a whole number of AES blocks")
        decryptor = self._cipher.decryptor()
        return unpack(pkcs7_unpad(decryptor.update(raw) + decryptor.finalize()))

    def decrypt(self, encrypt: str | bytes, expected_appid: str | None = None) -> bytes:
        """The message bytes, after checking padding, length and the receiver id."""
        packet = self.open_packet(encrypt)
        expected = (expected_appid or self.appid).encode("utf-8")
        if packet.receive_id != expected:
            raise InvalidAppId("message was encrypted for another app id")
        return packet.message

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
