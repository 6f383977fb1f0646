"""Hardened XML parsing for pushes (reference §11.1).

No DTDs, no entities, no external references, bounded depth, UTF-8 only (the body size is capped
by the webhook before it gets here). Duplicated elements are refused rather than silently picking
one, so two parsers can never disagree about what a message says; so is text mixed with elements,
which WeChat never sends.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from wx_service.protocol.errors import MalformedXml

MAX_DEPTH = 6
LIST_TAGS = ("item", "List")  # the only elements WeChat repeats
_BOM = b"\xef\xbb\xbf"
_DECLARED_ENCODING = re.compile(rb"""\A\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
# The safe-mode envelope exactly as WeChat writes it: <xml>, ToUserName, Encrypt, </xml>, each value
# in CDATA, whitespace only between elements. The value classes exclude '<', '&', ']' and anything
# outside ASCII, so a body this matches cannot hold a DTD, an entity, a comment, a processing
# instruction, a duplicate, deeper nesting or a non-UTF-8 byte, and it is well-formed XML whose
# parse_xml result is exactly these two fields. The classes are disjoint from the delimiters, so
# matching is linear in the body's length.
_WS = rb"[ \t\r\n]*"
_SAFE_ENVELOPE = re.compile(
    _WS + rb"<xml>" + _WS
    + rb"<ToUserName><!\[CDATA\[([A-Za-z0-9_@.\-]{1,64})\]\]></ToUserName>" + _WS
    + rb"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]+)\]\]></Encrypt>" + _WS
    + rb"</xml>" + _WS)


def _to_value(element: ET.Element, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise MalformedXml("XML nested too deeply")
    children = list(element)
    if not children:
        # Whitespace around CDATA is tolerated (official card samples have it, reference §3.1).
        return (element.text or "").strip()
    if (element.text or "").strip() or any((child.tail or "").strip() for child in children):
        raise MalformedXml(f"<{element.tag}> mixes text and elements")
    # Repeated children are lists only where WeChat sends lists (item, List).
    result: dict[str, Any] = {}
    for child in children:
        value = _to_value(child, depth + 1)
        if child.tag in result:
            if child.tag not in LIST_TAGS:
                raise MalformedXml(f"element <{child.tag}> appears twice")
            existing = result[child.tag]
            if not isinstance(existing, list):
                result[child.tag] = [existing]
            result[child.tag].append(value)
        else:
            result[child.tag] = value
    return result


def _check_encoding(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedXml("body is not UTF-8") from exc
    if b"\x00" in body:
        # Valid UTF-8 but never valid XML; UTF-16/32 without a BOM looks like this, and expat would
        # otherwise guess that encoding from the first bytes.
        raise MalformedXml("body is not UTF-8 (NUL bytes)")
    declared = _DECLARED_ENCODING.match(body[len(_BOM):] if body.startswith(_BOM) else body)
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise MalformedXml("only UTF-8 is accepted")


def parse_xml(body: bytes) -> dict[str, Any]:
    """Parse a push body into a dict of the root's children (CDATA and whitespace stripped)."""
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("parse_xml takes the raw body bytes")
    body = bytes(body)
    _check_encoding(body)
    # A DTD can only come before the root element; the parser refuses one as well (forbid_dtd), this
    # only makes the refusal cheap. Looking at the prolog alone lets a shopper type "<!DOCTYPE" in
    # a text message without the whole push being refused.
    prolog = body.split(b"<xml", 1)[0]
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise MalformedXml("DTDs and entities are not accepted")
    try:
        # encoding="utf-8" overrides both the XML declaration and expat's own guessing.
        parser = DefusedXMLParser(target=ET.TreeBuilder(), encoding="utf-8",
                                  forbid_dtd=True, forbid_entities=True, forbid_external=True)
        parser.feed(body)
        root = parser.close()
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise MalformedXml(f"not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise MalformedXml("root element must be <xml>")
    value = _to_value(root, 1)
    if not isinstance(value, dict):
        raise MalformedXml("<xml> has no fields")
    return value


def parse_envelope(body: bytes) -> dict[str, Any]:
    """The outer body of an encrypted push: WeChat's canonical safe-mode envelope is read with one
    regular expression (a full match proves it is the plain two-field document parse_xml would
    return); anything else (compatible mode's clear copy, another layout, hostile XML) goes through
    the hardened parser. Saves a full XML parse per push on the common path."""
    if isinstance(body, (bytes, bytearray)):
        found = _SAFE_ENVELOPE.fullmatch(body)
        if found is not None:
            return {"ToUserName": found.group(1).decode("ascii"), "Encrypt": found.group(2).decode("ascii")}
    return parse_xml(body)
