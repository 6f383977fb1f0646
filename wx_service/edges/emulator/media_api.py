"""The emulator's temporary media (media/upload, media/get): what the desk's console uploads for
an agent's picture and fetches for a shopper's picture or voice. Kept in memory until reset."""
from __future__ import annotations

import secrets
import time

from flask import Blueprint, Response, jsonify, request

from wx_service.edges.emulator.api import _error, _state, wechat_api

bp = Blueprint("emulator_media_api", __name__)

KINDS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024, "thumb": 64 * 1024}


def store(data: bytes, content_type: str, kind: str = "image") -> str:
    """Keep `data` as temporary media (the shopper's own picture, say) and return its media_id."""
    media_id = "emu-media-" + secrets.token_urlsafe(24)
    state = _state()
    with state.lock:
        state.media[media_id] = (data, content_type, kind)
    return media_id


@bp.post("/cgi-bin/media/upload")
@wechat_api("media/upload")
def media_upload():
    request.max_content_length = max(KINDS.values()) + 64 * 1024  # WeChat's own limits, checked below
    kind = request.args.get("type", "")
    if kind not in KINDS:
        return _error(40004, "invalid media type")
    media = request.files.get("media")
    if media is None:
        return _error(41005, "media data missing")
    data = media.read()
    if not data:
        return _error(44001, "empty media data")
    if len(data) > KINDS[kind]:
        return _error(40006, "invalid meida size")
    media_id = store(data, media.mimetype or "application/octet-stream", kind)
    return jsonify(type=kind, media_id=media_id, created_at=int(time.time()))


@bp.get("/cgi-bin/media/get")
@wechat_api("media/get")
def media_get():
    state = _state()
    with state.lock:
        found = state.media.get(request.args.get("media_id", ""))
    if found is None:
        return _error(40007, "invalid media_id")
    data, content_type, _ = found
    return Response(data, content_type=content_type,
                    headers={"Content-Disposition": 'attachment; filename="media"'})
