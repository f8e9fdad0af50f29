"""Campaign-level engine work: start due campaigns, materialize audiences, finish campaigns,
and return the leases of dead workers to the queue.

All of it is guarded SQL, so any number of processes may run it at once; all state is in the
database, so a restarted process simply carries on.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.delivery import service as delivery
from clarion.sending import repository as repo
from clarion.sending.dispatcher import in_transaction
from clarion.sending.materialize import materialize_pending

log = logging.getLogger(__name__)


async def start_due(db: Database) -> list[int]:
    async def work(session: AsyncSession) -> list[int]:
        return await repo.start_due_campaigns(session, utcnow())

    started = await in_transaction(db, work)
    if started:
        log.info("campaigns started: %s", started)
    return started


async def sweep_leases(db: Database) -> int:
    async def work(session: AsyncSession) -> int:
        return await repo.release_expired_leases(session, utcnow())

    return await in_transaction(db, work)


async def sweep_parked(db: Database) -> int:
    async def work(session: AsyncSession) -> int:
        return await delivery.sweep_parked(session)

    return await in_transaction(db, work)


async def finalize(db: Database) -> list[int]:
    """Complete campaigns with nothing left to send and release what they did not spend;
    release what cancelled campaigns still hold once nothing of theirs is in flight."""
    async with db.session(write=False) as session:
        done = await repo.campaigns_to_finish(session)
        cancelled = await repo.cancelled_with_reserve(session)
    completed = []
    for campaign_id in done:

        async def complete(session: AsyncSession, cid: int = campaign_id) -> bool:
            account_id = await repo.complete_campaign(session, cid, utcnow())
            if account_id is None:
                return False
            await ledger.settle(session, account_id, cid, note="campaign completed")
            return True

        if await in_transaction(db, complete):
            completed.append(campaign_id)
    for campaign_id, account_id in cancelled:

        async def release(
            session: AsyncSession, cid: int = campaign_id, aid: int = account_id
        ) -> None:
            if await repo.clear_reserved(session, cid):
                await ledger.settle(session, aid, cid, note="campaign cancelled")

        await in_transaction(db, release)
    if completed:
        log.info("campaigns completed: %s", completed)
    return completed


async def tick(db: Database, chunk: int) -> None:
    """One round of everything above (what the scheduler loop runs every interval)."""
    await start_due(db)
    await sweep_leases(db)
    await sweep_parked(db)
    await materialize_pending(db, chunk)
    await finalize(db)
