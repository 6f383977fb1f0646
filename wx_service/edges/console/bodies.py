"""The JSON bodies the console's pages send, as typed shapes: each view parses its body once
(wx_service.edges.bodies), and a wrong type or a missing field is a 400 that names it. Amounts arrive as the yuan staff typed
("128.00"); turning them into fen exactly is payments.money's job."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from wx_service.ground.validation import Shape, StoredText

Yuan = Annotated[str, Field(max_length=32, description="yuan as typed, e.g. 128.00")]
Counter = Annotated[str, Field(max_length=64)]
# The code on a shopper's reservation QR: B… a booking, H… a hold (reservations.capacity).
VisitCode = Annotated[str, Field(min_length=2, max_length=16, pattern=r"^\s*[BbHh][A-Za-z0-9]+\s*$")]


class NativeOrderRequest(Shape):
    """POST /console/counter/api/orders: a QR code for the shopper to scan."""

    amount: Yuan
    description: Annotated[StoredText, Field(max_length=127)] = ""
    counter: Counter | None = None
    # Paying after a reservation's visit: the order's source becomes `reservation:<code>` and the
    # reservation carries the order (wx_service.edges.console.reservations).
    reservation: VisitCode | None = None


class ChargeRequest(Shape):
    """POST /console/cashier/api/charges: charge the payment code the till scanned."""

    amount: Yuan
    auth_code: Annotated[str, Field(max_length=64)]
    counter: Counter | None = None
    description: Annotated[StoredText, Field(max_length=512)] | None = None  # the service keeps 127


# The desk (/console/api/desk/...). Text limits here only bound what is parsed; the desk's own
# limits (DESK_MAX_MESSAGE, the FAQ's) decide and say why, with nothing stored.
LongText = Annotated[StoredText, Field(max_length=20_000)]
ClientKey = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class DeskAnswer(Shape):
    """An answer (text) or its template-message fallback; `client_key` makes a double click one row."""

    body: LongText
    client_key: ClientKey | None = None


class DeskNote(Shape):
    body: LongText


class DeskTransfer(Shape):
    """To one agent or to a team's queue, with an optional private note for whoever gets it."""

    to_agent: int | None = None
    to_team: int | None = None
    note: LongText = ""


class DeskStatus(Shape):
    status: Annotated[str, Field(pattern=r"^(online|away)$")]


class DeskFaq(Shape):
    id: int | None = None
    question: Annotated[StoredText, Field(max_length=1000)]
    pattern: Annotated[StoredText, Field(max_length=2000)]
    is_regex: bool = False
    answer: LongText
    priority: int = 0
    active: bool = True


class DeskCanned(Shape):
    id: int | None = None
    shortcut: Annotated[StoredText, Field(max_length=200)]
    body: LongText
    shared: bool = False


# Reservations (/console/reservations/api/...).
class ReservationScan(Shape):
    """What the scanner typed: the visit code on the shopper's QR."""

    code: Annotated[str, Field(max_length=64)]


class ReservationDecline(Shape):
    reason: Annotated[StoredText, Field(max_length=500)] = ""


class VariantQuantity(Shape):
    holdable: int
