"""The JSON bodies the console's pages send, as typed shapes: each view parses its body once
(wx_service.edges.bodies), and a wrong type or a missing field is a 400 that names it. Amounts arrive as the yuan staff typed
("128.00"); turning them into fen exactly is payments.money's job."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from wx_service.ground.validation import Shape

Yuan = Annotated[str, Field(max_length=32, description="yuan as typed, e.g. 128.00")]
Counter = Annotated[str, Field(max_length=64)]


class NativeOrderRequest(Shape):
    """POST /console/counter/api/orders: a QR code for the shopper to scan."""

    amount: Yuan
    description: Annotated[str, Field(max_length=127)] = ""
    counter: Counter | None = None


class ChargeRequest(Shape):
    """POST /console/cashier/api/charges: charge the payment code the till scanned."""

    amount: Yuan
    auth_code: Annotated[str, Field(max_length=64)]
    counter: Counter | None = None
    description: Annotated[str, Field(max_length=512)] | None = None  # the service keeps 127
