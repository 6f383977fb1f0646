"""The request bodies the mini-program sends, as typed shapes. The views parse each body into one
of these, once; the OpenAPI document's request schemas are generated from the same classes, so
the spec and the validation cannot drift apart."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated

from pydantic import Field, PlainValidator, WithJsonSchema

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


# -- reservations ----------------------------------------------------------------------------------

MAX_ID = 2**31 - 1  # ids are 32-bit in the database: a larger one is refused here, not by Postgres (a 500)
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ZONE_EXAMPLE = "2026-12-05T14:00:00+08:00"


def parse_zoned_time(value: object) -> datetime:
    """An ISO-8601 time that carries its zone offset, as UTC. A time without an offset is refused
    by name: the server will not guess whose 14:00 it is."""
    if not isinstance(value, str) or not 1 <= len(value) <= 40:
        raise ValueError(f"must be an ISO-8601 time with its zone offset, e.g. {ZONE_EXAMPLE}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"is not an ISO-8601 time; send e.g. {ZONE_EXAMPLE}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"has no zone offset; send the store's time with +08:00, e.g. {ZONE_EXAMPLE}")
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("is out of range") from None


def parse_day(value: object) -> date:
    """A calendar day as YYYY-MM-DD (the store's day)."""
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be a day as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a day as YYYY-MM-DD") from None


ZonedTime = Annotated[datetime, PlainValidator(parse_zoned_time), WithJsonSchema({
    "type": "string", "format": "date-time", "maxLength": 40,
    "description": f"ISO-8601 with the zone offset (the store's is +08:00), e.g. {ZONE_EXAMPLE}"})]
Day = Annotated[date, PlainValidator(parse_day), WithJsonSchema({
    "type": "string", "format": "date", "description": "the store's calendar day, YYYY-MM-DD"})]


class BookRequest(Shape):
    """POST /bookings: one start time of a service (as listed by /services/{id}/slots)."""

    service_id: Id
    starts_at: ZonedTime
    resource_id: Annotated[Id | None, Field(description="a particular staff member, station or room; "
                                                        "omitted: the first with room")] = None


class RescheduleRequest(Shape):
    starts_at: ZonedTime


class CancelRequest(Shape):
    reason: Annotated[StoredText, Field(max_length=200, description="why, in the shopper's words")] = ""


class WaitlistRequest(Shape):
    """POST /waitlist: a full start time of a service."""

    service_id: Id
    starts_at: ZonedTime


class HoldRequest(Shape):
    """POST /holds: one unit of a variant, kept until the end of the visit day."""

    variant_id: Id
    visit_day: Day


class ConsentRequest(Shape):
    """What wx.requestSubscribeMessage answered: the template ids the shopper accepted."""

    accepted: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]],
                        Field(max_length=20, description="template ids answered \"accept\"")]
    source: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-.:]{0,32}$",
                                 description="the page that showed the popup")] = "mp"
