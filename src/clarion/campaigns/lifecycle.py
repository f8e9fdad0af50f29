"""The campaign transitions the engine asks for: start when due, complete when nothing is
left, give back what a cancelled campaign still holds. Like every campaign status change,
they go through the state table (`states.py`); the engine never writes a campaign's status.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.campaigns import counters, hook_events, repository, wakeups
from clarion.messages import transitions


async def start_due(session: AsyncSession, now: datetime) -> list[int]:
    """Start the scheduled campaigns whose time has come; returns their ids."""
    started = await repository.start_due(session, now)
    await hook_events.record_ids(session, started, "campaign.started", now)
    if started:
        await wakeups.engine_has_work(session)
    return started


async def next_round(session: AsyncSession, now: datetime) -> datetime | None:
    """When the scheduler must look again at the latest: now while a campaign is sending or
    has counters to fold, the next scheduled start otherwise (None: nothing planned)."""
    return await repository.next_round(session, now)


async def finished(session: AsyncSession) -> list[int]:
    """Campaigns that look complete on their (folded) row: candidates for `complete`."""
    return await repository.finished(session)


async def complete(session: AsyncSession, campaign_id: int, now: datetime) -> bool:
    """Complete the campaign if nothing is queued or in flight, and release the credits it
    did not spend. Folds its counters first (the check reads the row). False: not done now
    (something left, or another transaction holds the row)."""
    if not await counters.fold(session, campaign_id):
        return False
    account_id = await repository.complete(session, campaign_id, now)
    if account_id is None:
        return False
    await ledger.settle(session, account_id, campaign_id, note="campaign completed")
    await hook_events.record_ids(session, [campaign_id], "campaign.completed", now)
    return True


async def cancelled_to_close(session: AsyncSession) -> list[tuple[int, int]]:
    """Cancelled campaigns not closed yet (credits held, messages requeued after the cancel,
    or no `completed_at`) with nothing in flight: (id, account id)."""
    return await repository.cancelled_to_close(session)


async def close_cancelled(
    session: AsyncSession, campaign_id: int, account_id: int, now: datetime
) -> None:
    """Close a cancelled campaign once nothing of it is in flight: what came back to the
    queue after the cancel is skipped, the reservation released, `completed_at` set."""
    if not await counters.fold(session, campaign_id):
        return
    if not await repository.close_cancelled(session, campaign_id, now):
        return
    await transitions.skip_queued(session, campaign_id)
    await ledger.settle(session, account_id, campaign_id, note="campaign cancelled")
