"""Writing events into the outbox, in the caller's transaction.

An event is written only for the hooks that want it: every insert joins the account's
enabled hooks whose subscription names the type (or `*`), in SQL, in the same statement, so
the check costs one indexed lookup and there is no cache whose window could lose an event.
A change rolled back takes its events with it; a committed one keeps them until delivered.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from clarion.db.base import JSONType, UTCDateTime
from clarion.hooks.models import Hook, HookEvent

EVENT_TYPES = (
    "campaign.started",
    "campaign.completed",
    "campaign.paused",
    "campaign.cancelled",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "message.expired",
    "message.clicked",
    "contact.opted_out",
    "contact.opted_in",
    "import.completed",
)
ALL = "*"
TIME = UTCDateTime()

# Message statuses that are events (`message.<status>`); the others (queued, sending,
# skipped) are internal steps.
MESSAGE_EVENT_STATUSES = ("sent", "delivered", "read", "failed", "expired")


def pack(types: list[str]) -> str:
    """The stored form of a subscription (see `Hook.event_types`)."""
    return " " + " ".join(dict.fromkeys(types)) + " "


def unpack(stored: str) -> list[str]:
    return stored.split()


def subscribed(account_id: Any, event_type: Any) -> ColumnElement[bool]:
    """The hooks of `account_id` (a value or a column) that are enabled and want
    `event_type` (a value or an SQL expression)."""
    return (
        (Hook.account_id == account_id)
        & Hook.enabled.is_(True)
        & or_(
            Hook.event_types.contains(literal(" ") + event_type + literal(" ")),
            Hook.event_types.contains(f" {ALL} "),
        )
    )


async def insert_events(session: AsyncSession, rows: Select[*tuple[Any, ...]]) -> None:
    """INSERT … SELECT of `rows`: (hook_id, account_id, type, data, at), one per event and
    hook (build it joined on `subscribed`)."""
    await session.execute(
        insert(HookEvent).from_select(["hook_id", "account_id", "type", "data", "at"], rows)
    )


async def record_event(
    session: AsyncSession, account_id: int, event_type: str, data: dict[str, Any], at: datetime
) -> None:
    """Put one event of the account into the outbox for each hook that wants it, in the
    caller's transaction (rolled back with it). For events that come one at a time (a
    campaign changing status, an import finishing, a message clicked); bulk paths build
    their own INSERT … SELECT with `insert_events`."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    await insert_events(
        session,
        select(
            Hook.id,
            literal(account_id),
            literal(event_type),
            literal(data, JSONType),
            literal(at, TIME),
        ).where(subscribed(account_id, literal(event_type))),
    )
