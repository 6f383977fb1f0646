"""Building blocks for the reservation-notice tests: an emulated shopper who is a member (the
mini-program's openid and the OA's, linked by unionid), consents granted on the phone and reported
to the service, and what reached the shopper's chat."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from members import consents
from members.identity import MP, OA, resolve_member
from reservations.models import Notice
from tests.integration.reservation_helpers import uow
from wx_service.edges.emulator.shopper import ShopperClient


@dataclass(frozen=True)
class Shopper:
    oa: str  # the OA openid: template messages go here, and the emulator's chat is keyed by it
    mp: str  # the mini-program openid: bookings from the mini-program carry it


def shopper(app, emulator, n: int = 0, *, follows: bool = True, member: bool = True) -> Shopper:
    """The n-th emulated shopper; following the OA, and a member known by both openids."""
    emu = list(emulator.shoppers.values())[n]
    emu.subscribed = follows
    if member:
        with uow(app):
            resolve_member(MP, emu.mp_openid, emu.unionid)
            resolve_member(OA, emu.openid, emu.unionid)
    return Shopper(oa=emu.openid, mp=emu.mp_openid)


def subscribe_template(app) -> str:
    return app.extensions["wx"].settings.RESERVATION_SUBSCRIBE_TEMPLATE_ID


def grant_consents(app, emulator, who: Shopper, count: int, *, report: bool = True) -> None:
    """The shopper accepts the reservation template `count` times in the mini-program's popup;
    with `report`, the mini-program tells the service (as POST /api/mp/subscribe-consents does)."""
    template = subscribe_template(app)
    with app.app_context():
        for _ in range(count):
            ShopperClient(emulator).request_subscribe_message(who.mp, {template: "accept"})
    if report:
        with uow(app):
            consents.record_grants(who.mp, [template] * count)


def ledger_remaining(app, openid: str) -> int:
    with uow(app):
        return consents.remaining(openid, subscribe_template(app))


def wechat_remaining(app, emulator, who: Shopper) -> int:
    return emulator.shoppers[who.oa].subscribe_consents.get(subscribe_template(app), 0)


def notices_in_chat(emulator, who: Shopper) -> list[dict[str, Any]]:
    """The reservation messages the shopper sees: subscribe messages and template messages."""
    return [line for line in emulator.shoppers[who.oa].chat if line["via"] in ("subscribe", "template")]


def notice_rows(app) -> list[Notice]:
    with uow(app) as session:
        rows = list(session.scalars(select(Notice).order_by(Notice.id)))
        session.expunge_all()
        return rows
