"""Background work of the store's content: sending an uploaded image to WeChat as permanent
material, and the scheduler's publishing sweep. (Brand news has its own, marketing/news_jobs.py.)

The upload (`material/add_material?type=image`, reference: WeChat's 新增永久素材) answers a
media_id and a URL on WeChat's picture host; both are kept on the image, for OA news cards (whose
pictures must be on WeChat's host). An image that already has its media_id is skipped, so a
repeated job uploads nothing twice. A transient WeChat error raises and the job is retried; a
final one (40005 a type WeChat refuses, 40009 too large) fails the job for good, logged. An image
still without a media_id (its job lost, or its retries spent in an outage) is queued again by the
hourly `resend_unsent_images` sweep for a day, then left for staff to upload again.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from marketing import publishing
from marketing.images import EXTENSIONS
from marketing.models import ContentImage
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit, wechat_client

log = logging.getLogger(__name__)

RESEND_AFTER = timedelta(minutes=10)
RESEND_FOR = timedelta(days=1)
RESEND_BATCH = 100


def upload_image(image_id: int) -> str:
    """Send one image to WeChat as permanent material; answers its media_id.

    The picture is read, then the read transaction ends before the call (up to 10 MB on the wire
    must not hold a database connection in a transaction); the answer is written by a compare-and-
    swap, so of two jobs that raced, the first answer stays and the second changes nothing."""
    image = db.session.get(ContentImage, image_id)
    if image is None:
        return ""
    if image.wechat_media_id:
        return image.wechat_media_id
    name = f"{image.sha256[:16]}.{EXTENSIONS.get(image.content_type, 'jpg')}"
    data, content_type = image.data, image.content_type
    db.session.commit()
    answer = wechat_client().material.add("image", (name, data, content_type))
    stored = db.session.execute(update(ContentImage).where(
        ContentImage.id == image_id, ContentImage.wechat_media_id == "").values(
        wechat_media_id=answer["media_id"], wechat_url=answer.get("url", ""))).rowcount
    if not stored:
        return db.session.scalar(select(ContentImage.wechat_media_id).where(ContentImage.id == image_id)) or ""
    log.info("image %s is WeChat material %s", image_id, answer["media_id"])
    return answer["media_id"]


def publish_due() -> dict[str, int]:
    """The scheduler's job (every minute): publish what is due, take down what expired."""
    counts = publishing.run_due()
    if any(counts.values()):
        log.info("content sweep: %s", counts)
    return counts


def resend_unsent_images() -> int:
    """The safety net of upload_image (hourly): queue again each image uploaded 10 minutes to a
    day ago that WeChat has not yet given a media_id. Answers how many it queued."""
    now = utcnow()
    ids = db.session.scalars(select(ContentImage.id).where(
        ContentImage.wechat_media_id == "", ContentImage.created_at <= now - RESEND_AFTER,
        ContentImage.created_at > now - RESEND_FOR).order_by(ContentImage.id).limit(RESEND_BATCH)).all()
    for image_id in ids:
        enqueue_after_commit("marketing.content_jobs.upload_image", image_id=image_id)
    return len(ids)
