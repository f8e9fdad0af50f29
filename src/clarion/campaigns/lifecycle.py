"""The campaign transitions the engine asks for: start when due, complete when nothing is
left, give back what a cancelled campaign still holds. Like every campaign status change,
they go through the state table (`states.py`); the engine never writes a campaign's status.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.campaigns import counters, repository


async def start_due(session: AsyncSession, now: datetime) -> list[int]:
    """Start the scheduled campaigns whose time has come; returns their ids."""
    return await repository.start_due(session, now)


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
    return True


async def cancelled_holding(session: AsyncSession) -> list[tuple[int, int]]:
    """Cancelled campaigns that still hold a reservation: (id, account id)."""
    return await repository.cancelled_holding(session)


async def release_cancelled(session: AsyncSession, campaign_id: int, account_id: int) -> None:
    """Release a cancelled campaign's reservation once nothing of it is in flight."""
    if await counters.fold(session, campaign_id) and await repository.clear_reserved(
        session, campaign_id
    ):
        await ledger.settle(session, account_id, campaign_id, note="campaign cancelled")
