"""Pydantic pieces every domain shares: camelCase models, pagination."""

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class CamelModel(BaseModel):
    """Accepts and emits camelCase field names; unknown fields are rejected (422)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", from_attributes=True
    )


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
