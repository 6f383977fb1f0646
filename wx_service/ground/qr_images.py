"""QR images rendered locally from the content WeChat returns (no call to showqrcode needed)."""
from __future__ import annotations

from pathlib import Path

import qrcode
from qrcode.image.pure import PyPNGImage


def qr_png_bytes(content: str) -> bytes:
    import io

    buffer = io.BytesIO()
    qrcode.make(content, image_factory=PyPNGImage, box_size=10, border=4).save(buffer)
    return buffer.getvalue()


def save_qr_png(content: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(qr_png_bytes(content))
