"""Accepted messages whose final receipt never comes turn `expired`.

A provider that accepted a message owes a final receipt; some never send one (a carrier
without delivery reports, a lost callback). After `CLARION_RECEIPT_TIMEOUT` seconds a `sent`
message becomes `expired`, so that campaigns' statistics say so instead of `sent` forever.
The sweep is bounded per call and runs on the scheduler's tick; `now` is given by the caller
(the rule depends on time, so tests drive it). A receipt that arrives later still applies
(see `states.TRANSITIONS`).
"""

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns import counters
from clarion.delivery import repository

SWEEP_LIMIT = 5000  # messages per call: one short transaction, whatever the backlog


async def expire_overdue(
    session: AsyncSession, now: datetime, timeout: timedelta, limit: int = SWEEP_LIMIT
) -> int:
    """Expire what waited longer than `timeout` for its final receipt, in the caller's
    transaction, counters moved in step. Returns how many messages expired."""
    expired = await repository.expire_overdue(session, now - timeout, now, limit)
    per_campaign = Counter(cid for cid, contact_id in expired if contact_id is not None)
    for campaign_id in sorted(per_campaign):  # a stable order: concurrent writers never deadlock
        k = per_campaign[campaign_id]
        await counters.move(session, campaign_id, {"sent": -k, "expired": k})
    return len(expired)
