"""The emulator playing WeChat's temporary material API (新增临时素材 / 获取临时素材).

`POST /cgi-bin/media/upload?type=image|voice|video|thumb` takes a multipart field `media` and
answers `{"type", "media_id", "created_at"}`; `GET /cgi-bin/media/get?media_id=` answers the bytes
with their content type and a Content-disposition naming the file, as WeChat does, or
`{"errcode":40007,"errmsg":"invalid media_id"}` once the id is unknown or its 3 days are over.
A video answers JSON with `video_url` instead of bytes, as WeChat's does.

`POST /cgi-bin/material/add_material?type=image|voice|video|thumb` (新增其他类型永久素材) takes the
same multipart field and keeps the material for good: it answers `{"media_id", "url"}` for an image
(the url on WeChat's picture host, what an OA news card's picture must be), `{"media_id"}` for the
others. Its limits: image 10 MB in BMP, PNG, JPEG or GIF; voice 2 MB; video 10 MB; thumb 64 KB
JPEG. A type it does not know is 40004, a file that is not of an accepted format 40005 "invalid
file type" (WeChat looks at the file; so does the emulator, by its magic number), a size over the
limit 40009 for an image (40006 otherwise), no file or an empty one 41005.

`/media/pic/<media_id>` is not WeChat's API: it stands in for the picture host (mmbiz.qpic.cn)
behind a shopper's image push's PicUrl, and is what the shopper page shows images from.
"""
from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from wx_service.edges.emulator.api import _error, _state, wechat_api
from wx_service.edges.emulator.state import PREFIX

bp = Blueprint("emulator_media_api", __name__)

# WeChat's documented limits for temporary material (新增临时素材): image 10 MB (PNG, JPEG, JPG,
# GIF), voice 2 MB (AMR, MP3; up to 60 s), video 10 MB (MP4), thumb 64 KB (JPG).
MEDIA_LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024,
                "thumb": 64 * 1024}
# Over its limit an image is 40009 "invalid image size"; any other type is 40006 "invalid meida
# size" (sic), the answer the material API documents for a size it refuses. An empty file is
# 41005 "media data missing", as no file at all is.
SIZE_ERRCODE = {"image": 40009}
# The body cap for an upload: the largest limit plus room for the multipart framing, so that
# WeChat's own size check (not the app's 1 MB cap) answers a file somewhat over its limit.
UPLOAD_BODY_CAP = max(MEDIA_LIMITS.values()) + 1024 * 1024

EXTENSIONS = {"image/jpeg": "jpg", "image/jpg": "jpg", "image/png": "png", "image/gif": "gif",
              "audio/amr": "amr", "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/speex": "speex",
              "video/mp4": "mp4"}
MIME_TYPE = re.compile(r"[A-Za-z0-9.+-]{1,40}/[A-Za-z0-9.+-]{1,60}")
DEFAULT_CONTENT_TYPE = {"image": "image/jpeg", "voice": "audio/amr", "video": "video/mp4", "thumb": "image/jpeg"}


def extension_for(content_type: str, kind: str) -> str:
    """The file extension WeChat's Content-disposition would carry for this material."""
    return EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "jpg" if kind in ("image", "thumb") else "bin")


def size_error(kind: str, size: int) -> int:
    """0 when `size` bytes of `kind` are acceptable, else WeChat's errcode."""
    if size <= 0:
        return 41005
    if size > MEDIA_LIMITS[kind]:
        return SIZE_ERRCODE.get(kind, 40006)
    return 0


def _take_upload() -> tuple[str, bytes, str, str] | Response:
    """The upload both material APIs take: (type, bytes, declared content type, filename), or
    WeChat's refusal of the type (40004), a missing or empty file (41005) or its size."""
    kind = request.args.get("type", "")
    if kind not in MEDIA_LIMITS:
        return _error(40004)
    declared = request.content_length
    if declared is not None and declared > UPLOAD_BODY_CAP:
        return _error(size_error(kind, declared))
    request.max_content_length = UPLOAD_BODY_CAP
    upload = request.files.get("media")
    if upload is None:
        return _error(41005)
    data = upload.read()
    code = size_error(kind, len(data))
    if code:
        return _error(code)
    content_type = upload.mimetype
    if not MIME_TYPE.fullmatch(content_type) or content_type == "application/octet-stream":
        content_type = DEFAULT_CONTENT_TYPE[kind]
    return kind, data, content_type, upload.filename or ""


@bp.post("/cgi-bin/media/upload")
@wechat_api("media/upload")
def media_upload():
    taken = _take_upload()
    if isinstance(taken, Response):
        return taken
    kind, data, content_type, filename = taken
    media = _state().store_media(kind, data, content_type, filename)
    return jsonify(type=kind, media_id=media.media_id, created_at=int(media.created_at))


# The formats permanent material accepts, by magic number; voice and video are not sniffed.
_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
          "image/gif": (b"GIF87a", b"GIF89a"), "image/bmp": (b"BM",)}
MATERIAL_FORMATS = {"image": ("image/png", "image/jpeg", "image/gif", "image/bmp"), "thumb": ("image/jpeg",)}


def sniffed_type(kind: str, data: bytes) -> str | None:
    """The content type `data` is, among those permanent `kind` material accepts; None: refused."""
    for content_type in MATERIAL_FORMATS[kind]:
        if data.startswith(_MAGIC[content_type]):
            return content_type
    return None


@bp.post("/cgi-bin/material/add_material")
@wechat_api("material/add_material")
def material_add():
    taken = _take_upload()
    if isinstance(taken, Response):
        return taken
    kind, data, content_type, filename = taken
    if kind in MATERIAL_FORMATS:
        content_type = sniffed_type(kind, data)
        if content_type is None:
            return _error(40005)
    media = _state().store_media(kind, data, content_type, filename, permanent=True)
    if kind == "image":
        return jsonify(media_id=media.media_id, url=request.host_url.rstrip("/") + picture_path(media.media_id))
    return jsonify(media_id=media.media_id)


@bp.get("/cgi-bin/media/get")
@wechat_api("media/get")
def media_get():
    state = _state()
    media = state.find_media(request.args.get("media_id", ""))
    if media is None:
        return _error(40007)
    if media.kind == "video":
        return jsonify(video_url=request.host_url.rstrip("/") + picture_path(media.media_id))
    filename = f"{media.media_id}.{extension_for(media.content_type, media.kind)}"
    return Response(media.data, content_type=media.content_type,
                    headers={"Content-disposition": f'attachment; filename="{filename}"'})


def picture_path(media_id: str) -> str:
    """Where the emulator serves a stored picture (the stand-in for WeChat's picture host)."""
    return f"{PREFIX}/media/pic/{media_id}"


@bp.get("/media/pic/<media_id>")
def media_picture(media_id: str):
    """A stored picture (or any stored material) by media_id; 404 when unknown, as a CDN would."""
    media = _state().find_media(media_id, live=False)
    if media is None:
        return Response(status=404)
    return Response(media.data, content_type=media.content_type, headers={"Cache-Control": "max-age=86400"})
