"""The one encoding rule every part of the v3 protocol shares."""
from __future__ import annotations

Bytesish = bytes | str


def _b(value: Bytesish) -> bytes:
    """Encode text as UTF-8: WeChat signs and encrypts the UTF-8 bytes of every string."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)
