"""Hardened XML parsing for pushes (reference §11.1).

No DTDs, no entities, no external references, bounded size and depth, UTF-8 only. Duplicated
elements are refused rather than silently picking one, so two parsers can never disagree about
what a message says.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from wx_service.protocol.errors import MalformedXml

MAX_DEPTH = 6


def _to_value(element: ET.Element, depth: int) -> Any:
    children = list(element)
    if depth > MAX_DEPTH:
        raise MalformedXml("XML nested too deeply")
    if not children:
        return (element.text or "").strip()
    # Repeated children are lists only where WeChat sends lists (item, List).
    result: dict[str, Any] = {}
    for child in children:
        value = _to_value(child, depth + 1)
        if child.tag in result:
            if child.tag not in ("item", "List"):
                raise MalformedXml(f"element <{child.tag}> appears twice")
            existing = result[child.tag]
            if not isinstance(existing, list):
                result[child.tag] = [existing]
            result[child.tag].append(value)
        else:
            result[child.tag] = value
    return result


def parse_xml(body: bytes) -> dict[str, Any]:
    """Parse a push body into a dict of the root's children (CDATA and whitespace stripped)."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedXml("DTDs and entities are not accepted")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedXml("body is not UTF-8") from exc
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise MalformedXml(f"not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise MalformedXml("root element must be <xml>")
    value = _to_value(root, 1)
    if not isinstance(value, dict):
        raise MalformedXml("<xml> has no fields")
    return value
