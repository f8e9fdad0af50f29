"""Queries of the delivery domain, named for what they answer."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account
from clarion.audience.models import Contact
from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.dialect import is_sqlite
from clarion.db.params import LOOKUP_CHUNK, as_arrays, chunks, one_of
from clarion.delivery.models import InboundEvent, ProviderIdAlias, ReceiptEvent
from clarion.messages.models import Message
from clarion.messages.states import RECEIPT_TARGETS
from clarion.providers.base import InboundMessage


@dataclass(slots=True)
class ParkedEvent:
    id: int
    provider_message_id: str
    status: str
    error_code: str | None
    error_message: str | None
    occurred_at: datetime | None
    refund: bool


# PostgreSQL: a chunk's events in one INSERT of arrays (`as_arrays`), as
# `transitions.apply_receipts` updates their messages.
_INSERT_EVENTS_PG = """
INSERT INTO receipt_event (provider, provider_message_id, status, error_code, error_message,
    raw, occurred_at, received_at, refund, message_id)
SELECT * FROM unnest(
    CAST(:provider AS TEXT[]), CAST(:provider_message_id AS TEXT[]), CAST(:status AS TEXT[]),
    CAST(:error_code AS TEXT[]), CAST(:error_message AS TEXT[]), CAST(:raw AS TEXT[]),
    CAST(:occurred_at AS TIMESTAMPTZ[]), CAST(:received_at AS TIMESTAMPTZ[]),
    CAST(:refund AS BOOLEAN[]), CAST(:message_id AS BIGINT[])
)
"""


async def insert_receipt_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store raw events (rows keyed by column, every column above), a chunk a statement:
    arrays on PostgreSQL, an executemany through Core on SQLite (the ORM's bulk INSERT adds
    its own bookkeeping per row, and these rows are never loaded as objects here)."""
    for part in chunks(rows):
        if is_sqlite(session):
            await session.execute(insert(cast(Table, ReceiptEvent.__table__)), list(part))
        else:
            await session.execute(text(_INSERT_EVENTS_PG), as_arrays(part))


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


async def insert_aliases(
    session: AsyncSession, provider: str, pairs: Sequence[tuple[str, str]], now: datetime
) -> None:
    """Store (alias, provider_message_id) pairs; an alias already stored is kept."""
    rows = [
        {"provider": provider, "alias": a, "provider_message_id": m, "created_at": now}
        for a, m in dict(pairs).items()
    ]
    dialect_insert = sqlite_insert if is_sqlite(session) else pg_insert
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
                one_of(session, ProviderIdAlias.alias, part),
            )
        )
        found.update({a: m for a, m in rows})
    return found


# -- inbound messages ------------------------------------------------------------------------


async def record_inbound(
    session: AsyncSession, item: InboundMessage, window: timedelta
) -> int | None:
    """Store an inbound message; None when it was stored before: the provider sent its id
    before, or (no id) a message of the same fingerprint is the phone's latest within
    `window`. The unique (provider, provider_message_id) decides, inside a savepoint, so two
    deliveries racing each other still handle it once."""
    provider, phone = item.provider[:32], item.from_phone[:32]
    received_at = item.received_at or utcnow()
    key = (item.provider_message_id or None) and item.provider_message_id[:128]
    if key is None and item.fingerprint:
        key = await _fingerprint_key(
            session, provider, phone, item.fingerprint, received_at, window
        )
        if key is None:
            return None
    row = InboundEvent(
        provider=provider,
        provider_message_id=key,
        channel=item.channel,
        from_phone=phone,
        to=(item.to or None) and item.to[:64],
        text=item.text or "",
        received_at=received_at,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return None
    return row.id


async def _fingerprint_key(
    session: AsyncSession,
    provider: str,
    phone: str,
    fingerprint: str,
    at: datetime,
    window: timedelta,
) -> str | None:
    """The key a fingerprinted message is stored under, or None when it repeats the phone's
    latest message within `window` (a redelivery). The key anchors the fingerprint to that
    latest message ("e<id>"), or to the window-long slice of time it came in ("t<n>") when
    the phone sent nothing within the window: copies racing each other see the same latest
    message and the same slice, so they share a key and the unique key keeps one; the same
    text after another message, or after the window, gets a key of its own."""
    prefix = f"fp:{fingerprint}:"
    latest = (
        await session.execute(
            select(InboundEvent.id, InboundEvent.provider_message_id)
            .where(
                InboundEvent.provider == provider,
                InboundEvent.from_phone == phone,
                InboundEvent.received_at > at - window,
            )
            .order_by(InboundEvent.received_at.desc(), InboundEvent.id.desc())
            .limit(1)
        )
    ).first()
    if latest is None:
        return f"{prefix}t{int(at.timestamp() // window.total_seconds())}"
    if (latest.provider_message_id or "").startswith(prefix):
        return None
    return f"{prefix}e{latest.id}"


async def note_inbound(
    session: AsyncSession, event_id: int, action: str | None, reply_message_id: int | None
) -> None:
    await session.execute(
        update(InboundEvent)
        .where(InboundEvent.id == event_id)
        .values(action=action, reply_message_id=reply_message_id)
    )


async def contacts_by_account_with_phone(session: AsyncSession, phone: str) -> dict[int, list[int]]:
    """account id -> its contacts with this E.164 phone (any account)."""
    rows = await session.execute(
        select(Contact.account_id, Contact.id).where(Contact.phone == phone).order_by(Contact.id)
    )
    out: dict[int, list[int]] = {}
    for account_id, contact_id in rows.all():
        out.setdefault(int(account_id), []).append(int(contact_id))
    return out


@dataclass(slots=True)
class LastSent:
    """The latest message handed to a provider for a phone: whose it was, and from whom."""

    account_id: int
    country: str
    sender: str | None


async def last_sent_to(session: AsyncSession, phone: str) -> LastSent | None:
    row = (
        await session.execute(
            select(
                Message.account_id,
                Message.country,
                func.coalesce(Message.sender, Campaign.sender),
            )
            .outerjoin(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.phone == phone, Message.sent_at.is_not(None))
            .order_by(Message.sent_at.desc(), Message.id.desc())
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else LastSent(int(row[0]), str(row[1]), row[2])


async def available_credits(session: AsyncSession, account_id: int) -> int:
    row = await session.execute(
        select(Account.balance - Account.reserved).where(Account.id == account_id)
    )
    return int(row.scalar_one_or_none() or 0)
