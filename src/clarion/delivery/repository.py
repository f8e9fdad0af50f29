"""Queries of the delivery domain, named for what they answer."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import String, and_, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clarion.delivery.models import ProviderIdAlias, ReceiptEvent
from clarion.delivery.states import RECEIPT_TARGETS
from clarion.sending.models import Message

CHUNK = 1000  # rows per multi-row statement: well under every driver's parameter limit
LOOKUP_CHUNK = 10_000  # ids per lookup (bound as one array parameter, see `_one_of`)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class MessageState:
    """What a receipt needs to know about its message (mutated as receipts are folded in)."""

    id: int
    campaign_id: int
    contact_id: int | None
    provider_message_id: str
    original: str
    status: str


@dataclass(slots=True)
class ParkedEvent:
    id: int
    provider_message_id: str
    status: str
    error_code: str | None
    error_message: str | None
    occurred_at: datetime | None
    refund: bool


def _is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _one_of(session: AsyncSession, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` bound as ONE parameter (a PostgreSQL array; a JSON array read by
    SQLite's json_each): hundreds of separate bind parameters cost more on the client than
    the indexed lookup itself."""
    if _is_sqlite(session):
        table = func.json_each(bindparam("one_of", orjson.dumps(list(values)).decode()))
        return column.in_(select(table.table_valued("value").c.value))
    return column == any_(bindparam("one_of", list(values), type_=ARRAY(String)))


async def messages_by_provider_ids(
    session: AsyncSession, provider: str, provider_message_ids: Sequence[str]
) -> dict[str, MessageState]:
    """The messages these provider ids were recorded for, locked for update on PostgreSQL
    (in id order, so concurrent ingests never deadlock each other). On SQLite the write
    transaction (BEGIN IMMEDIATE) already serializes writers."""
    found: dict[str, MessageState] = {}
    lock = not _is_sqlite(session)
    for part in chunks(sorted(set(provider_message_ids)), LOOKUP_CHUNK):
        stmt = (
            select(
                Message.id,
                Message.campaign_id,
                Message.contact_id,
                Message.provider_message_id,
                Message.status,
            )
            .where(
                _one_of(session, Message.provider_message_id, part), Message.provider == provider
            )
            .order_by(Message.id)
        )
        if lock:
            stmt = stmt.with_for_update()
        for row in await session.execute(stmt):
            found[row.provider_message_id] = MessageState(
                row.id,
                row.campaign_id,
                row.contact_id,
                row.provider_message_id,
                row.status,
                row.status,
            )
    return found


async def insert_receipt_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store raw events (one multi-row INSERT per chunk)."""
    for part in chunks(rows):
        await session.execute(insert(ReceiptEvent), list(part))


_UPDATE_MESSAGE = (
    update(Message.__table__)  # type: ignore[arg-type]
    .where(
        and_(
            Message.__table__.c.id == bindparam("b_id"),
            Message.__table__.c.status == bindparam("b_old"),
        )
    )
    .values(
        status=bindparam("b_status"),
        delivered_at=func.coalesce(Message.__table__.c.delivered_at, bindparam("b_delivered_at")),
        read_at=func.coalesce(Message.__table__.c.read_at, bindparam("b_read_at")),
        error_code=func.coalesce(bindparam("b_error_code"), Message.__table__.c.error_code),
        error_message=func.coalesce(
            bindparam("b_error_message"), Message.__table__.c.error_message
        ),
        updated_at=bindparam("b_updated_at"),
    )
)


async def update_message_statuses(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Apply status transitions; each row is guarded by the status it was read in (the row
    is locked, so the guard only ever protects against a bug, never a race)."""
    for part in chunks(rows):
        await session.execute(_UPDATE_MESSAGE, list(part))


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
                ReceiptEvent.refund,
            ).where(
                ReceiptEvent.message_id.is_(None),
                ReceiptEvent.provider == provider,
                _one_of(session, ReceiptEvent.provider_message_id, part),
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


async def expire_overdue(
    session: AsyncSession, cutoff: datetime, now: datetime, limit: int
) -> list[tuple[int, int | None]]:
    """Turn up to `limit` messages accepted before `cutoff` and still without a final
    receipt (`sent`) into `expired`, oldest first; returns their (campaign, contact)."""
    due = (
        select(Message.id)
        .where(Message.status == "sent", Message.sent_at < cutoff)
        .order_by(Message.sent_at)
        .limit(limit)
    )
    picked = due.cte("due")
    if not _is_sqlite(session):
        # Materialized, or PostgreSQL may re-run the LIMIT inside IN (...) and take more;
        # SKIP LOCKED: another sweeper takes the others.
        picked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
    rows = await session.execute(
        update(Message)
        .where(Message.id.in_(select(picked.c.id)), Message.status == "sent")
        .values(status="expired", updated_at=now)
        .returning(Message.campaign_id, Message.contact_id)
        .execution_options(synchronize_session=False)
    )
    return [(int(campaign_id), contact_id) for campaign_id, contact_id in rows]


@dataclass(slots=True)
class Charged:
    id: int
    account_id: int
    campaign_id: int
    contact_id: int | None
    price: int


async def take_back_charges(
    session: AsyncSession, message_ids: Sequence[int], now: datetime
) -> list[Charged]:
    """Zero the price of these messages (they are refunded) and answer what each had been
    charged; messages already at 0 are left out, so a message is refunded once."""
    out: list[Charged] = []
    for part in chunks(sorted(set(message_ids))):
        rows = await session.execute(
            select(
                Message.id,
                Message.account_id,
                Message.campaign_id,
                Message.contact_id,
                Message.price,
            ).where(Message.id.in_(part), Message.price > 0)
        )
        found = [Charged(*row) for row in rows]
        if found:
            await session.execute(
                update(Message)
                .where(Message.id.in_([c.id for c in found]), Message.price > 0)
                .values(price=0, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        out.extend(found)
    return out


async def insert_aliases(
    session: AsyncSession, provider: str, pairs: Sequence[tuple[str, str]], now: datetime
) -> None:
    """Store (alias, provider_message_id) pairs; an alias already stored is kept."""
    rows = [
        {"provider": provider, "alias": a, "provider_message_id": m, "created_at": now}
        for a, m in dict(pairs).items()
    ]
    dialect_insert = sqlite_insert if _is_sqlite(session) else pg_insert
    for part in chunks(rows):
        stmt = dialect_insert(ProviderIdAlias).on_conflict_do_nothing()
        await session.execute(stmt, list(part))


async def resolve_aliases(
    session: AsyncSession, provider: str, ids: Sequence[str]
) -> dict[str, str]:
    """alias -> provider_message_id, for those of `ids` that are stored aliases."""
    found: dict[str, str] = {}
    for part in chunks(sorted(set(ids)), LOOKUP_CHUNK):
        rows = await session.execute(
            select(ProviderIdAlias.alias, ProviderIdAlias.provider_message_id).where(
                ProviderIdAlias.provider == provider,
                _one_of(session, ProviderIdAlias.alias, part),
            )
        )
        found.update({a: m for a, m in rows})
    return found
