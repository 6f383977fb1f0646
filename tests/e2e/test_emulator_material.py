"""The emulator's permanent material API (新增其他类型永久素材), over real HTTP as WeChat answers
it: `material/add_material?type=` with a multipart `media`, {media_id, url} for an image, and
WeChat's error codes for a type it does not know, a file of the wrong format, one too large, none."""
from __future__ import annotations

import requests

from tests.integration.content_helpers import JPEG, png

TIMEOUT = 30


def _token(base_url, settings) -> str:
    return requests.post(f"{base_url}/_emulator/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": settings.WECHAT_APPID, "secret": settings.WECHAT_SECRET,
        "force_refresh": False}, timeout=TIMEOUT).json()["access_token"]


def _add(base_url, token, kind="image", data=b"", filename="a.png", content_type="image/png", field="media") -> dict:
    files = {field: (filename, data, content_type)} if field else None
    params = {"type": kind} if token is None else {"access_token": token, "type": kind}
    return requests.post(f"{base_url}/_emulator/cgi-bin/material/add_material", params=params, files=files,
                         data=None if field else {"x": "1"}, timeout=TIMEOUT).json()


def test_an_image_becomes_permanent_material_with_a_url_on_the_picture_host(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    picture = png()
    answer = _add(base_url, token, data=picture, filename="cover.jpg", content_type="application/octet-stream")
    assert set(answer) == {"media_id", "url"}
    served = requests.get(answer["url"], timeout=TIMEOUT)
    assert served.status_code == 200 and served.content == picture and served.headers["Content-Type"] == "image/png"
    # Permanent material is not temporary media: media/get does not know it.
    got = requests.get(f"{base_url}/_emulator/cgi-bin/media/get",
                       params={"access_token": token, "media_id": answer["media_id"]}, timeout=TIMEOUT).json()
    assert got["errcode"] == 40007
    assert set(_add(base_url, token, data=JPEG, filename="a.jpg", content_type="image/jpeg")) == {"media_id", "url"}
    voice = _add(base_url, token, kind="voice", data=b"#!AMR\n" + bytes(32), filename="a.amr", content_type="audio/amr")
    assert set(voice) == {"media_id"}
    thumb = _add(base_url, token, kind="thumb", data=JPEG, filename="t.jpg", content_type="image/jpeg")
    assert set(thumb) == {"media_id"}


def test_wechats_refusals_for_type_format_size_and_a_missing_file(app, base_url, settings):
    token = _token(base_url, settings)
    cases = [
        (dict(kind="picture", data=png()), 40004, "invalid media type"),
        (dict(data=b"%PDF-1.4 not a picture", filename="x.png"), 40005, "invalid file type"),
        (dict(kind="thumb", data=png()), 40005, "invalid file type"),  # a thumb is a JPEG
        (dict(data=png() + bytes(10 * 1024 * 1024)), 40009, "invalid image size"),
        (dict(kind="thumb", data=JPEG + bytes(64 * 1024)), 40006, "invalid meida size"),
        (dict(data=b""), 41005, "media data missing"),
        (dict(field=None), 41005, "media data missing"),
    ]
    for kwargs, errcode, errmsg in cases:
        assert _add(base_url, token, **kwargs) == {"errcode": errcode, "errmsg": errmsg}, kwargs
    assert _add(base_url, None, data=png())["errcode"] == 41001
    assert _add(base_url, "not-a-token", data=png())["errcode"] == 40001


def test_a_gif_is_an_image_wechat_keeps(app, base_url, settings):
    answer = _add(base_url, _token(base_url, settings), data=b"GIF89a" + bytes(20), filename="a.gif",
                  content_type="image/gif")
    assert "media_id" in answer and requests.get(answer["url"], timeout=TIMEOUT).headers["Content-Type"] == "image/gif"
