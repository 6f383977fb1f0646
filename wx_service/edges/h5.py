"""The OA's own web pages (H5 inside WeChat): web authorization for the shopper's OA openid, then
JSAPI pay with the OA's appid through WeixinJSBridge's getBrandWCPayRequest.

A page opened from the OA (menu, article, a counter's QR) does not know who the shopper is. WeChat's
web authorization (snsapi_base: no consent screen) tells us: /h5/oauth/start sends the browser to
WeChat with a random `state` kept in the session, WeChat comes back to /h5/oauth/callback with a
single-use code, and the server trades it for the openid, which the session keeps (Flask's signed
cookie: HttpOnly, SameSite=Lax, set app-wide by the console). The state check is the OAuth flow's
CSRF guard; `next` is only ever a local path; the JSON call that creates an order needs the page's
CSRF token. Thin: the order itself is payments.jsapi's, as for the mini-program.

The code exchange is a plain requests call on the OA client's pooled session with its timeout, like
mp_client.code2session, rather than wechatpy's WeChatOAuth: that has no timeout, and its
exceptions carry the request URL, which holds the AppSecret.
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, redirect, render_template, request, session, url_for
from pydantic import Field

from members.identity import OA, member_for_openid
from payments import counter as pay_flow
from payments import jsapi
from payments.config import PaymentsOff
from wx_service.edges.bodies import json_body
from wx_service.ground.extensions import db, settings, wechat_client
from wx_service.ground.logs import mask_openid
from wx_service.ground.validation import BadShape, Shape, StoredText
from wx_service.ground.wechat_client import WeChatApiError

bp = Blueprint("h5", __name__, url_prefix="/h5", template_folder="templates")
log = logging.getLogger(__name__)

OPENID_KEY = "h5_openid"      # the shopper's OA openid, once web authorization succeeded
PENDING_KEY = "h5_oauth"      # {"state", "next"} while the shopper is at WeChat's authorize page
CSRF_KEY = "h5_csrf"          # the pay page's token for its JSON writes
CODE_ERRORS = {40029, 40163}  # invalid or already used: the shopper should simply open the page again
DEFAULT_NEXT = "/h5/pay"
DEFAULT_DESCRIPTION = "商场购物"
_COUNTER = re.compile(r"[A-Za-z0-9_\-]{1,32}")
_SOURCE = re.compile(r"[A-Za-z0-9_\-.:]{1,64}")


class H5OrderRequest(Shape):
    """POST /h5/pay/orders: what the OA page sends to pay."""

    amount_fen: Annotated[int, Field(ge=1, le=pay_flow.MAX_AMOUNT_FEN)]
    description: Annotated[StoredText, Field(min_length=1, max_length=127, pattern=r"\S")] = DEFAULT_DESCRIPTION
    counter: Annotated[str, Field(pattern=f"^(?:{_COUNTER.pattern})?$")] | None = None  # as the page's link
    source: Annotated[str, Field(pattern=f"^(?:{_SOURCE.pattern})?$")] = ""


# -- helpers ---------------------------------------------------------------------------------------

def safe_next(target: str | None) -> str:
    """A path on this site only (no scheme, no //host, no backslash or control characters), so
    the callback can never be turned into an open redirect."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isprintable() and " " not in target and len(target) <= 512):
        return target
    return DEFAULT_NEXT


def authorize_url(redirect_uri: str, state: str) -> str:
    """WeChat's authorize URL, parameters in the order WeChat documents (it insists)."""
    return (f"{settings().oauth_base}/connect/oauth2/authorize?appid={settings().WECHAT_APPID}"
            f"&redirect_uri={quote(redirect_uri, safe='')}&response_type=code&scope=snsapi_base"
            f"&state={state}#wechat_redirect")


def exchange_code(code: str) -> str:
    """GET /sns/oauth2/access_token → the shopper's OA openid. The web access token is not kept:
    snsapi_base needs nothing but the openid. Raises WeChatApiError (errcode 40029/40163 for a
    bad or used code)."""
    result = wechat_client().get_with_secret("sns/oauth2/access_token", code=code, grant_type="authorization_code")
    openid = result.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WeChatApiError(None, "oauth2/access_token: no openid", transient=True)
    return openid


# -- shared by every OA page (pay, reservations, content, brand subscriptions) ----------------------

class Refused(Exception):
    """A form that cannot be acted on: shown to the shopper on the page, with a status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def signed_in_openid() -> str | None:
    """The shopper's OA openid, once the web authorization has signed them in."""
    openid = session.get(OPENID_KEY)
    return openid if isinstance(openid, str) and openid else None


def sign_in() -> Response:
    """Off to the web authorization, which brings the shopper back to this very page."""
    return redirect(url_for("h5.oauth_start", next=request.full_path.rstrip("?")), code=302)


def csrf_token() -> str:
    """This session's token for the page's writes (forms and JSON calls)."""
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(24)
    return token


def form_openid() -> str:
    """The signed-in shopper's openid, if the posted form carries this session's CSRF token."""
    openid = signed_in_openid()
    if openid is None:
        raise Refused(401, "请从公众号重新打开页面 · Open the page from the Official Account again to sign in.")
    sent = request.form.get("csrf", "")
    expected = session.get(CSRF_KEY) or ""
    if not expected or not hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode()):
        raise Refused(403, "页面已过期，请刷新后重试 · This page has expired; reload it and try again.")
    return openid


def no_store(response: Response) -> Response:
    """Personal pages and pay parameters: no shared cache may keep a copy."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _csrf_ok() -> bool:
    sent = request.headers.get("X-CSRF-Token", "")
    expected = session.get(CSRF_KEY) or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def _page_error(status: int, title: str, message: str, next_path: str = DEFAULT_NEXT) -> tuple[str, int]:
    """A plain page with a way back in (a new sign-in that returns to where the shopper was)."""
    return render_template("h5/error.html", title=title, message=message,
                           retry=url_for("h5.oauth_start", next=safe_next(next_path))), status


def _json_error(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify(error=code, message=message, **extra), status


bp.after_request(no_store)


# -- web authorization -----------------------------------------------------------------------------

@bp.get("/oauth/start")
def oauth_start() -> Response:
    """Send the shopper to WeChat's authorize page with a fresh state bound to this session."""
    state = secrets.token_hex(16)  # WeChat allows a-zA-Z0-9, up to 128 bytes
    session[PENDING_KEY] = {"state": state, "next": safe_next(request.args.get("next"))}
    # Production cookies are Secure, so WeChat must come back over https even behind a TLS proxy.
    scheme = "https" if settings().ENV_NAME == "production" else request.scheme
    callback = url_for("h5.oauth_callback", _external=True, _scheme=scheme)
    return redirect(authorize_url(callback, state), code=302)


@bp.get("/oauth/callback")
def oauth_callback() -> Response | tuple[str, int]:
    """WeChat's redirect back: the state must be the one this session was sent off with (else a
    400 without spending the code), then the code becomes the openid in the session."""
    pending = session.pop(PENDING_KEY, None)
    sent_state = request.args.get("state", "")
    if not isinstance(pending, dict) or not isinstance(pending.get("state"), str) \
            or not hmac.compare_digest(sent_state.encode(), pending["state"].encode()):
        log.warning("h5 web authorization refused: state missing or not this session's")
        return _page_error(400, "授权已失效", "This sign-in link is not from this page or has expired. "
                                             "请重新打开页面 (open the page again).")
    next_path = safe_next(pending.get("next"))
    code = request.args.get("code", "")
    if not 1 <= len(code) <= 128:
        return _page_error(400, "未获得授权", "WeChat did not send an authorization code. 请重新打开页面.", next_path)
    try:
        openid = exchange_code(code)
    except WeChatApiError as exc:
        log.warning("h5 web authorization failed: errcode=%s", exc.errcode)
        if exc.errcode in CODE_ERRORS:
            return _page_error(400, "授权码无效", "This authorization code is invalid or was already used. "
                                                "请重新打开页面 (open the page again).", next_path)
        return _page_error(502, "微信暂时无法响应", "WeChat did not answer; please try again in a moment.", next_path)
    session[OPENID_KEY] = openid
    session[CSRF_KEY] = secrets.token_urlsafe(24)  # a new identity gets a new token
    log.info("h5 web authorization: shopper signed in", extra={"openid": mask_openid(openid)})
    return redirect(next_path, code=302)


# -- pay -------------------------------------------------------------------------------------------

def _fixed_amount(raw: str | None) -> int | None:
    """amount_fen from a counter QR's link; None when absent, -1 when malformed."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= pay_flow.MAX_AMOUNT_FEN:
        return -1
    return int(raw)


@bp.get("/pay")
def pay_page() -> Response | tuple[str, int] | str:
    """Amount and description (or an amount fixed by the link), a Pay button; signs in first."""
    if not session.get(OPENID_KEY):
        return redirect(url_for("h5.oauth_start", next=request.full_path.rstrip("?")), code=302)
    amount = _fixed_amount(request.args.get("amount_fen"))
    if amount == -1:
        return _page_error(400, "链接有误", f"amount_fen must be an integer from 1 to {pay_flow.MAX_AMOUNT_FEN}.")
    counter_id = request.args.get("counter", "")
    if counter_id and not _COUNTER.fullmatch(counter_id):
        return _page_error(400, "链接有误", "counter is 1-32 letters, digits, '-' or '_'.")
    source = request.args.get("source", "")
    if source and not _SOURCE.fullmatch(source):
        source = ""
    description = (request.args.get("description") or "").strip()[:127] or DEFAULT_DESCRIPTION
    return render_template("h5/pay.html", csrf=csrf_token(), amount_fen=amount, description=description,
                           counter_id=counter_id, source=source, emulator=settings().WECHAT_EMULATOR,
                           restart=url_for("h5.oauth_start", next=request.full_path.rstrip("?")))


@bp.post("/pay/orders")
def create_order() -> tuple[Response, int]:
    """A JSAPI order with the OA's appid for the signed-in shopper, and getBrandWCPayRequest's
    parameters. WeChat refusing is a 502 (order closed), no clear answer a 503 (left unpaid)."""
    openid = session.get(OPENID_KEY)
    if not openid:
        return _json_error(401, "unauthorized", "open the page from WeChat again to sign in")
    if not _csrf_ok():
        return _json_error(403, "csrf", "missing or wrong CSRF token; reload the page")
    try:
        body = json_body(H5OrderRequest)
    except BadShape as exc:
        return _json_error(400, "bad_request", str(exc), field=exc.field)
    with db.unit_of_work():
        member = member_for_openid(OA, openid)
        member_id = member.id if member is not None else None
    try:
        order, params = jsapi.open_jsapi_order(body.amount_fen, body.description.strip(), openid, member_id,
                                               body.source, appid=settings().WECHAT_APPID,
                                               counter_id=body.counter or jsapi.H5_COUNTER)
    except pay_flow.WechatRefused as exc:
        return _json_error(502, "payment_refused", exc.message, out_trade_no=exc.out_trade_no)
    except pay_flow.OutcomeUnknown as exc:
        return _json_error(503, "payment_unavailable", exc.message, out_trade_no=exc.out_trade_no)
    except PaymentsOff:
        return _json_error(503, "payment_unavailable", "payments are not available now")
    log.info("h5 JSAPI order %s", order.out_trade_no, extra={"openid": mask_openid(openid)})
    return jsonify(order=jsapi.buyer_view(order.out_trade_no, openid), pay_params=params), 201


@bp.get("/pay/orders/<out_trade_no>")
def order_state(out_trade_no: str) -> tuple[Response, int]:
    """The order's state for its buyer only; anyone else's order number is a 404."""
    openid = session.get(OPENID_KEY)
    if not openid:
        return _json_error(401, "unauthorized", "open the page from WeChat again to sign in")
    body = jsapi.buyer_view(out_trade_no, openid) if len(out_trade_no) <= 32 else None
    if body is None:
        return _json_error(404, "not_found", "no such order")
    return jsonify(order=body), 200
