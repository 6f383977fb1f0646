"""The OpenAPI 3.1 description of the mini-program API, served at /api/mp/openapi.json.

A Python dict rather than a YAML file: no new dependency, and the tests validate both the
document (openapi-spec-validator) and real responses against its schemas (jsonschema), so it
cannot drift from the code unnoticed. Request bodies are not written here at all: their schemas
are generated from the pydantic shapes the views parse them into (mp_bodies).
"""
from __future__ import annotations

from typing import Any

from wx_service.edges.api.mp_bodies import CodeRequest, PayOrderRequest, request_schema


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
        "field": {"type": "string", "description": "for a malformed body: the path of the wrong field"}}},
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
                            "read the membership, and pay with WeChat Pay (JSAPI). Money is integer fen; times are ISO-8601 UTC."},
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
