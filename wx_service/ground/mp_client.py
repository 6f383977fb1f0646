"""WeChat's mini-program server APIs (reference §8): code2Session and the phone number.

Called inside the mini-program's own requests (it waits on login, unlike the webhook), so each
call is bounded by the client's 5-second timeout. Failures come out as WeChatApiError; the
session_key is returned to the caller and never logged.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from wx_service.ground.extensions import redis, settings, wechat_client
from wx_service.ground.wechat_client import StoreWeChatClient, WeChatApiError


@dataclass(frozen=True)
class MpLogin:
    openid: str
    session_key: str
    unionid: str | None

    def __repr__(self) -> str:  # keep the session_key out of logs and tracebacks
        return f"MpLogin(openid={self.openid!r}, unionid={self.unionid!r})"


@dataclass(frozen=True)
class MpPhone:
    phone: str  # phoneNumber: bare for +86, else with its country code
    pure_phone: str
    country_code: int


class WatermarkMismatch(WeChatApiError):
    """The phone data names another app: refuse it (reference §8.2/§8.3)."""


def mp_wechat_client() -> StoreWeChatClient:
    """The mini-program's own client (its access token is not the OA's), or the OA's client when
    no separate mini-program app is configured. One per app, like the OA's."""
    s = settings()
    if s.mp_appid == s.WECHAT_APPID:
        return wechat_client()
    client = current_app.extensions.get("wx_mp_client")
    if client is None:
        client = StoreWeChatClient(s.mp_appid, s.mp_secret, s.WECHAT_API_BASE, redis())
        current_app.extensions["wx_mp_client"] = client
    return client


def code2session(js_code: str) -> MpLogin:
    """GET /sns/jscode2session. No access token: the app's secret authenticates the call."""
    result = mp_wechat_client().get_with_secret("sns/jscode2session", js_code=js_code,
                                                grant_type="authorization_code")
    if not result.get("openid") or not result.get("session_key"):
        raise WeChatApiError(None, "jscode2session: no openid/session_key", transient=True)
    return MpLogin(openid=result["openid"], session_key=result["session_key"], unionid=result.get("unionid") or None)


def phone_number(code: str, openid: str) -> MpPhone:
    """POST /wxa/business/getuserphonenumber. Passing the openid makes WeChat check that the code
    belongs to this user; the watermark must name our app."""
    client = mp_wechat_client()
    result = client.post(f"{client.api_base}/wxa/business/getuserphonenumber", data={"code": code, "openid": openid})
    info = result.get("phone_info") if isinstance(result, dict) else None
    if not isinstance(info, dict) or not info.get("phoneNumber"):
        raise WeChatApiError(None, "getuserphonenumber: no phone_info", transient=True)
    if (info.get("watermark") or {}).get("appid") != client.appid:
        raise WatermarkMismatch(None, "getuserphonenumber: watermark names another app", transient=False)
    return MpPhone(phone=str(info["phoneNumber"]), pure_phone=str(info.get("purePhoneNumber", "")),
                   country_code=int(info.get("countryCode") or 86))
