"""The request bodies the mini-program sends, as typed shapes. The views parse each body into one
of these, once; the OpenAPI document's request schemas are generated from the same classes, so
the spec and the validation cannot drift apart."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from payments.counter import MAX_AMOUNT_FEN
from wx_service.ground.validation import Shape, StoredText


class CodeRequest(Shape):
    """A one-time code from wx.login or from the getPhoneNumber button."""

    code: Annotated[str, Field(min_length=1, max_length=128, description="the code WeChat gave the mini-program")]


class PayOrderRequest(Shape):
    amount_fen: Annotated[int, Field(ge=1, le=MAX_AMOUNT_FEN, description="money in fen (1/100 yuan)")]
    description: Annotated[StoredText, Field(min_length=1, max_length=127, pattern=r"\S",
                                      description="shown in WeChat's bill; not only spaces")]
    source: Annotated[str, Field(max_length=64, description="the online touch that led to the purchase "
                                                            "(a QR scene, an article…)")] = ""


def request_schema(shape: type[Shape]) -> dict:
    """The JSON Schema (2020-12, OpenAPI 3.1's dialect) of a request body shape."""
    return shape.model_json_schema(ref_template="#/components/schemas/{model}")
