"""Passive replies (reference §3.5), rendered by wechatpy, with WeChat's limits enforced here."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from wechatpy.replies import ArticlesReply, ImageReply, TransferCustomerServiceReply

# WeChat allows one article in reply to a user's message and up to eight for events.
MAX_ARTICLES_FOR_MESSAGE = 1
MAX_ARTICLES_FOR_EVENT = 8
SUCCESS = b"success"


# Characters XML 1.0 forbids even inside CDATA; one of them would make WeChat refuse the whole reply.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def cdata_safe(value: str) -> str:
    """Split any `]]>` so user-supplied text cannot close the CDATA section wechatpy writes, and
    drop the characters XML cannot carry at all."""
    return _XML_ILLEGAL.sub("", value).replace("]]>", "]]]]><![CDATA[>")


# wechatpy's TextReply.render() output, byte for byte (its field order), as one format string: the
# text reply is the hot path's answer, and wechatpy builds it through descriptors and per-field
# templates. Every value is passed through cdata_safe first, exactly as for wechatpy.
_TEXT_XML = ("<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[{content}]]></Content>\n"
             "<FromUserName><![CDATA[{source}]]></FromUserName>\n<ToUserName><![CDATA[{target}]]></ToUserName>\n"
             "<CreateTime>{time}</CreateTime>\n</xml>")


class ReplyTooLarge(ValueError):
    """A reply that WeChat would refuse, caught before it is sent."""


@dataclass(frozen=True)
class Article:
    title: str
    description: str = ""
    url: str = ""
    image: str = ""

    def as_wechat(self) -> dict[str, str]:
        return {
            "title": cdata_safe(self.title),
            "description": cdata_safe(self.description),
            "url": cdata_safe(self.url),
            "image": cdata_safe(self.image),
        }

    def as_custom_message(self) -> dict[str, str]:
        return {"title": self.title, "description": self.description, "url": self.url, "picurl": self.image}


@dataclass(frozen=True)
class Reply:
    """What a handler answers. `render` turns it into WeChat's XML for one push."""

    kind: str  # text | image | news | transfer_customer_service
    text: str = ""
    media_id: str = ""
    articles: tuple[Article, ...] = field(default_factory=tuple)
    kf_account: str = ""

    def render(self, to_openid: str, from_account: str, in_reply_to_message: bool, now: int | None = None) -> str:
        # The ids come from the push; in plaintext mode its body is not signed (reference §11.2).
        common = {"target": cdata_safe(to_openid), "source": cdata_safe(from_account),
                  "time": int(time.time()) if now is None else int(now)}
        if self.kind == "text":
            return _TEXT_XML.format(content=cdata_safe(self.text), **common)
        if self.kind == "image":
            return ImageReply(media_id=cdata_safe(self.media_id), **common).render()
        if self.kind == "news":
            limit = MAX_ARTICLES_FOR_MESSAGE if in_reply_to_message else MAX_ARTICLES_FOR_EVENT
            if not self.articles:
                raise ReplyTooLarge("a news reply needs at least one article")
            if len(self.articles) > limit:
                raise ReplyTooLarge(f"{len(self.articles)} articles; WeChat allows {limit} here")
            return ArticlesReply(articles=[a.as_wechat() for a in self.articles], **common).render()
        if self.kind == "transfer_customer_service":
            xml = TransferCustomerServiceReply(**common).render()
            if self.kf_account:
                # Before the closing tag of the document, not any "</xml>" inside a CDATA value.
                head, _, tail = xml.rpartition("</xml>")
                trans_info = f"<TransInfo><KfAccount><![CDATA[{cdata_safe(self.kf_account)}]]></KfAccount></TransInfo>"
                xml = f"{head}{trans_info}\n</xml>{tail}"
            return xml
        raise ValueError(f"unknown reply kind {self.kind!r}")


def parse_reply(fields: dict[str, Any]) -> Reply | None:
    """The reply in a rendered passive reply's fields: the inverse of Reply.render, for a recorded
    reply that has to be sent again another way (by customer service, when WeChat dropped the
    attempt that carried it). None for anything that is not a reply this module renders."""
    kind = fields.get("MsgType")
    if kind == "text" and isinstance(fields.get("Content"), str):
        return text(fields["Content"])
    if kind == "image" and isinstance(fields.get("Image"), dict) and isinstance(fields["Image"].get("MediaId"), str):
        return image(fields["Image"]["MediaId"])
    if kind == "news" and isinstance(fields.get("Articles"), dict):
        items = fields["Articles"].get("item")
        items = items if isinstance(items, list) else [items]
        articles = [Article(title=_text_of(item, "Title"), description=_text_of(item, "Description"),
                            url=_text_of(item, "Url"), image=_text_of(item, "PicUrl"))
                    for item in items if isinstance(item, dict)]
        return news(*articles) if articles else None
    if kind == "transfer_customer_service":
        info = fields.get("TransInfo")
        account = _text_of(info, "KfAccount") if isinstance(info, dict) else ""
        return transfer_to_customer_service(account)
    return None


def _text_of(item: dict[str, Any], name: str) -> str:
    value = item.get(name, "")
    return value if isinstance(value, str) else ""


def text(content: str) -> Reply:
    return Reply(kind="text", text=content)


def image(media_id: str) -> Reply:
    return Reply(kind="image", media_id=media_id)


def news(*articles: Article) -> Reply:
    return Reply(kind="news", articles=tuple(articles))


def transfer_to_customer_service(kf_account: str = "") -> Reply:
    return Reply(kind="transfer_customer_service", kf_account=kf_account)
