"""Pydantic pieces every domain shares: camelCase models, pagination."""

import math
import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Path, Query
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import (
    InitErrorDetails,
    PydanticCustomError,
    PydanticSerializationError,
    ValidationError,
    to_json,
)

T = TypeVar("T")

# The channels a campaign, a template, an opt-out or a consent can name.
CHANNELS = ("sms", "rcs", "whatsapp")


NUL = "must not contain the NUL character (U+0000)"
SURROGATE = "must be valid Unicode (a lone surrogate such as \\ud800 is not)"
NOT_FINITE = "must be a finite number"


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE
    return None


def unstorable(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """The first thing in a JSON-like value that no database column can store, with where it
    is (such as ("contacts", 3, "firstName")): U+0000 or a lone surrogate in a string or a
    key, or a number out of range (JSON's 1e400 parses to infinity). None when all is well.

    Serializing in C settles the common case at a tenth of the cost of walking the value
    (a 10,000-row bulk body: 4 ms instead of 31): orjson refuses lone surrogates, escapes
    U+0000 as `\\u0000`, and writes infinity and NaN as `null`. A `null` is most often a
    plain None (a receipt's empty error code), so pydantic-core's serializer, which can write
    them as `Infinity` and `NaN`, says whether one is there. Only when one of those may be
    there is the value walked to find it (and a literal backslash-u0000, or a string holding
    "NaN", found to be harmless)."""
    try:
        blob = orjson.dumps(value)
    except TypeError:
        return _walk(value)
    if b"\\u0000" in blob:
        return _walk(value)
    if b"null" in blob:
        try:
            spelled = to_json(value, inf_nan_mode="constants")
        except PydanticSerializationError:
            return _walk(value)
        if b"Infinity" in spelled or b"NaN" in spelled:
            return _walk(value)
    return None


def _walk(value: Any, at: tuple[str | int, ...] = ()) -> tuple[tuple[str | int, ...], str] | None:
    if isinstance(value, str):
        problem = _text_problem(value)
        return (at, problem) if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (at, NOT_FINITE)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _text_problem(key) if isinstance(key, str) else None
            if problem:
                return at, f"keys {problem}"
            found = _walk(item, (*at, str(key)))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _walk(item, (*at, index))
            if found is not None:
                return found
    return None


class CamelModel(BaseModel):
    """Accepts and emits camelCase field names; unknown fields are rejected (422), and so is
    anything in the input no database can store (`unstorable`): PostgreSQL text and jsonb
    cannot hold U+0000, UTF-8 cannot encode a lone surrogate, JSON cannot write infinity."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", from_attributes=True
    )

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        found = unstorable(data) if isinstance(data, dict) else None
        if found is not None:
            where, problem = found
            error = PydanticCustomError("unstorable", problem)
            raise ValidationError.from_exception_data(
                cls.__name__, [InitErrorDetails(type=error, loc=where, input=data)]
            )
        return data


class OutModel(BaseModel):
    """Response models: camelCase out, built from ORM objects."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


def utc_z(value: datetime) -> str:
    """RFC 3339 with a `Z`, microseconds only when there are some (values are UTC)."""
    return value.replace(tzinfo=None).isoformat() + "Z"


UtcDatetime = Annotated[datetime, PlainSerializer(utc_z, return_type=str, when_used="json")]
"""A timestamp in a response: RFC 3339 in UTC with a `Z`."""

_RFC3339_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _rfc3339_text(value: Any) -> Any:
    # Pydantic would also read numbers (and numeric strings) as Unix times; the schema
    # promises an RFC 3339 string, so that is all a request may send.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-11-27T10:00:00Z")
    return value


RequestDatetime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
"""A timestamp in a request: an RFC 3339 string with an offset; a naive time is rejected
(422), and so is a number."""


# Ids stay below 2**53: exact as JSON numbers in every client (JavaScript's safe integers),
# and a schema's `maximum` means the same to a client that reads numbers as doubles.
MAX_ID = 2**53 - 1

PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="a resource id")]
"""An id in a URL path: an out-of-range id is a 422, never a database overflow."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""An id inside a request body."""


class Page(OutModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**53, description="rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)
