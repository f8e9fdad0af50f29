"""Campaign-level engine work: start due campaigns, materialize audiences, finish campaigns,
and return the leases of dead workers to the queue.

All of it is guarded SQL, so any number of processes may run it at once; all state is in the
database, so a restarted process simply carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns import counters, lifecycle
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.delivery import service as delivery
from clarion.messages import transitions
from clarion.sending import repository as repo
from clarion.sending.materialize import materialize_pending

log = logging.getLogger(__name__)


Clock = Callable[[], datetime]


async def start_due(db: Database, clock: Clock = utcnow) -> list[int]:
    async def work(session: AsyncSession) -> list[int]:
        return await lifecycle.start_due(session, clock())

    started = await in_transaction(db, work)
    if started:
        log.info("campaigns started: %s", started)
    return started


async def next_round(db: Database, now: datetime) -> datetime | None:
    """When the next round is needed at the latest (see `lifecycle.next_round`)."""
    async with db.session(write=False) as session:
        return await lifecycle.next_round(session, now)


async def sweep_leases(db: Database, clock: Clock = utcnow) -> int:
    async def work(session: AsyncSession) -> int:
        return await transitions.release_expired_leases(session, clock())

    return await in_transaction(db, work)


async def sweep_parked(db: Database) -> int:
    async def work(session: AsyncSession) -> int:
        return await delivery.sweep_parked(session)

    return await in_transaction(db, work)


async def sweep_expired(db: Database, timeout: float, now: datetime | None = None) -> int:
    """Turn `sent` messages that waited `timeout` seconds for a final receipt `expired`,
    a bounded batch at a time until none is left."""
    total = 0
    while True:

        async def work(session: AsyncSession) -> int:
            return await transitions.expire_overdue(
                session, now or utcnow(), timedelta(seconds=timeout)
            )

        done = await in_transaction(db, work)
        total += done
        if done < transitions.EXPIRE_LIMIT:
            return total


async def sweep_expiring(db: Database, clock: Clock = utcnow) -> int:
    """Skip (`EXPIRED`) what is still queued, held messages included, of campaigns past
    their `expiresAt`; each campaign completes once nothing of it is in flight."""
    now = clock()
    async with db.session(write=False) as session:
        ids = await repo.expiring_campaigns(session, now)
    total = 0
    for campaign_id in ids:

        async def work(session: AsyncSession, cid: int = campaign_id) -> int:
            return await transitions.expire_queued(session, cid, now)

        total += await in_transaction(db, work)
    return total


async def fold_counters(db: Database) -> int:
    """Fold the campaigns' appended counter changes into their rows (each in a short
    transaction of its own). Returns how many campaigns were folded."""
    async with db.session(write=False) as session:
        ids = await counters.with_tallies(session)
    folded = 0
    for campaign_id in ids:

        async def work(session: AsyncSession, cid: int = campaign_id) -> bool:
            return await counters.fold(session, cid)

        folded += await in_transaction(db, work)
    return folded


async def finalize(db: Database, clock: Clock = utcnow) -> list[int]:
    """Complete campaigns with nothing left to send and release what they did not spend;
    close cancelled campaigns once nothing of theirs is in flight (release what they still
    hold, skip what came back to the queue, set `completed_at`). Both
    read the campaign row's counters, so they fold first (in the same transaction)."""
    await fold_counters(db)
    async with db.session(write=False) as session:
        done = await lifecycle.finished(session)
        cancelled = await lifecycle.cancelled_to_close(session)
    completed = []
    for campaign_id in done:

        async def complete(session: AsyncSession, cid: int = campaign_id) -> bool:
            return await lifecycle.complete(session, cid, clock())

        if await in_transaction(db, complete):
            completed.append(campaign_id)
    for campaign_id, account_id in cancelled:

        async def release(
            session: AsyncSession, cid: int = campaign_id, aid: int = account_id
        ) -> None:
            await lifecycle.close_cancelled(session, cid, aid, clock())

        await in_transaction(db, release)
    if completed:
        log.info("campaigns completed: %s", completed)
    return completed


async def tick(db: Database, chunk: int, receipt_timeout: float = 259_200) -> None:
    """One round of everything above (what the scheduler loop runs every interval)."""
    await start_due(db)
    await sweep_leases(db)
    await sweep_parked(db)
    await sweep_expired(db, receipt_timeout)
    await sweep_expiring(db)
    await materialize_pending(db, chunk)
    await finalize(db)
