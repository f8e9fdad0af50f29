"""Campaign-level engine work: start due campaigns, materialize audiences, finish campaigns,
and return the leases of dead workers to the queue.

All of it is guarded SQL, so any number of processes may run it at once; all state is in the
database, so a restarted process simply carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.delivery import expiry
from clarion.delivery import service as delivery
from clarion.sending import repository as repo
from clarion.sending.dispatcher import in_transaction

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


async def sweep_expired(db: Database, timeout: float, now: datetime | None = None) -> int:
    """Turn `sent` messages that waited `timeout` seconds for a final receipt `expired`,
    a bounded batch at a time until none is left."""
    total = 0
    while True:

        async def work(session: AsyncSession) -> int:
            return await expiry.expire_overdue(session, now or utcnow(), timedelta(seconds=timeout))

        done = await in_transaction(db, work)
        total += done
        if done < expiry.SWEEP_LIMIT:
            return total


# Chunks in flight at once on PostgreSQL: one chunk's INSERT keeps one database backend busy
# (CPU-bound); a second one overlapping it uses the other core (1,000,000 recipients: -25%).
PIPELINE = 2
# Advisory lock space of "materializing campaign N" (two-int form: this, N mod 2^31).
_LOCK_SPACE = 0x636C61


class _Moved(Exception):
    """The campaign moved while a chunk was inserted (paused, cancelled, or a chunk before it
    failed): the chunk is rolled back and planned again later."""


async def materialize(db: Database, campaign_id: int, chunk: int) -> int:
    """Materialize a campaign's audience, one committed chunk at a time (an interrupted run
    resumes after the last committed chunk). Returns the messages created by this call.

    SQLite (one writer): one chunk after the other, each in a write transaction of its own.
    PostgreSQL: `PIPELINE` consecutive chunks are inserted at once, each in its own
    transaction; each commits only after the one before it, since it moves the progress
    marker on from where that one left it. One process materializes a campaign at a time
    (an advisory lock); another finds it taken and leaves it."""
    if db.is_sqlite:
        return await _one_by_one(db, campaign_id, chunk)
    async with _exclusively(db, campaign_id) as ours:
        return await _pipelined(db, campaign_id, chunk) if ours else 0


async def _one_by_one(db: Database, campaign_id: int, chunk: int) -> int:
    total = 0
    while True:

        async def work(session: AsyncSession) -> repo.ChunkResult | None:
            return await repo.materialize_chunk(session, campaign_id, chunk, utcnow())

        result = await in_transaction(db, work)
        if result is None or result.done:
            return total
        total += result.inserted


@asynccontextmanager
async def _exclusively(db: Database, campaign_id: int) -> AsyncIterator[bool]:
    """Hold the campaign's materializing lock on a connection of its own while inside."""
    key = {"space": _LOCK_SPACE, "id": campaign_id % 2**31}
    async with db.writer.connect() as conn:
        got = bool(
            (await conn.execute(text("SELECT pg_try_advisory_lock(:space, :id)"), key)).scalar()
        )
        await conn.commit()
        try:
            yield got
        finally:
            if got:
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:space, :id)"), key)
                    await conn.commit()
                except Exception:  # never return a connection that still holds the lock
                    await conn.invalidate()
                    raise


async def _pipelined(db: Database, campaign_id: int, chunk: int) -> int:
    total = 0
    while True:
        plans: list[repo.Chunk] = []
        async with db.session(write=False) as session:
            after = None
            while len(plans) < PIPELINE:
                planned = await repo.plan_chunk(session, campaign_id, chunk, after)
                if planned is None:
                    break
                plans.append(planned)
                if planned.upto is None:
                    break
                after = planned.upto
        if not plans:
            return total
        results = await commit_in_order(db, plans)
        for planned, result in zip(plans, results, strict=True):
            if isinstance(result, _Moved):
                return total  # paused or cancelled meanwhile: the next tick sees it
            if isinstance(result, BaseException):
                raise result
            total += result
            if planned.upto is None:
                return total


async def commit_in_order(db: Database, plans: list[repo.Chunk]) -> list[int | BaseException]:
    """Insert consecutive chunks at once, each in its own transaction, committing them in
    order. Returns what each inserted, or why it did not commit. (On SQLite, whose single
    writer would make them wait on each other's lock, they run one after the other.)"""
    if db.is_sqlite:
        done: list[int | BaseException] = []
        for planned in plans:
            try:
                done.append(await _commit_chunk(db, planned, None))
            except Exception as exc:
                done.append(exc)
        return done
    previous: asyncio.Task[int] | None = None
    tasks = []
    for planned in plans:
        previous = asyncio.create_task(_commit_chunk(db, planned, previous))
        tasks.append(previous)
    return await asyncio.gather(*tasks, return_exceptions=True)


async def _commit_chunk(
    db: Database, planned: repo.Chunk, previous: asyncio.Task[int] | None
) -> int:
    now = utcnow()
    async with db.transaction() as session:
        inserted = 0 if planned.upto is None else await repo.insert_chunk(session, planned, now)
        if previous is not None:
            try:
                await previous  # it moves the marker to where this chunk starts
            except Exception as exc:
                raise _Moved("the chunk before this one did not commit") from exc
        if not await repo.advance_chunk(session, planned, inserted, now):
            raise _Moved(f"campaign {planned.campaign_id} moved")
    return inserted


async def materialize_pending(db: Database, chunk: int) -> int:
    async with db.session(write=False) as session:
        ids = await repo.campaigns_to_materialize(session)
    total = 0
    for campaign_id in ids:
        total += await materialize(db, campaign_id, chunk)
    return total


async def finalize(db: Database) -> list[int]:
    """Complete campaigns with nothing left to send and release what they did not spend;
    close cancelled campaigns once nothing of theirs is in flight (release what they still
    hold, skip what came back to the queue, set `completed_at`)."""
    async with db.session(write=False) as session:
        done = await repo.campaigns_to_finish(session)
        cancelled = await repo.cancelled_to_close(session)
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
            held = await repo.close_cancelled(session, cid, utcnow())
            if held:
                await ledger.settle(session, aid, cid, note="campaign cancelled")

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
    await materialize_pending(db, chunk)
    await finalize(db)
