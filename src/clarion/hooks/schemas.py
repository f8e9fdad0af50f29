from typing import Annotated, Literal

from pydantic import Field, field_validator

from clarion.hooks.outbox import ALL, EVENT_TYPES
from clarion.schemas import CamelModel, OutModel, UtcDatetime

EVENT_NAMES = [*EVENT_TYPES, ALL]
EventName = Annotated[str, Field(json_schema_extra={"enum": EVENT_NAMES})]
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        description="https:// to a public address; http:// and internal addresses only to "
        "hosts in CLARION_HOOKS_ALLOW_HTTP_HOSTS",
    ),
]
Events = Annotated[
    list[EventName],
    Field(
        min_length=1,
        max_length=len(EVENT_NAMES),
        description="the event types to receive; `*` for all",
    ),
]


def _known(events: list[str] | None) -> list[str] | None:
    if events is None:
        return None
    unknown = [e for e in events if e not in EVENT_NAMES]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_NAMES)}")
    return list(dict.fromkeys(events))


class HookCreate(CamelModel):
    url: Url
    events: Events
    description: str | None = Field(default=None, max_length=500)

    _check_events = field_validator("events")(_known)


class HookUpdate(CamelModel):
    """Only the fields given change. `enabled: true` turns a hook disabled after 3 days of
    failures back on."""

    url: Url | None = None
    events: Events | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None

    _check_events = field_validator("events")(_known)


class HookOut(OutModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    enabled: bool = Field(description="false once every delivery failed for 3 days")
    created_at: UtcDatetime
    updated_at: UtcDatetime


class HookCreated(HookOut):
    secret: str = Field(
        description="`whsec_` + base64 of the signing key; shown only in this answer"
    )


class DeliveryOut(OutModel):
    id: int
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None = Field(description="why the last attempt failed")
    next_attempt_at: UtcDatetime | None = Field(description="when pending: the next attempt")
    events: int = Field(description="how many events the batch carries")
    created_at: UtcDatetime
    updated_at: UtcDatetime
