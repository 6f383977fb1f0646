"""Absolute links to this service's own pages, for what is sent into WeChat (a reply's link to the
OA's H5 pages). There is no base-URL setting: the host is the one WeChat reached us at (the
request's), and in production the scheme is https, since the TLS proxy in front speaks http to us
and the OA's web authorization only returns to https pages."""
from __future__ import annotations

from flask import has_request_context, request

from wx_service.ground.extensions import settings


def public_url(path: str) -> str:
    """`path` (starting with "/") on the host this request came in on."""
    if not has_request_context():
        raise RuntimeError("public_url needs the request WeChat sent: call it while answering one")
    scheme = "https" if settings().ENV_NAME == "production" else request.scheme
    return f"{scheme}://{request.host}{path}"
