"""Images staff upload for content (covers, logos, product pictures).

What is accepted is decided by the bytes, not the file's name or the browser's word: a PNG or a
JPEG by its magic number, at most 10 MB (WeChat's limit for a permanent image material, so every
image kept here can also go to WeChat). The same bytes uploaded twice are one image (sha256), so a
re-upload is free and its public URL, which names the hash, never changes.

A new image is sent to WeChat as permanent material after commit (marketing.content_jobs.upload_image),
which keeps the media_id and URL WeChat answers. Flushes, never commits.
"""
from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from marketing import editing
from marketing.exceptions import InvalidContent
from marketing.models import ContentImage
from wx_service.ground.extensions import db, enqueue_after_commit

MAX_BYTES = 10 * 1024 * 1024
PNG, JPEG = "image/png", "image/jpeg"
EXTENSIONS = {PNG: "png", JPEG: "jpg"}
UPLOAD_JOB = "marketing.content_jobs.upload_image"


def sniff(data: bytes) -> str | None:
    """The image type the bytes are (PNG or JPEG), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    return None


def by_sha256(sha256: str) -> ContentImage | None:
    return db.session.scalar(select(ContentImage).where(ContentImage.sha256 == sha256))


def add_image(data: bytes, filename: str = "", *, staff_id: int | None) -> tuple[ContentImage, bool]:
    """Keep an uploaded image; (the image, whether it is new). A new one is audited as
    content.image.create and queued for WeChat after commit; the same bytes again answer the
    image already kept. InvalidContent for anything but a PNG or JPEG of at most 10 MB."""
    if not data:
        raise InvalidContent({"file": "is empty; choose a PNG or JPEG picture"})
    if len(data) > MAX_BYTES:
        raise InvalidContent({"file": f"is {len(data) / 1024 / 1024:.1f} MB; a picture is at most 10 MB"})
    content_type = sniff(data)
    if content_type is None:
        raise InvalidContent({"file": "is not a PNG or JPEG picture"})
    sha256 = hashlib.sha256(data).hexdigest()
    found = by_sha256(sha256)
    if found is not None:
        return found, False
    image = ContentImage(sha256=sha256, filename=(filename or "")[-128:], content_type=content_type, size=len(data),
                         data=data, uploaded_by=staff_id)
    try:
        with db.session.begin_nested():
            db.session.add(image)
            db.session.flush()
    except IntegrityError:  # the same picture, uploaded at the same moment by someone else
        return by_sha256(sha256), False
    editing.audited(staff_id, "image", "create", image.id, None,
                    {"sha256": sha256, "size": len(data), "content_type": content_type, "filename": image.filename})
    enqueue_after_commit(UPLOAD_JOB, image_id=image.id)
    return image, True


def file_name(image: ContentImage) -> str:
    """The image's stable public name: its hash and extension."""
    return f"{image.sha256}.{EXTENSIONS.get(image.content_type, 'bin')}"
