"""The one way an edge reads a JSON request body: parsed once into its typed shape
(wx_service.ground.validation). Each edge answers BadShape in its own error format."""
from __future__ import annotations

from typing import TypeVar

from flask import request

from wx_service.ground.validation import Shape, parse_json

S = TypeVar("S", bound=Shape)


def json_body(shape: type[S]) -> S:
    """This request's JSON body as `shape`; BadShape (naming the field) when it is not."""
    return parse_json(shape, request.get_data(cache=False))
