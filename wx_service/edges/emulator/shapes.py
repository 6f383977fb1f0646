"""The bodies the emulated WeChat API takes, as typed shapes (the fields each call reads).

A body that is not its call's shape gets WeChat's answer for malformed data, errcode 47001, with
the field named in errmsg as WeChat's "data format error hint" does, never a 500. Unknown keys
are kept: WeChat ignores what it does not know, and the emulator records some bodies whole.
"""
from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from wx_service.ground.validation import Shape


class _Body(Shape):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class StableToken(_Body):
    grant_type: str | None = None
    appid: str | None = None
    secret: str | None = None
    force_refresh: bool | None = None


class CustomSend(_Body):
    touser: str
    msgtype: str


class TemplateSend(_Body):
    touser: str
    template_id: str
    data: dict[str, Any] | None = None
    url: str | None = None
    miniprogram: dict[str, Any] | None = None
    client_msg_id: str | None = None


class SubscribeSend(_Body):
    touser: str
    template_id: str
    data: dict[str, Any]
    page: str | None = None
    miniprogram_state: str | None = None
    lang: str | None = None


class MenuCreate(_Body):
    button: list[dict[str, Any]]


class _Scene(_Body):
    scene_id: int | None = None
    scene_str: str | None = None


class _SceneInfo(_Body):
    scene: _Scene


class QrcodeCreate(_Body):
    action_name: str
    action_info: _SceneInfo
    expire_seconds: int | None = None


class _Card(_Body):
    card_type: str
    member_card: dict[str, Any]


class CardCreate(_Body):
    card: _Card


class CardUpdate(_Body):
    card_id: str
    member_card: dict[str, Any]


class _RequiredForm(_Body):
    common_field_id_list: list[str]


class ActivateUserFormSet(_Body):
    card_id: str
    required_form: _RequiredForm


class CardCode(_Body):
    code: str
    card_id: str | None = None


class MembercardActivate(CardCode):
    membership_number: str
    init_bonus: int | None = None
    init_custom_field_value1: str | None = None
    init_custom_field_value2: str | None = None
    init_custom_field_value3: str | None = None


class MembercardUpdateUser(CardCode):
    bonus: int | None = None
    add_bonus: int | None = None
    record_bonus: str | None = None
    custom_field_value1: str | None = None
    custom_field_value2: str | None = None
    custom_field_value3: str | None = None


class _QrCard(_Body):
    card_id: str
    outer_str: str | None = None


class _QrCardInfo(_Body):
    card: _QrCard


class CardQrcodeCreate(_Body):
    action_name: str
    action_info: _QrCardInfo
    expire_seconds: int | None = None


class PhoneNumber(_Body):
    code: str
    openid: str | None = None


# -- WeChat Pay API v3 (answered with PARAM_ERROR and the field, as WeChat Pay does) ----------------

class _PayAmount(_Body):
    total: int
    currency: str | None = None


class _PayPayer(_Body):
    openid: str | None = None
    auth_code: str | None = None


class _PayOrder(_Body):
    appid: str
    mchid: str
    description: str
    out_trade_no: str
    amount: _PayAmount
    attach: str | None = None


class PayNewOrder(_PayOrder):
    """native and jsapi: the fields the order is placed with."""

    notify_url: str
    payer: _PayPayer | None = None


class PayCodepay(_PayOrder):
    payer: _PayPayer
    notify_url: str | None = None


class PayClose(_Body):
    mchid: str


class PayReverse(_Body):
    mchid: str
    appid: str


class _RefundAmount(_Body):
    refund: int
    total: int
    currency: str | None = None


class PayRefund(_Body):
    out_refund_no: str
    amount: _RefundAmount
    out_trade_no: str | None = None
    transaction_id: str | None = None
    reason: str | None = None
    notify_url: str | None = None
