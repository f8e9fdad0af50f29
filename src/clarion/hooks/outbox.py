"""Writing events into the outbox, in the caller's transaction.

An event is written only for the hooks that want it: every insert joins the account's
enabled hooks whose subscription names the type (or `*`), in SQL, in the same statement, so
the check costs one indexed lookup and there is no cache whose window could lose an event.
A change rolled back takes its events with it; a committed one keeps them until delivered.

The events one statement writes for a hook are packed into one row (a JSON array, built by
the database in the INSERT … SELECT), and a statement covers at most `PER_ROW` subjects
(messages, contacts): a batch of 500 messages sent is one row, not 500, so the outbox costs
the sending transaction one row to write and the deliverer one row to mark, not 500 of each
with their index entries (see docs/integration.md, "What hooks cost").
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Text, cast, func, insert, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from clarion.db.dialect import is_sqlite
from clarion.db.params import chunks
from clarion.hooks.models import PER_ROW, Hook, HookEvent
from clarion.schemas import utc_z

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
COLUMNS = ["hook_id", "account_id", "event_count", "events"]  # what an outbox insert writes

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


def json_object(session: AsyncSession) -> Any:
    """The dialect's function building a JSON object from name, value pairs."""
    return func.json_object if is_sqlite(session) else func.json_build_object


async def insert_events(
    session: AsyncSession,
    subjects: Iterable[int],
    rows_for: Callable[[Sequence[int]], Select[*tuple[Any, ...]]],
    at: datetime,
) -> None:
    """The events of `subjects` (message or contact ids), all of them `at`, one INSERT …
    SELECT per `PER_ROW` subjects: `rows_for(part)` selects (hook_id, account_id, type,
    data, key) of the part's events, one per event and hook (joined on `subscribed`; `data`
    a JSON expression, `key` the events' order), and each hook's are packed into one row.
    The cut is here because event ids rest on it: a row holds at most `PER_ROW` events."""
    for part in chunks(sorted(set(subjects)), PER_ROW):
        await session.execute(
            insert(HookEvent).from_select(COLUMNS, _packed(session, rows_for(part), at))
        )


def _packed(session: AsyncSession, rows: Select[*tuple[Any, ...]], at: datetime) -> Any:
    """(hook_id, account_id, event_count, events) of `rows`, one row per hook, the events a
    JSON array in `key` order built by the database."""
    hook_id, account_id, event_type, data, key = rows.selected_columns
    if is_sqlite(session):
        # SQLite 3.40 has no ORDER BY inside an aggregate: it aggregates in the order of
        # a subquery's rows; and a JSON value read back from a subquery is text to it
        # until json() reads it again.
        hook_id, account_id, event_type, data, key = rows.order_by(key).subquery("event").c
        body = func.json_object("type", event_type, "at", utc_z(at), "data", func.json(data))
        packed = select(hook_id, account_id, func.count(), func.json_group_array(body))
        return packed.group_by(hook_id, account_id)
    body = func.json_build_object("type", event_type, "at", utc_z(at), "data", data)
    return rows.with_only_columns(
        hook_id,
        account_id,
        func.count(),
        cast(func.json_agg(aggregate_order_by(body, key)), Text),
        maintain_column_froms=True,
    ).group_by(hook_id, account_id)


async def record_event(
    session: AsyncSession, account_id: int, event_type: str, data: dict[str, Any], at: datetime
) -> None:
    """Put one event of the account into the outbox for each hook that wants it, in the
    caller's transaction (rolled back with it). For events that come one at a time (a
    campaign changing status, an import finishing, a message clicked); bulk paths give
    `insert_events` their subjects and a SELECT of their events."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    events = orjson.dumps([{"type": event_type, "at": utc_z(at), "data": data}]).decode()
    await session.execute(
        insert(HookEvent).from_select(
            COLUMNS,
            select(Hook.id, literal(account_id), literal(1), literal(events, Text)).where(
                subscribed(account_id, literal(event_type))
            ),
        )
    )
