"""The OpenAPI 3.1 description of the mini-program API, served at /api/mp/openapi.json.

A Python dict rather than a YAML file: no new dependency, and the tests validate both the
document (openapi-spec-validator) and real responses against its schemas (jsonschema), so it
cannot drift from the code unnoticed. Request bodies are not written here at all: their schemas
are generated from the pydantic shapes the views parse them into (mp_bodies).
"""
from __future__ import annotations

from typing import Any

from wx_service.edges.api.mp_bodies import (
    BookRequest,
    CancelRequest,
    CodeRequest,
    ConsentRequest,
    HoldRequest,
    PayOrderRequest,
    RescheduleRequest,
    WaitlistRequest,
    request_schema,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Malformed body or parameters, or an invalid/used WeChat code (error=invalid_code)",
            401: "Missing, invalid or expired session token",
            404: "Not found (for /card/add-params: the member card has not been pushed yet; for "
                 "/pay/orders/{out_trade_no}: no such order of this buyer)",
            409: "The phone number belongs to another WeChat user's membership",
            429: "WeChat's per-user rate limit (45011)",
            502: "WeChat failed or did not answer in 5 seconds (for /pay/orders: WeChat Pay refused "
                 "the order, error=payment_refused; the order is closed)",
            503: "WeChat Pay did not answer clearly (error=payment_unavailable): the order, if any "
                 "(out_trade_no), stays unpaid and is settled by the server; try again"}
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


_TIME = {"type": "string", "format": "date-time", "description": "ISO-8601, UTC, with offset"}
_FEN = {"type": "integer", "description": "money in fen (1/100 yuan)"}
_CODE_BODY = {"required": True, "content": {"application/json": {"schema": _ref("CodeRequest")}}}
_AUTH = [{"bearer": []}]

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "message"], "properties": {
        "error": {"type": "string", "description": "machine-readable code"},
        "message": {"type": "string", "description": "for people"},
        "wechat_errcode": _nullable({"type": "integer"}),
        "out_trade_no": {"type": "string", "description": "the order concerned, for payment errors"},
        "field": {"type": "string", "description": "for a malformed body: the path of the wrong field"},
        "can_join_waitlist": {"type": "boolean",
                              "description": "with error=full: the time is full, POST /waitlist to wait for it"}}},
    "LevelRef": {"type": "object", "required": ["code", "name"], "additionalProperties": False, "properties": {
        "code": {"type": "string"}, "name": {"type": "string"}}},
    "Level": {"type": "object", "additionalProperties": False,
              "required": ["code", "name", "min_spend_fen", "points_multiplier", "benefits"], "properties": {
                  "code": {"type": "string"}, "name": {"type": "string"},
                  "min_spend_fen": {**_FEN, "description": "12-month spend at which the level starts, fen"},
                  "points_multiplier": {"type": "number"},
                  "benefits": {"type": "array", "items": {"type": "string"}}}},
    "Member": {"type": "object", "additionalProperties": False, "required": [
        "id", "name", "phone_masked", "has_phone", "birthday", "joined_at", "level", "points_balance", "card_code"],
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"},
            "phone_masked": _nullable({"type": "string", "description": "e.g. 138****8000"}),
            "has_phone": {"type": "boolean"},
            "birthday": _nullable({"type": "string", "format": "date"}),
            "joined_at": _TIME, "level": _ref("LevelRef"),
            "points_balance": {"type": "integer", "minimum": 0},
            "card_code": _nullable({"type": "string", "description": "the WeChat member card's code"})}},
    "LoginResult": {"type": "object", "additionalProperties": False, "required": ["token", "expires_in", "member"],
                    "properties": {
                        "token": {"type": "string", "description": "send as Authorization: Bearer <token>"},
                        "expires_in": {"type": "integer", "description": "seconds"},
                        "member": _ref("Member")}},
    "MemberResult": {"type": "object", "additionalProperties": False, "required": ["member"],
                     "properties": {"member": _ref("Member")}},
    "LevelProgress": {"type": "object", "additionalProperties": False, "required": [
        "level", "spend_fen_12_months", "next_level", "fen_to_next", "benefits"], "properties": {
            "level": _ref("Level"),
            "spend_fen_12_months": {**_FEN, "minimum": 0, "description": "net spend in the last 12 months, fen"},
            "next_level": _nullable(_ref("Level")),
            "fen_to_next": {**_FEN, "minimum": 0, "description": "spend still needed for the next level; 0 at the top"},
            "benefits": {"type": "array", "items": {"type": "string"}}}},
    "PointsEntry": {"type": "object", "additionalProperties": False, "required": [
        "id", "delta", "balance_after", "reason", "note", "created_at"], "properties": {
            "id": {"type": "integer"}, "delta": {"type": "integer"}, "balance_after": {"type": "integer", "minimum": 0},
            "reason": {"type": "string", "enum": ["payment", "refund", "promotion", "redemption", "staff_adjustment",
                                                  "expiry", "merge_in", "merge_out"]},
            "note": {"type": "string"}, "created_at": _TIME}},
    "PointsPage": {"type": "object", "additionalProperties": False, "required": [
        "page", "per_page", "total", "balance", "entries"], "properties": {
            "page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
            "total": {"type": "integer", "minimum": 0, "description": "entries in all pages"},
            "balance": {"type": "integer", "minimum": 0},
            "entries": {"type": "array", "items": _ref("PointsEntry"), "description": "newest first"}}},
    "Coupon": {"type": "object", "additionalProperties": False, "required": [
        "code", "kind", "title", "value_fen", "issued_at", "expires_at"], "properties": {
            "code": {"type": "string", "description": "shown at the counter to redeem"},
            "kind": {"type": "string"}, "title": {"type": "string"}, "value_fen": _FEN,
            "issued_at": _TIME, "expires_at": _TIME}},
    "CardAddParams": {"type": "object", "additionalProperties": False, "required": ["card_list"], "properties": {
        "card_list": {"type": "array", "description": "pass as cardList to wx.addCard", "items": {
            "type": "object", "additionalProperties": False, "required": ["cardId", "cardExt"], "properties": {
                "cardId": {"type": "string"},
                "cardExt": {"type": "string", "description": "JSON: timestamp, nonce_str, signature"}}}}}},
    # Request bodies: generated from the shapes the views parse them into (mp_bodies).
    "CodeRequest": request_schema(CodeRequest),
    "PayOrderRequest": request_schema(PayOrderRequest),
    "PayOrder": {"type": "object", "additionalProperties": False, "required": [
        "out_trade_no", "state", "paid", "amount_fen", "description", "created_at", "expires_at", "paid_at",
        "points_awarded"], "properties": {
            "out_trade_no": {"type": "string", "maxLength": 32},
            "state": {"type": "string", "enum": ["CREATED", "USERPAYING", "PAYERROR", "PAID", "PARTIALLY_REFUNDED",
                                                 "REFUNDED", "CLOSED", "REVERSED"],
                      "description": "PAID once WeChat Pay's notification (or a query) confirmed the payment"},
            "paid": {"type": "boolean", "description": "true for PAID and (partially) refunded orders"},
            "amount_fen": _FEN, "description": {"type": "string"},
            "created_at": _TIME, "expires_at": _nullable(_TIME), "paid_at": _nullable(_TIME),
            "points_awarded": _nullable({"type": "integer", "description": "points the member got for it"})}},
    "PayParams": {"type": "object", "additionalProperties": False, "required": [
        "appId", "timeStamp", "nonceStr", "package", "signType", "paySign"],
        "description": "pass timeStamp, nonceStr, package, signType and paySign to wx.requestPayment "
                       "(appId is for WeixinJSBridge); paySign is SHA256withRSA over "
                       "appId\\ntimeStamp\\nnonceStr\\npackage\\n with the merchant key",
        "properties": {
            "appId": {"type": "string"}, "timeStamp": {"type": "string", "pattern": "^[0-9]+$"},
            "nonceStr": {"type": "string"}, "package": {"type": "string", "pattern": "^prepay_id=.+"},
            "signType": {"const": "RSA"}, "paySign": {"type": "string"}}},
    "PayOrderCreated": {"type": "object", "additionalProperties": False, "required": ["order", "pay_params"],
                        "properties": {"order": _ref("PayOrder"), "pay_params": _ref("PayParams")}},
    "PayOrderResult": {"type": "object", "additionalProperties": False, "required": ["order"],
                       "properties": {"order": _ref("PayOrder")}},
    "CouponList": {"type": "object", "additionalProperties": False, "required": ["coupons"], "properties": {
        "coupons": {"type": "array", "items": _ref("Coupon"), "description": "usable ones, soonest to expire first"}}},
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Department store mini-program API", "version": "1.0.0",
             "description": "Log in with wx.login's code, bind the phone from the getPhoneNumber button, "
                            "read the membership, pay with WeChat Pay (JSAPI), and reserve services and goods. "
                            "Money is integer fen; times are ISO-8601 with their offset: UTC for the membership "
                            "and payments, the store's +08:00 for reservations."},
    "servers": [{"url": "/api/mp"}],
    "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
        "type": "http", "scheme": "bearer", "description": "the opaque token returned by POST /login"}}},
    "paths": {
        "/login": {"post": {
            "operationId": "login", "summary": "Exchange wx.login's code for a session", "security": [],
            "requestBody": _CODE_BODY,
            "responses": {"200": _json(_ref("LoginResult"), "Logged in"), **_errors(400, 429, 502)}}},
        "/phone": {"post": {
            "operationId": "bindPhone", "summary": "Bind the phone number from the getPhoneNumber button",
            "security": _AUTH, "requestBody": _CODE_BODY,
            "responses": {"200": _json(_ref("MemberResult"), "Bound (duplicate memberships merged)"),
                          **_errors(400, 401, 409, 429, 502)}}},
        "/profile": {"get": {
            "operationId": "profile", "summary": "The member", "security": _AUTH,
            "responses": {"200": _json(_ref("MemberResult"), "The member"), **_errors(401)}}},
        "/level-progress": {"get": {
            "operationId": "levelProgress", "summary": "Level, 12-month spend and the way to the next level",
            "security": _AUTH,
            "responses": {"200": _json(_ref("LevelProgress"), "Progress"), **_errors(401)}}},
        "/points": {"get": {
            "operationId": "points", "summary": "Points history, newest first", "security": _AUTH,
            "parameters": [
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                {"name": "per_page", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}],
            "responses": {"200": _json(_ref("PointsPage"), "One page"), **_errors(400, 401)}}},
        "/coupons": {"get": {
            "operationId": "coupons", "summary": "Usable coupons", "security": _AUTH,
            "responses": {"200": _json(_ref("CouponList"), "Coupons"), **_errors(401)}}},
        "/card/add-params": {"get": {
            "operationId": "cardAddParams", "summary": "Parameters for wx.addCard to claim the member card",
            "security": _AUTH,
            "responses": {"200": _json(_ref("CardAddParams"), "Signed card parameters"), **_errors(401, 404, 502)}}},
        "/pay/orders": {"post": {
            "operationId": "createPayOrder", "summary": "A WeChat Pay (JSAPI) order and wx.requestPayment's parameters",
            "security": _AUTH,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PayOrderRequest")}}},
            "responses": {"201": _json(_ref("PayOrderCreated"), "Order placed at WeChat Pay; call wx.requestPayment"),
                          **_errors(400, 401, 502, 503)}}},
        "/pay/orders/{out_trade_no}": {"get": {
            "operationId": "payOrder", "summary": "The buyer's order state (poll after wx.requestPayment)",
            "security": _AUTH,
            "parameters": [{"name": "out_trade_no", "in": "path", "required": True,
                            "schema": {"type": "string", "maxLength": 32}}],
            "responses": {"200": _json(_ref("PayOrderResult"), "The order"), **_errors(401, 404)}}},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    },
}


# -- reservations (issue 11) -------------------------------------------------------------------------
# Times are the store's wall clock with its offset (+08:00); sending one without an offset is a 400.

_STORE_TIME = {"type": "string", "format": "date-time", "pattern": r"\+08:00$",
               "description": "ISO-8601 in the store's zone, e.g. 2026-12-05T14:00:00+08:00"}
_ID_PARAM = {"type": "integer", "minimum": 1}
_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": True,
                "description": "made once per tap (e.g. a UUID) and sent again on a retry: the retry answers "
                               "the first result with 200 instead of making a second one",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_\\-:.]{1,64}$"}}

_RESERVATION_ERRORS = {
    400: "Malformed body, query or header (error=bad_request, idempotency_key_required), or a time without "
         "its zone offset (error=bad_time, field=starts_at)",
    401: "Missing, invalid or expired session token",
    404: "No such service, resource, booking, place or hold of this shopper (error=not_found); someone "
         "else's id is answered the same way and changes nothing",
    409: "Refused as things stand: full (the time is full; can_join_waitlist), sold_out (every unit is "
         "held), limit_reached (too many open bookings), too_late (inside the cut-off before the start), "
         "not_allowed (not from its current status)",
    422: "A well-formed time the service does not offer (error=bad_time: past, inside the lead time, beyond "
         "the horizon, outside the counter's hours, off the grid), or an Idempotency-Key reused for "
         "something else (error=idempotency_key_reused)",
}


def _rerrors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ref("Error"), _RESERVATION_ERRORS[s]) for s in statuses}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID_PARAM}


def _body_of(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


_PNG = {"description": "The visit code as a QR image, for the counter to scan",
        "content": {"image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}}}


def _obj(required: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": required}


RESERVATION_SCHEMAS: dict[str, Any] = {
    "Service": _obj({
        "id": {"type": "integer"}, "code": {"type": "string"}, "name": {"type": "string"},
        "counter": {"type": "string", "description": "the counter's code"},
        "duration_minutes": {"type": "integer", "minimum": 1}, "description": {"type": "string"},
        "lead_minutes": {"type": "integer", "description": "booked at least this long ahead"},
        "horizon_days": {"type": "integer", "description": "booked at most this many days ahead"}}),
    "ServiceList": _obj({
        "services": {"type": "array", "items": _ref("Service")},
        "subscribe_template_ids": {"type": "array", "items": {"type": "string"},
                                   "description": "pass as tmplIds to wx.requestSubscribeMessage before booking, "
                                                  "then report the answer to POST /subscribe-consents"}}),
    "Slot": _obj({
        "starts_at": _STORE_TIME, "ends_at": _STORE_TIME,
        "capacity": {"type": "integer", "minimum": 0}, "free": {"type": "integer", "minimum": 0},
        "waiting": {"type": "integer", "minimum": 0, "description": "shoppers on its waiting list"},
        "can_book": {"type": "boolean"}, "can_join_waitlist": {"type": "boolean"}}),
    "SlotList": _obj({
        "service": _ref("Service"), "day": {"type": "string", "format": "date"},
        "slots": {"type": "array", "items": _ref("Slot"), "description": "bookable now, earliest first"}}),
    "Resource": _obj({"id": {"type": "integer"}, "name": {"type": "string"},
                      "kind": {"type": "string", "description": "staff, station or room"}}),
    "Booking": _obj({
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["requested", "booked", "checked_in", "cancelled", "no_show",
                                              "rescheduled"],
                   "description": "requested: waits for the counter to confirm (after repeated no-shows)"},
        "service": _ref("Service"), "resource": _nullable(_ref("Resource")),
        "starts_at": _STORE_TIME, "ends_at": _STORE_TIME,
        "visit_code": _nullable({"type": "string", "pattern": "^B", "description": "shown at the counter"}),
        "qr_url": {"type": "string", "description": "GET with the bearer token: the visit code as a QR"},
        "channel": {"type": "string"}, "previous_id": _nullable({"type": "integer",
                                                                 "description": "the booking this one moved from"}),
        "cancel_reason": {"type": "string"}, "created_at": _STORE_TIME,
        "change_until": {**_STORE_TIME, "description": "the shopper can cancel or move it until then"},
        "can_cancel": {"type": "boolean"}, "can_reschedule": {"type": "boolean"}}),
    "BookingResult": _obj({"booking": _ref("Booking")}),
    "WaitlistPlace": _obj({
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["waiting", "offered", "booked", "lapsed", "left"]},
        "service": _ref("Service"), "starts_at": _STORE_TIME,
        "position": {"type": "integer", "minimum": 0, "description": "1: next in line (0 when not waiting)"},
        "offered_until": _nullable({**_STORE_TIME, "description": "offered: accept before then"}),
        "booking_id": _nullable({"type": "integer"}), "created_at": _STORE_TIME}),
    "WaitlistResult": _obj({"place": _ref("WaitlistPlace")}),
    "Goods": _obj({
        "id": {"type": "integer"}, "counter": {"type": "string"}, "brand": {"type": "string"},
        "product": {"type": "string"}, "variant": {"type": "string", "description": "size / colour"},
        "available": {"type": "integer", "minimum": 0, "description": "units that can still be held"}}),
    "GoodsList": _obj({"goods": {"type": "array", "items": _ref("Goods")}}),
    "Hold": _obj({
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["held", "confirmed", "visited", "cancelled", "expired"]},
        "goods": _ref("Goods"), "visit_day": {"type": "string", "format": "date"},
        "expires_at": _STORE_TIME,
        "visit_code": _nullable({"type": "string", "pattern": "^H"}),
        "qr_url": {"type": "string"}, "created_at": _STORE_TIME, "can_cancel": {"type": "boolean"}}),
    "HoldResult": _obj({"hold": _ref("Hold")}),
    "MyReservations": _obj({
        "bookings": {"type": "array", "items": _ref("Booking"), "description": "open and checked in, soonest first"},
        "waitlist": {"type": "array", "items": _ref("WaitlistPlace")},
        "holds": {"type": "array", "items": _ref("Hold")}}),
    "ConsentResult": _obj({
        "recorded": {"type": "integer", "minimum": 0},
        "remaining": {"type": "integer", "minimum": 0,
                      "description": "unspent consents for the reservation template (one message each)"}}),
    "BookRequest": request_schema(BookRequest),
    "RescheduleRequest": request_schema(RescheduleRequest),
    "CancelRequest": request_schema(CancelRequest),
    "WaitlistRequest": request_schema(WaitlistRequest),
    "HoldRequest": request_schema(HoldRequest),
    "ConsentRequest": request_schema(ConsentRequest),
}

RESERVATION_PATHS: dict[str, Any] = {
    "/services": {"get": {
        "operationId": "services", "summary": "Services that can be booked", "security": _AUTH,
        "responses": {"200": _json(_ref("ServiceList"), "Services"), **_rerrors(401)}}},
    "/services/{service_id}/slots": {"get": {
        "operationId": "serviceSlots", "summary": "A store day's bookable start times with what is free",
        "security": _AUTH,
        "parameters": [_path_id("service_id"),
                       {"name": "day", "in": "query", "required": True,
                        "schema": {"type": "string", "format": "date"}, "description": "the store's day"}],
        "responses": {"200": _json(_ref("SlotList"), "Slots"), **_rerrors(400, 401, 404)}}},
    "/bookings": {
        "get": {"operationId": "myReservations", "summary": "My upcoming bookings, waiting-list places and holds",
                "security": _AUTH,
                "responses": {"200": _json(_ref("MyReservations"), "Mine"), **_rerrors(401)}},
        "post": {"operationId": "book", "summary": "Book a start time", "security": _AUTH,
                 "parameters": [_IDEMPOTENCY], "requestBody": _body_of("BookRequest"),
                 "responses": {"201": _json(_ref("BookingResult"), "Booked (status booked, or requested)"),
                               "200": _json(_ref("BookingResult"), "The same Idempotency-Key again: the first booking"),
                               **_rerrors(400, 401, 404, 409, 422)}}},
    "/bookings/{booking_id}": {"get": {
        "operationId": "booking", "summary": "One of my bookings", "security": _AUTH,
        "parameters": [_path_id("booking_id")],
        "responses": {"200": _json(_ref("BookingResult"), "The booking"), **_rerrors(401, 404)}}},
    "/bookings/{booking_id}/cancel": {"post": {
        "operationId": "cancelBooking", "summary": "Cancel, with a reason, before the cut-off", "security": _AUTH,
        "parameters": [_path_id("booking_id")], "requestBody": _body_of("CancelRequest"),
        "responses": {"200": _json(_ref("BookingResult"), "Cancelled"), **_rerrors(400, 401, 404, 409)}}},
    "/bookings/{booking_id}/reschedule": {"post": {
        "operationId": "rescheduleBooking", "summary": "Move to another start time (the new one is booked first)",
        "security": _AUTH, "parameters": [_path_id("booking_id"), _IDEMPOTENCY],
        "requestBody": _body_of("RescheduleRequest"),
        "responses": {"201": _json(_ref("BookingResult"), "The new booking (previous_id: the old one)"),
                      "200": _json(_ref("BookingResult"), "The same Idempotency-Key again: the same new booking"),
                      **_rerrors(400, 401, 404, 409, 422)}}},
    "/bookings/{booking_id}/qr.png": {"get": {
        "operationId": "bookingQr", "summary": "The booking's visit code as a QR image", "security": _AUTH,
        "parameters": [_path_id("booking_id")], "responses": {"200": _PNG, **_rerrors(401, 404)}}},
    "/waitlist": {"post": {
        "operationId": "joinWaitlist", "summary": "Wait for a full start time", "security": _AUTH,
        "requestBody": _body_of("WaitlistRequest"),
        "responses": {"201": _json(_ref("WaitlistResult"), "On the list"),
                      "200": _json(_ref("WaitlistResult"), "Already on it: the same place"),
                      **_rerrors(400, 401, 404, 409, 422)}}},
    "/waitlist/{entry_id}": {"delete": {
        "operationId": "leaveWaitlist", "summary": "Leave the waiting list", "security": _AUTH,
        "parameters": [_path_id("entry_id")],
        "responses": {"200": _json(_ref("WaitlistResult"), "Left"), **_rerrors(401, 404, 409)}}},
    "/waitlist/{entry_id}/accept": {"post": {
        "operationId": "acceptOffer", "summary": "Take the place the waiting list kept for me", "security": _AUTH,
        "parameters": [_path_id("entry_id"), _IDEMPOTENCY],
        "responses": {"201": _json(_ref("BookingResult"), "Booked"),
                      "200": _json(_ref("BookingResult"), "The same Idempotency-Key again: the same booking"),
                      **_rerrors(400, 401, 404, 409)}}},
    "/goods": {"get": {
        "operationId": "holdableGoods", "summary": "Goods that can be held for a try-on", "security": _AUTH,
        "parameters": [{"name": "counter", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                       {"name": "brand", "in": "query", "schema": {"type": "string", "maxLength": 64}}],
        "responses": {"200": _json(_ref("GoodsList"), "Goods"), **_rerrors(400, 401)}}},
    "/holds": {"post": {
        "operationId": "hold", "summary": "Hold one unit for a visit day", "security": _AUTH,
        "parameters": [_IDEMPOTENCY], "requestBody": _body_of("HoldRequest"),
        "responses": {"201": _json(_ref("HoldResult"), "Held until the end of the visit day"),
                      "200": _json(_ref("HoldResult"), "The same Idempotency-Key again: the first hold"),
                      **_rerrors(400, 401, 404, 409, 422)}}},
    "/holds/{hold_id}/cancel": {"post": {
        "operationId": "cancelHold", "summary": "Give a held unit back", "security": _AUTH,
        "parameters": [_path_id("hold_id")],
        "responses": {"200": _json(_ref("HoldResult"), "Cancelled"), **_rerrors(401, 404, 409)}}},
    "/holds/{hold_id}/qr.png": {"get": {
        "operationId": "holdQr", "summary": "The hold's visit code as a QR image", "security": _AUTH,
        "parameters": [_path_id("hold_id")], "responses": {"200": _PNG, **_rerrors(401, 404)}}},
    "/subscribe-consents": {"post": {
        "operationId": "subscribeConsents", "summary": "Record what wx.requestSubscribeMessage answered",
        "security": _AUTH, "requestBody": _body_of("ConsentRequest"),
        "responses": {"200": _json(_ref("ConsentResult"), "Recorded: one message per accept"),
                      **_rerrors(400, 401)}}},
}

SCHEMAS.update(RESERVATION_SCHEMAS)
SPEC["paths"].update(RESERVATION_PATHS)


# -- the store's content (issue 12) -----------------------------------------------------------------
# Read only, for any logged-in shopper. Times in the store's zone (+08:00); images as absolute URLs.

_CONTENT_ERRORS = {
    400: "A malformed query parameter (error=bad_request; field names it): not an integer in range, not a "
         "YYYY-MM-DD day, from after to, a cursor this API did not give out, cursor with offset",
    401: "Missing, invalid or expired session token",
    404: "No such brand or activity, or one that is not published now (error=not_found)",
}


def _cerrors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ref("Error"), _CONTENT_ERRORS[s]) for s in statuses}


def _example(schema_name: str, description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema_name),
                                                                          "example": example}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_URL = _nullable({"type": "string", "description": "absolute URL of the image"})
_CLOCK = _nullable({"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"})
_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "page size")
_OFFSET = _query("offset", {"type": "integer", "minimum": 0, "maximum": 100000, "default": 0}, "items to skip")
_BRAND_Q = _query("brand", _ID_PARAM, "a brand's id")
_STORE_Q = _query("store", _ID_PARAM, "a store's id")
_PAGE = {"total": {"type": "integer", "minimum": 0, "description": "items matching the filters, in all"},
         "limit": {"type": "integer", "minimum": 1}, "offset": {"type": "integer", "minimum": 0}}
_BRAND_REF = _obj({"id": {"type": "integer"}, "name": {"type": "string"}, "name_en": {"type": "string"}})
_PLACE = _nullable(_obj({"id": {"type": "integer"}, "name": {"type": "string"}, "address": {"type": "string"}}))

_ACTIVITY = {"id": {"type": "integer"}, "title": {"type": "string"}, "summary": {"type": "string"},
             "store_id": _nullable({"type": "integer"}), "place": {"type": "string"},
             "starts_at": _STORE_TIME, "ends_at": _STORE_TIME, "cover_url": _URL,
             "brands": {"type": "array", "items": _ref("BrandRef")}}
_BRAND = {"id": {"type": "integer"}, "name": {"type": "string"}, "name_en": {"type": "string"},
          "store_id": _nullable({"type": "integer"}), "floor": {"type": "string", "description": "e.g. 1F"},
          "counter": {"type": "string", "description": "the counter's code (what orders carry)"},
          "categories": {"type": "array", "items": {"type": "string"}}, "description": {"type": "string"},
          "logo_url": _URL}

_EX_BRAND = {"id": 3, "name": "兰蔻", "name_en": "Lancome", "store_id": 1, "floor": "1F", "counter": "LANCOME",
             "categories": ["美妆", "护肤"], "description": "法国高端护肤与彩妆",
             "logo_url": "https://mall.example.com/content/images/12"}
_EX_REF = {"id": 3, "name": "兰蔻", "name_en": "Lancome"}
_EX_ACTIVITY = {"id": 7, "title": "周末美妆节", "summary": "满 1000 减 100", "store_id": 1, "place": "一楼中庭",
                "starts_at": "2026-12-05T10:00:00+08:00", "ends_at": "2026-12-06T22:00:00+08:00",
                "cover_url": None, "brands": [_EX_REF]}
_EX_ARRIVAL = {"id": 11, "brand": _EX_REF, "product": "菁纯面霜 60ml", "description": "全新升级",
               "price_fen": 168000, "image_url": "https://mall.example.com/content/images/15",
               "published_at": "2026-12-01T10:00:00+08:00"}
_EX_DISCOUNT = {"id": 5, "title": "满 1000 减 100", "description": "", "brand": _EX_REF, "store_id": None,
                "valid_from": "2026-12-01", "valid_until": "2026-12-07", "image_url": None}
_EX_HOURS = {"day": "2026-12-03", "opens": "10:00", "closes": "23:30", "closed": False, "note": "夜场",
             "exceptional": True, "text": "10:00-23:30（夜场）"}
_EX_STORE = {"id": 1, "code": "FT", "name": "南山百货 福田店", "address": "深南大道 1 号", "phone": "0755-88888888",
             "latitude": 22.5333, "longitude": 114.055,
             "weekly_hours": {d: ["10:00", "22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
             "today": _EX_HOURS, "distance_km": 1.1}

CONTENT_SCHEMAS: dict[str, Any] = {
    "DayHours": _obj({
        "day": {"type": "string", "format": "date", "description": "the store's day"},
        "opens": _CLOCK, "closes": _CLOCK, "closed": {"type": "boolean"},
        "note": {"type": "string", "description": "why the hours differ today (a holiday, a late-night sale)"},
        "exceptional": {"type": "boolean", "description": "an exception overrides the weekly hours today"},
        "text": {"type": "string", "description": "for display, e.g. 10:00-22:00 or 休息（设备检修）"}}),
    "Store": _obj({
        "id": {"type": "integer"}, "code": {"type": "string"}, "name": {"type": "string"},
        "address": {"type": "string"}, "phone": {"type": "string"},
        "latitude": _nullable({"type": "number"}), "longitude": _nullable({"type": "number"}),
        "weekly_hours": {"type": "object", "description": "mon..sun: [opens, closes], or null when closed",
                         "additionalProperties": _nullable({"type": "array", "items": {"type": "string"},
                                                            "minItems": 2, "maxItems": 2})},
        "today": _ref("DayHours"),
        "distance_km": _nullable({"type": "number", "minimum": 0,
                                  "description": "from lat/lng when sent, 1 decimal; null otherwise"})}),
    "StoreList": _obj({"stores": {"type": "array", "items": _ref("Store")}}),
    "BrandRef": _BRAND_REF,
    "Brand": _obj(_BRAND),
    "BrandPage": _obj({"brands": {"type": "array", "items": _ref("Brand")}, "total": _PAGE["total"],
                       "limit": _PAGE["limit"],
                       "offset": _nullable({"type": "integer", "minimum": 0, "description": "null when paged by cursor"}),
                       "next_cursor": _nullable({"type": "string",
                                                 "description": "pass as cursor for the next page; null: the last"})}),
    "BrandDetail": _obj({**_BRAND, "store": _PLACE,
                         "new_arrivals": {"type": "array", "items": _ref("NewArrival"), "maxItems": 20},
                         "activities": {"type": "array", "items": _ref("Activity"), "maxItems": 20,
                                        "description": "not yet over, soonest first"},
                         "discounts": {"type": "array", "items": _ref("Discount"), "maxItems": 20,
                                       "description": "valid today"}}),
    "BrandResult": _obj({"brand": _ref("BrandDetail")}),
    "Activity": _obj(_ACTIVITY),
    "ActivityDetail": _obj({**_ACTIVITY, "body": {"type": "string"}, "store": _PLACE}),
    "ActivityPage": _obj({"activities": {"type": "array", "items": _ref("Activity")}, **_PAGE}),
    "ActivityResult": _obj({"activity": _ref("ActivityDetail")}),
    "NewArrival": _obj({
        "id": {"type": "integer"}, "brand": _nullable(_ref("BrandRef")), "product": {"type": "string"},
        "description": {"type": "string"}, "price_fen": _FEN, "image_url": _URL, "published_at": _STORE_TIME}),
    "NewArrivalPage": _obj({"new_arrivals": {"type": "array", "items": _ref("NewArrival")}, **_PAGE}),
    "Discount": _obj({
        "id": {"type": "integer"}, "title": {"type": "string"}, "description": {"type": "string"},
        "brand": _nullable({**_ref("BrandRef"), "description": "null: store-wide"}),
        "store_id": _nullable({"type": "integer"}),
        "valid_from": {"type": "string", "format": "date"}, "valid_until": {"type": "string", "format": "date"},
        "image_url": _URL}),
    "DiscountPage": _obj({"discounts": {"type": "array", "items": _ref("Discount")},
                          "day": {"type": "string", "format": "date", "description": "the day they are valid on"},
                          **_PAGE}),
}

CONTENT_PATHS: dict[str, Any] = {
    "/stores": {"get": {
        "operationId": "stores", "summary": "Stores with today's hours (nearest first given lat and lng)",
        "security": _AUTH,
        "parameters": [_query("lat", {"type": "number", "minimum": -90, "maximum": 90}, "WGS-84, with lng"),
                       _query("lng", {"type": "number", "minimum": -180, "maximum": 180}, "WGS-84, with lat")],
        "responses": {"200": _example("StoreList", "Stores", {"stores": [_EX_STORE]}), **_cerrors(400, 401)}}},
    "/brands": {"get": {
        "operationId": "brands", "summary": "Brands by name, filtered; paged by offset or by cursor",
        "security": _AUTH,
        "parameters": [_query("category", {"type": "string", "maxLength": 64}, "one of the brand's categories"),
                       _query("floor", {"type": "string", "maxLength": 64}, "e.g. 1F"), _STORE_Q, _LIMIT, _OFFSET,
                       _query("cursor", {"type": "string", "maxLength": 400},
                              "next_cursor of the previous page (not with offset)")],
        "responses": {"200": _example("BrandPage", "One page", {"brands": [_EX_BRAND], "total": 1, "limit": 20,
                                                                "offset": 0, "next_cursor": None}),
                      **_cerrors(400, 401)}}},
    "/brands/{brand_id}": {"get": {
        "operationId": "brand", "summary": "A brand with its new arrivals, current activities and today's discounts",
        "security": _AUTH, "parameters": [_path_id("brand_id")],
        "responses": {"200": _example("BrandResult", "The brand", {"brand": {
            **_EX_BRAND, "store": {"id": 1, "name": "南山百货 福田店", "address": "深南大道 1 号"},
            "new_arrivals": [_EX_ARRIVAL], "activities": [_EX_ACTIVITY], "discounts": [_EX_DISCOUNT]}}),
            **_cerrors(401, 404)}}},
    "/activities": {"get": {
        "operationId": "activities",
        "summary": "Published activities, soonest first: not yet over, or overlapping from..to",
        "security": _AUTH,
        "parameters": [_BRAND_Q, _STORE_Q,
                       _query("from", {"type": "string", "format": "date"}, "the store's first day (inclusive)"),
                       _query("to", {"type": "string", "format": "date"}, "the store's last day (inclusive)"),
                       _LIMIT, _OFFSET],
        "responses": {"200": _example("ActivityPage", "One page", {"activities": [_EX_ACTIVITY], "total": 1,
                                                                   "limit": 20, "offset": 0}),
                      **_cerrors(400, 401)}}},
    "/activities/{activity_id}": {"get": {
        "operationId": "activity", "summary": "One published activity with its text", "security": _AUTH,
        "parameters": [_path_id("activity_id")],
        "responses": {"200": _example("ActivityResult", "The activity", {"activity": {
            **_EX_ACTIVITY, "body": "活动期间全场满 1000 减 100。", "store": None}}), **_cerrors(401, 404)}}},
    "/new-arrivals": {"get": {
        "operationId": "newArrivals", "summary": "Published new arrivals, newest first", "security": _AUTH,
        "parameters": [_BRAND_Q, _LIMIT, _OFFSET],
        "responses": {"200": _example("NewArrivalPage", "One page", {"new_arrivals": [_EX_ARRIVAL], "total": 1,
                                                                     "limit": 20, "offset": 0}),
                      **_cerrors(400, 401)}}},
    "/discounts": {"get": {
        "operationId": "discounts", "summary": "Published discounts valid today (or on day), ending soonest first",
        "security": _AUTH,
        "parameters": [_BRAND_Q, _query("day", {"type": "string", "format": "date"}, "default: the store's today"),
                       _LIMIT, _OFFSET],
        "responses": {"200": _example("DiscountPage", "One page", {"discounts": [_EX_DISCOUNT], "day": "2026-12-03",
                                                                   "total": 1, "limit": 20, "offset": 0}),
                      **_cerrors(400, 401)}}},
}

SCHEMAS.update(CONTENT_SCHEMAS)
SPEC["paths"].update(CONTENT_PATHS)
# -- brand subscriptions (issue 12) ------------------------------------------------------------------

SUBSCRIPTION_SCHEMAS: dict[str, Any] = {
    "SubscribableBrand": _obj({
        "id": {"type": "integer"}, "name": {"type": "string"}, "name_en": {"type": "string"},
        "floor": {"type": "string"}, "subscribed": {"type": "boolean"}}),
    "BrandSubscriptions": _obj({
        "brands": {"type": "array", "items": _ref("SubscribableBrand"), "description": "every active brand, by name"},
        "subscribed": {"type": "array", "items": {"type": "integer"}, "description": "the ids the shopper follows"},
        "subscribe_template_ids": {"type": "array", "items": {"type": "string"},
                                   "description": "the brand-news subscribe template: ask for it with "
                                                  "wx.requestSubscribeMessage and report the answer to "
                                                  "POST /subscribe-consents (one message per accept)"},
        "consents_remaining": {"type": "integer", "minimum": 0}}),
    "SubscriptionChange": _obj({
        "brand": _ref("SubscribableBrand"),
        "changed": {"type": "boolean", "description": "false: it was so already (no ledger row written)"}}),
}

_SUBSCRIPTION_ERRORS = {401: "Missing, invalid or expired session token", 404: "No such active brand (error=not_found)"}


def _serrors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ref("Error"), _SUBSCRIPTION_ERRORS[s]) for s in statuses}


SUBSCRIPTION_PATHS: dict[str, Any] = {
    "/brand-subscriptions": {"get": {
        "operationId": "brandSubscriptions", "summary": "The brands, and which the shopper follows", "security": _AUTH,
        "responses": {"200": _json(_ref("BrandSubscriptions"), "Brands"), **_serrors(401)}}},
    "/brands/{brand_id}/subscription": {
        "put": {"operationId": "subscribeBrand", "summary": "Hear of the brand's new arrivals and events",
                "security": _AUTH, "parameters": [_path_id("brand_id")],
                "responses": {"200": _json(_ref("SubscriptionChange"), "Subscribed"), **_serrors(401, 404)}},
        "delete": {"operationId": "unsubscribeBrand", "summary": "Stop hearing of the brand",
                   "security": _AUTH, "parameters": [_path_id("brand_id")],
                   "responses": {"200": _json(_ref("SubscriptionChange"), "Unsubscribed"), **_serrors(401, 404)}}},
}

SCHEMAS.update(SUBSCRIPTION_SCHEMAS)
SPEC["paths"].update(SUBSCRIPTION_PATHS)
