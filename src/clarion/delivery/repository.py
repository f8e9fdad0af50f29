"""Queries of the delivery domain, named for what they answer."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.params import LOOKUP_CHUNK, chunks, one_of
from clarion.delivery.models import ReceiptEvent
from clarion.messages.models import Message
from clarion.messages.states import RECEIPT_TARGETS


@dataclass(slots=True)
class ParkedEvent:
    id: int
    provider_message_id: str
    status: str
    error_code: str | None
    error_message: str | None
    occurred_at: datetime | None


async def insert_receipt_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store raw events (one multi-row INSERT per chunk)."""
    for part in chunks(rows):
        await session.execute(insert(ReceiptEvent), list(part))


async def parked_events_for(
    session: AsyncSession, provider: str, provider_message_ids: Sequence[str]
) -> list["ParkedEvent"]:
    """Parked (unmatched) events of these provider ids, in arrival order."""
    events: list[ParkedEvent] = []
    for part in chunks(sorted(set(provider_message_ids)), LOOKUP_CHUNK):
        result = await session.execute(
            select(
                ReceiptEvent.id,
                ReceiptEvent.provider_message_id,
                ReceiptEvent.status,
                ReceiptEvent.error_code,
                ReceiptEvent.error_message,
                ReceiptEvent.occurred_at,
            ).where(
                ReceiptEvent.message_id.is_(None),
                ReceiptEvent.provider == provider,
                one_of(session, ReceiptEvent.provider_message_id, part),
            )
        )
        events.extend(ParkedEvent(*row) for row in result)
    events.sort(key=lambda e: e.id)
    return events


async def mark_events_matched(session: AsyncSession, pairs: list[dict[str, int]]) -> None:
    """Set `message_id` on events that have been applied (`{"b_id", "b_message_id"}`)."""
    table = ReceiptEvent.__table__
    stmt = (
        update(table)  # type: ignore[arg-type]
        .where(table.c.id == bindparam("b_id"))
        .values(message_id=bindparam("b_message_id"))
    )
    for part in chunks(pairs):
        await session.execute(stmt, list(part))


async def applicable_parked(
    session: AsyncSession, since: datetime, limit: int
) -> list[tuple[str, str]]:
    """(provider, provider_message_id) of parked events whose message is now recorded as
    sent or later: what a sweep can apply. Unmatchable events are left alone."""
    stmt = (
        select(ReceiptEvent.provider, ReceiptEvent.provider_message_id)
        .join(
            Message,
            and_(
                Message.provider_message_id == ReceiptEvent.provider_message_id,
                Message.provider == ReceiptEvent.provider,
            ),
        )
        .where(
            ReceiptEvent.message_id.is_(None),
            ReceiptEvent.received_at >= since,
            Message.status.in_(RECEIPT_TARGETS),
        )
        .distinct()
        .limit(limit)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]
