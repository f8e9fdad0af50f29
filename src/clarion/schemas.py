"""Pydantic pieces every domain shares: camelCase models, pagination."""

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

T = TypeVar("T")


def nul_location(value: Any, at: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where the NUL character (U+0000) first occurs in a JSON-like value (in a string or a
    key), as a location such as ("contacts", 3, "firstName"); None when it does not."""
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*at, str(key))
            if isinstance(key, str) and "\x00" in key:
                return here
            found = nul_location(item, here)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_location(item, (*at, index))
            if found is not None:
                return found
    return None


class CamelModel(BaseModel):
    """Accepts and emits camelCase field names; unknown fields are rejected (422), and so is
    the NUL character anywhere in the input: PostgreSQL text and jsonb cannot hold it, and no
    name, message or attribute needs it."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", from_attributes=True
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = nul_location(data) if isinstance(data, dict) else None
        if where is not None:
            error = PydanticCustomError("nul", "must not contain the NUL character (U+0000)")
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

RequestDatetime = AwareDatetime
"""A timestamp in a request: RFC 3339 with an offset; a naive time is rejected (422)."""


MAX_ID = 2**63 - 1

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
