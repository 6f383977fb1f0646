"""The store's content images, served to anyone at a stable URL (/content/images/<sha256>.<ext>,
or /content/images/<id>): the OA's news cards, the shopper's H5 pages inside WeChat's browser and
the console all load them.

The URL names the bytes' hash, so what it answers never changes: caches may keep it for a year
(`immutable`), and a revalidation by ETag answers 304. No cookie is read and none is set; the
picture is marked nosniff so a browser never runs it as anything but an image, and any origin may
read it (an H5 page drawing it into a share poster's canvas).
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, request, url_for

from marketing import images
from marketing.models import ContentImage
from wx_service.ground.extensions import db

bp = Blueprint("content_images", __name__)

ONE_YEAR = 365 * 24 * 3600


def image_url(image: ContentImage | None, *, external: bool = False) -> str:
    """Where an image is served ('' for none)."""
    if image is None:
        return ""
    sha, _, ext = images.file_name(image).partition(".")
    return url_for("content_images.show", sha256=sha, ext=ext, _external=external)


@bp.get("/content/images/<sha256>.<ext>")
def show(sha256: str, ext: str):
    if len(sha256) != 64 or ext not in images.EXTENSIONS.values():
        abort(404)
    with db.unit_of_work():
        image = images.by_sha256(sha256.lower())
        if image is None or images.file_name(image) != f"{sha256}.{ext}":
            abort(404)
        return _picture(image)


@bp.get("/content/images/<int:image_id>")
def show_by_id(image_id: int):
    """The same picture by its row id (what shoppers' lists and OA cards carry, `listings.image_path`):
    an id names one stored picture for good (pictures are never edited, only added), so it caches
    as long as the hash URL does."""
    with db.unit_of_work():
        image = db.session.get(ContentImage, image_id)
        if image is None:
            abort(404)
        return _picture(image)


def _picture(image: ContentImage) -> Response:
    etag = f'"{image.sha256}"'
    headers = {"Cache-Control": f"public, max-age={ONE_YEAR}, immutable", "ETag": etag,
               "X-Content-Type-Options": "nosniff", "Access-Control-Allow-Origin": "*"}
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(image.data, content_type=image.content_type, headers=headers)
