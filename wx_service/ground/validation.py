"""Typed parsing of everything that comes from outside, once, where it comes in.

Why pydantic v2: its models are the types the code then reads (attributes, not `.get` chains on
whatever JSON arrived); strict mode refuses coercions that would be dangerous with money ("10000"
for 10000, true for 1); every error carries the path of the field, so a refusal can name it; its
Rust JSON parser bounds nesting depth (Python's json raises RecursionError on deep input); and
`model_json_schema()` writes JSON Schema 2020-12, the dialect of OpenAPI 3.1, so the mini-program
spec's request bodies are derived from the same models that validate them. msgspec is faster, but
the bodies here are a few hundred bytes and the cost is microseconds either way.
"""
from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_core import from_json

T = TypeVar("T", bound=BaseModel)


class Shape(BaseModel):
    """Base of every body we parse: strict types, unknown keys ignored, immutable once parsed."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character, which text cannot hold")
    return value


# A string that will be stored: Postgres text cannot hold NUL (SQLite can, so only Postgres would
# fail, with a 500, after the request had been accepted).
StoredText = Annotated[str, AfterValidator(_storable)]


class BadShape(ValueError):
    """A body that is not the shape it must be. `field` is the dotted path of the first problem
    ("amount.total", "resource", "body" for the whole), `problem` says what is wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def _first_error(exc: ValidationError) -> BadShape:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if not errors:
        return BadShape("body", "is malformed")
    first = errors[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return BadShape(field, str(first.get("msg", "is malformed")))


def parse(shape: type[T], data: Any) -> T:
    """`data` (already decoded JSON) as `shape`, or BadShape naming the first wrong field."""
    try:
        return shape.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None
    except RecursionError:
        raise BadShape("body", "is nested too deeply") from None


def parse_json(shape: type[T], body: bytes | str) -> T:
    """A raw JSON body as `shape`, in one pass (no intermediate dicts), or BadShape. Not JSON at
    all, or nested past the parser's limit, is a BadShape for "body"."""
    try:
        return shape.model_validate_json(body)
    except ValidationError as exc:
        raise _first_error(exc) from None


def loads(body: bytes | str) -> Any:
    """JSON with the same bounded parser (nesting limited, lone surrogates refused): ValueError
    for anything that is not JSON, never RecursionError. For bodies read loosely on purpose."""
    return from_json(body or b"null")
