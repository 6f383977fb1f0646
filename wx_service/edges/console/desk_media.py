"""Pictures in the desk: an agent's picture goes up to WeChat (media/upload) and out as an image
answer; a shopper's picture or voice comes down from WeChat (media/get) through the server.

Both calls to WeChat are made here, while the agent waits and with no transaction open (the
architecture's "person waits" exception): the upload first, then the answer in one unit of work.
The browser never sees an access token: media is fetched by the server and passed on.

Media is not cached in Redis: a shopper's picture is opened a few times at most, and WeChat keeps
temporary media for three days; the browser keeps it (`Cache-Control: private, max-age=86400`).
"""
from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from members.staff import AGENT
from service_desk import access, outbound
from service_desk.exceptions import BadMessage, NotAnAgent
from wx_service.edges.console.auth import roles
from wx_service.edges.console.desk import REFUSED, refusal
from wx_service.ground.extensions import db, wechat_client
from wx_service.ground.mp_client import mp_wechat_client
from wx_service.ground.wechat_client import WeChatApiError

bp = Blueprint("console_desk_media", __name__)

MAX_IMAGE = 2 * 1024 * 1024  # WeChat's limit for an image sent as a customer-service message
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif"}


@bp.before_request
def _allow_larger_uploads() -> None:
    """The app takes at most 1 MB a request; a picture may be 2 MB (checked again below)."""
    if request.endpoint == "console_desk_media.upload":
        request.max_content_length = MAX_IMAGE + 64 * 1024


def _client_for(channel: str):
    return mp_wechat_client() if channel == "mp" else wechat_client()


@bp.post("/console/api/desk/conversations/<int:conversation_id>/image")
@roles(AGENT)
def upload(conversation_id: int):
    """multipart: file (jpeg/png/gif, at most 2 MB) and client_key. Uploaded to WeChat, then sent
    as an image answer (same refusals as a text answer: not yours 409, window shut 409...)."""
    try:
        with db.unit_of_work():
            agent = access.agent_for_staff(g.staff.id)
            channel = access.conversation_for(agent, conversation_id).channel
        picture = request.files.get("file")
        if picture is None or not picture.filename:
            raise BadMessage("choose a picture to send")
        data = picture.read(MAX_IMAGE + 1)
        if not data or len(data) > MAX_IMAGE:
            raise BadMessage("a picture is at most 2 MB")
        if picture.mimetype not in IMAGE_TYPES:
            raise BadMessage("a picture is a JPEG, PNG or GIF")
        client_key = (request.form.get("client_key") or "")[:64] or None
    except REFUSED as exc:
        return refusal(exc)
    try:
        uploaded = _client_for(channel).media.upload("image", (picture.filename[:64], data, picture.mimetype))
    except WeChatApiError as exc:
        return jsonify(error=f"WeChat refused the picture ({exc.errcode}): {exc.errmsg}",
                       errcode=exc.errcode, errmsg=exc.errmsg), 502
    try:
        with db.unit_of_work():
            agent = access.agent_for_staff(g.staff.id)
            message = outbound.answer(agent, conversation_id, "", client_key, kind="image",
                                      media_id=uploaded["media_id"])
            shaped = {"id": message.id, "conversation_id": message.conversation_id, "kind": message.kind,
                      "status": message.status, "media_id": message.media_id}
    except REFUSED as exc:
        return refusal(exc)
    return jsonify(message=shaped), 201


@bp.get("/console/api/desk/media/<media_id>")
@roles(AGENT)
def media(media_id: str):
    """A picture or voice seen in a conversation the agent may see, fetched from WeChat by the server."""
    if len(media_id) > 128:
        return jsonify(error="no such media"), 404
    try:
        with db.unit_of_work():
            agent = access.agent_for_staff(g.staff.id)
            channel = access.conversation_for_media(agent, media_id).channel
    except NotAnAgent as exc:
        return jsonify(error=str(exc)), 403
    except REFUSED as exc:
        return refusal(exc)
    try:
        fetched = _client_for(channel).media.download(media_id)
    except WeChatApiError as exc:
        return jsonify(error=f"WeChat could not give this media ({exc.errcode}): {exc.errmsg}",
                       errcode=exc.errcode, errmsg=exc.errmsg), 502
    content_type = fetched.headers.get("Content-Type", "application/octet-stream").split(";")[0]
    if content_type in ("application/json", "text/plain"):  # WeChat's error body (the client let it through)
        return jsonify(error="WeChat could not give this media"), 502
    response = Response(fetched.content, content_type=content_type)
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
