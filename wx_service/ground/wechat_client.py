"""The WeChat API client: wechatpy's client bound to the shared token store and to WECHAT_API_BASE.

The webhook never calls it (it never waits on WeChat): jobs do, and so do the OA's pages and the
mini-program's login, which must exchange a code while the shopper waits. Errors come out as
WeChatApiError with `transient` telling the job runner whether a retry could help.
"""
from __future__ import annotations

import logging
import time

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from wx_service.ground.protocol.signature import jsapi_signature
from wx_service.ground.token_store import (
    SharedCredential,
    access_token_credential,
    card_ticket_credential,
    jsapi_ticket_credential,
)

log = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}
# Codes where the same call may succeed later: system busy, and HTTP/network failures (None).
TRANSIENT_ERRORS = {-1, None}


class WeChatApiError(Exception):
    def __init__(self, errcode: int | None, errmsg: str, transient: bool) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.transient = transient


class StoreWeChatClient(WeChatClient):
    """wechatpy's WeChatClient, but tokens come from the shared store, via stable_token."""

    def __init__(self, appid: str, secret: str, api_base: str, redis, timeout: float = 5.0) -> None:
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.api_base = api_base.rstrip("/")
        self.API_BASE_URL = f"{self.api_base}/cgi-bin/"
        self.tokens: SharedCredential = access_token_credential(redis, appid, self._fetch_stable_token)
        self.jsapi_tickets: SharedCredential = jsapi_ticket_credential(redis, appid, self._fetch_jsapi_ticket)
        self.card_tickets: SharedCredential = card_ticket_credential(redis, appid, self._fetch_card_ticket)

    # -- credentials -------------------------------------------------------------------------
    def _fetch_stable_token(self) -> tuple[str, int]:
        try:
            res = self._http.post(
                f"{self.api_base}/cgi-bin/stable_token",
                json={"grant_type": "client_credential", "appid": self.appid,
                      "secret": self.secret, "force_refresh": False},
                timeout=self.timeout,
            )
            res.raise_for_status()
            result = res.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatApiError(None, f"stable_token: {exc}", transient=True) from exc
        if result.get("errcode"):
            code = int(result["errcode"])
            raise WeChatApiError(code, result.get("errmsg", ""), transient=code in TRANSIENT_ERRORS)
        return result["access_token"], int(result.get("expires_in", 7200))

    def _fetch_jsapi_ticket(self) -> tuple[str, int]:
        result = self.get("ticket/getticket", params={"type": "jsapi"})
        return result["ticket"], int(result.get("expires_in", 7200))

    def _fetch_card_ticket(self) -> tuple[str, int]:
        result = self.get("ticket/getticket", params={"type": "wx_card"})
        return result["ticket"], int(result.get("expires_in", 7200))

    @property
    def access_token(self) -> str:  # type: ignore[override]
        return self.tokens.get()

    def fetch_access_token(self):  # type: ignore[override]
        return {"access_token": self.tokens.refresh(stale=None)}

    # -- requests ------------------------------------------------------------------------------
    def _request(self, method, url_or_endpoint, **kwargs):
        """One call; on a token error, invalidate that token (if still current) and retry once."""
        token = self.tokens.get()
        params = dict(kwargs.pop("params", None) or {})
        params["access_token"] = token
        try:
            return super()._request(method, url_or_endpoint, params=params, **kwargs)
        except WeChatClientException as exc:
            if exc.errcode in TOKEN_ERRORS:
                log.info("token rejected with %s; invalidating and retrying once", exc.errcode)
                self.tokens.invalidate(token)
                params["access_token"] = self.tokens.refresh(stale=token)
                try:
                    return super()._request(method, url_or_endpoint, params=params, **kwargs)
                except WeChatClientException as again:
                    raise _as_api_error(again) from again
                except requests.RequestException as again:
                    raise WeChatApiError(None, str(again), transient=True) from again
            raise _as_api_error(exc) from exc
        except requests.RequestException as exc:
            raise WeChatApiError(None, str(exc), transient=True) from exc

    def get_with_secret(self, path: str, **params: str) -> dict:
        """GET one of the `sns/` endpoints that the app's secret authenticates instead of an access
        token (web authorization's code exchange, the mini-program's jscode2session), on the
        client's pooled HTTP session. WeChat's errcode comes out as WeChatApiError."""
        try:
            res = self._http.get(f"{self.api_base}/{path}", timeout=self.timeout, params={
                "appid": self.appid, "secret": self.secret, **params})
            res.raise_for_status()
            result = res.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatApiError(None, f"{path}: {type(exc).__name__}", transient=True) from None
        if not isinstance(result, dict):
            raise WeChatApiError(None, f"{path}: unexpected answer", transient=True)
        if result.get("errcode"):
            errcode = int(result["errcode"])
            raise WeChatApiError(errcode, str(result.get("errmsg", "")), transient=errcode in TRANSIENT_ERRORS)
        return result

    # -- conveniences used by jobs ---------------------------------------------------------------
    def send_custom_message(self, payload: dict) -> dict:
        """POST message/custom/send with a prepared body ({touser, msgtype, <type>: {...}})."""
        return self.post("message/custom/send", data=payload)

    def jsapi_signature(self, url: str, noncestr: str, timestamp: int | None = None) -> dict:
        """wx.config parameters for a page URL (reference §4.4), signed server-side."""
        timestamp = timestamp or int(time.time())
        ticket = self.jsapi_tickets.get()
        return {"appId": self.appid, "timestamp": timestamp, "nonceStr": noncestr,
                "signature": jsapi_signature(ticket, noncestr, timestamp, url)}


def _as_api_error(exc: WeChatClientException) -> WeChatApiError:
    code = exc.errcode
    return WeChatApiError(code, str(exc.errmsg or ""), transient=code in TRANSIENT_ERRORS)
