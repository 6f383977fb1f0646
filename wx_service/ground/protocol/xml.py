"""Hardened XML parsing for pushes (reference §11.1).

No DTDs, no entities, no external references, bounded depth, UTF-8 only (the body size is capped
by the webhook before it gets here). Duplicated elements are refused rather than silently picking
one, so two parsers can never disagree about what a message says; so is text mixed with elements,
which WeChat never sends.
"""
from __future__ import annotations

import re
from typing import Any
from xml.parsers import expat

from wx_service.ground.protocol.errors import MalformedXml

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


class _Node:
    """One element as the parser saw it: its tag, its direct character data (before, between and
    after its children, comments and processing instructions dropped as ElementTree drops them)
    and its children."""

    __slots__ = ("tag", "text", "children", "mixed")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.text: list[str] = []  # character data before the first child (ElementTree's .text)
        self.children: list[_Node] = []
        self.mixed = False  # non-blank character data after a child (a child's .tail)


class _TreeBuilder:
    """expat callbacks that build `_Node`s; the forbidding handlers are defusedxml's rules."""

    __slots__ = ("stack", "root")

    def __init__(self) -> None:
        self.stack: list[_Node] = []
        self.root: _Node | None = None

    def start(self, tag: str, _attrs: object) -> None:
        if "}" in tag:  # ElementTree's spelling of a namespaced name
            tag = "{" + tag
        node = _Node(tag)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, _tag: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        node = self.stack[-1]
        if not node.children:
            node.text.append(text)
        elif not node.mixed and text.strip():
            node.mixed = True

    @staticmethod
    def forbid_dtd(*_args: object) -> None:
        raise MalformedXml("DTDs and entities are not accepted")

    @staticmethod
    def forbid_external(*_args: object) -> None:
        raise MalformedXml("external references are not accepted")


def _parse_tree(body: bytes) -> _Node:
    """Parse with expat directly: as ElementTree's parser under defusedxml (namespaces processed,
    no DTD, no entity declarations, no external references), minus its per-element overhead."""
    builder = _TreeBuilder()
    # encoding="utf-8" overrides both the XML declaration and expat's own guessing; "}" turns on
    # namespace processing as ElementTree does (an unbound prefix is an error).
    parser = expat.ParserCreate("utf-8", "}")
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = builder.forbid_dtd
    parser.EntityDeclHandler = builder.forbid_dtd
    parser.UnparsedEntityDeclHandler = builder.forbid_dtd
    parser.ExternalEntityRefHandler = builder.forbid_external
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise MalformedXml(f"not well-formed XML: {expat.ErrorString(exc.code)}: line {exc.lineno}, "
                           f"column {exc.offset}") from exc
    except (ValueError, RecursionError) as exc:
        raise MalformedXml(f"not well-formed XML: {exc}") from exc
    if builder.root is None:
        raise MalformedXml("not well-formed XML: no element found")
    return builder.root


def _to_value(element: _Node, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise MalformedXml("XML nested too deeply")
    children = element.children
    text = "".join(element.text)
    if not children:
        # Whitespace around CDATA is tolerated (official card samples have it, reference §3.1).
        return text.strip()
    if text.strip() or element.mixed:
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
    root = _parse_tree(body)
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
