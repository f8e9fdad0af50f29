"""Every query of the operations domain: the gauges read at scrape time, and retention's
finding and deleting of finished campaigns' rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import column, delete, func, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account, ReservationSlice
from clarion.campaigns import states
from clarion.campaigns.models import Campaign
from clarion.db.dialect import is_postgres
from clarion.db.params import one_of
from clarion.messages.models import Message, MessageStatus

# --- gauges ---------------------------------------------------------------------------------


async def queue_depth(session: AsyncSession, now: datetime, cap: int) -> dict[str, int]:
    """channel -> queued messages whose time has come, counting at most `cap` in all: one
    walk of the queue's partial index (`ix_message_queue`, queued rows only), stopped at
    `cap`, so a scrape costs the same whatever the backlog."""
    due = (
        select(Message.channel)
        .where(Message.status == MessageStatus.QUEUED, Message.next_attempt_at <= now)
        .order_by(Message.campaign_id, Message.next_attempt_at)  # the index's order
        .limit(cap)
        .subquery()
    )
    rows = await session.execute(select(due.c.channel, func.count()).group_by(due.c.channel))
    return {str(channel): int(n) for channel, n in rows}


async def campaigns_by_status(session: AsyncSession) -> dict[str, int]:
    """status -> campaigns (every status named, zero included); an index-only count."""
    rows = await session.execute(select(Campaign.status, func.count()).group_by(Campaign.status))
    found = {str(status): int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in sorted({*states.STATUSES, *found})}


async def reserved_units(session: AsyncSession) -> int:
    """Credits reserved over all accounts, in units (the accounts' `reserved` columns, which
    the ledger keeps equal to their reservations, less what reservation slices spent and
    the rows do not show yet), in one statement."""
    reserved = select(func.coalesce(func.sum(Account.reserved), 0)).scalar_subquery()
    spent = select(func.coalesce(func.sum(ReservationSlice.spent), 0)).scalar_subquery()
    return int((await session.execute(select(reserved - spent))).scalar_one())


# --- retention ------------------------------------------------------------------------------


def _finished() -> list[Any]:
    """Completed, or cancelled and closed: `completed_at` set, nothing queued, in flight or
    reserved (on the folded row), so no worker will record anything of it any more."""
    return [
        Campaign.purged_at.is_(None),
        Campaign.completed_at.is_not(None),
        Campaign.status.in_((states.COMPLETED, states.CANCELLED)),
        Campaign.queued == 0,
        Campaign.sending == 0,
        Campaign.reserved == 0,
    ]


async def campaigns_to_purge(session: AsyncSession, cutoff: datetime, n: int) -> list[int]:
    """Finished campaigns whose `completed_at` is before `cutoff` and whose rows are not
    deleted yet, oldest first."""
    rows = await session.execute(
        select(Campaign.id)
        .where(Campaign.completed_at < cutoff, *_finished())
        .order_by(Campaign.completed_at)
        .limit(n)
    )
    return list(rows.scalars())


async def lock_campaign_to_purge(session: AsyncSession, campaign_id: int) -> bool:
    """Take the campaign row for this purge batch (PostgreSQL: skipped when another process
    is purging it now). False when it is gone, purged, or taken."""
    stmt = select(Campaign.id).where(Campaign.id == campaign_id, *_finished())
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


@dataclass(slots=True)
class MessageKey:
    id: int
    provider: str | None
    provider_message_id: str | None


async def messages_of(session: AsyncSession, campaign_id: int, n: int) -> list[MessageKey]:
    """Up to `n` message rows of the campaign (through its unique key's index)."""
    rows = await session.execute(
        select(Message.id, Message.provider, Message.provider_message_id)
        .where(Message.campaign_id == campaign_id)
        .limit(n)
    )
    return [MessageKey(*row) for row in rows]


async def delete_by_message_id(session: AsyncSession, name: str, message_ids: Sequence[int]) -> int:
    t = table(name, column("message_id"))
    result = await session.execute(
        delete(t)
        .where(t.c.message_id.in_(list(message_ids)))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_by_provider_id(
    session: AsyncSession, name: str, keys: Sequence[MessageKey]
) -> int:
    """Delete the rows of table `name` filed under these messages' (provider, provider id),
    matched to one of them or never matched (`message_id` NULL): through the provider id
    index that receipt ingestion already keeps, so retention adds no index to that path."""
    t = table(name, column("provider"), column("provider_message_id"), column("message_id"))
    by_provider: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        if k.provider and k.provider_message_id:
            by_provider[k.provider].append(k.provider_message_id)
    ids = [k.id for k in keys]
    deleted = 0
    for provider, pmids in sorted(by_provider.items()):
        result = await session.execute(
            delete(t)
            .where(
                t.c.provider == provider,
                one_of(session, t.c.provider_message_id, pmids),
                t.c.message_id.is_(None) | t.c.message_id.in_(ids),
            )
            .execution_options(synchronize_session=False)
        )
        deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return deleted


async def delete_by_campaign_id(session: AsyncSession, name: str, campaign_id: int, n: int) -> int:
    """Delete up to `n` rows of table `name` whose `campaign_id` is this campaign."""
    t = table(name, column("id"), column("campaign_id"))
    picked = select(t.c.id).where(t.c.campaign_id == campaign_id).limit(n).scalar_subquery()
    result = await session.execute(
        delete(t).where(t.c.id.in_(picked)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_messages(session: AsyncSession, ids: Sequence[int]) -> int:
    result = await session.execute(
        delete(Message)
        .where(Message.id.in_(list(ids)))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def add_purged_clicks(
    session: AsyncSession, campaign_id: int, clicks: int, clicked_messages: int
) -> None:
    """Carry the counters of the campaign's links deleted in this batch onto its row."""
    if not clicks:
        return
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(
            purged_clicks=Campaign.purged_clicks + clicks,
            purged_unique_clicks=Campaign.purged_unique_clicks + clicked_messages,
            updated_at=Campaign.updated_at,  # what readers see is unchanged
        )
        .execution_options(synchronize_session=False)
    )


async def mark_purged(session: AsyncSession, campaign_id: int, now: datetime) -> None:
    """Retention is done with the campaign (its row, counters and cost stay)."""
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(purged_at=now, updated_at=Campaign.updated_at)  # not a change readers see
        .execution_options(synchronize_session=False)
    )
