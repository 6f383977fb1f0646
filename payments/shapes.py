"""The shapes WeChat Pay sends us, parsed once where they arrive (reference §10.3).

- `NotificationEnvelope`: the signed body of /pay/notify and /pay/refund-notify.
- `Transaction`: a decrypted TRANSACTION.* resource, or the answer to an order query.
- `RefundNotice`: a decrypted REFUND.* resource, or a refund call's or query's answer.

Only what the code reads is typed; unknown keys are kept (extra="allow") so the stored record of
a notification is what WeChat said, whole. Types are strict: an amount is an integer, never "1".
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from wx_service.ground.validation import Shape

Text = Annotated[str, Field(max_length=256)]
Key = Annotated[str, Field(min_length=1, max_length=64)]


class _Kept(Shape):
    """A shape whose unknown keys are kept (the record of what WeChat sent)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    def record(self) -> dict[str, Any]:
        """What WeChat sent, as JSON-ready data (for the notification's stored row)."""
        return self.model_dump(mode="json", exclude_unset=True)


class EncryptedResource(Shape):
    algorithm: Text
    ciphertext: Annotated[str, Field(max_length=64 * 1024)]
    nonce: Text
    associated_data: Text | None = ""
    original_type: Text | None = None


class NotificationEnvelope(Shape):
    id: Text | None = None
    event_type: Text | None = None
    resource_type: Text | None = None
    create_time: Text | None = None
    summary: Text | None = None
    resource: EncryptedResource


class Amount(_Kept):
    total: int | None = None
    currency: Text | None = None
    payer_total: int | None = None
    payer_currency: Text | None = None


class Payer(_Kept):
    openid: Text | None = None


class Transaction(_Kept):
    out_trade_no: Key
    trade_state: Text
    mchid: Text | None = None
    appid: Text | None = None
    transaction_id: Text | None = None
    success_time: Text | None = None
    amount: Amount | None = None
    payer: Payer | None = None
    promotion_detail: list[dict[str, Any]] | None = None


class RefundAmount(_Kept):
    refund: int | None = None
    total: int | None = None
    payer_total: int | None = None
    payer_refund: int | None = None
    currency: Text | None = None


class RefundNotice(_Kept):
    out_trade_no: Key
    out_refund_no: Key
    refund_status: Text
    mchid: Text | None = None
    refund_id: Text | None = None
    success_time: Text | None = None
    amount: RefundAmount | None = None
    promotion_detail: list[dict[str, Any]] | None = None
