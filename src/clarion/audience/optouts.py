"""Opt-outs per channel. Every change is also written to the contact's history."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience import history, hook_events, repository
from clarion.audience.history import Cause
from clarion.db.base import utcnow


async def opt_out(
    session: AsyncSession,
    contact_ids: Sequence[int],
    channel: str,
    cause: Cause,
    detail: str | None = None,
    at: datetime | None = None,
) -> int:
    """Opt the contacts out of `channel`. Returns how many were not opted out before."""
    if not contact_ids:
        return 0
    existing = await repository.opted_out_among(session, contact_ids, channel)
    new = [cid for cid in dict.fromkeys(contact_ids) if cid not in existing]
    await repository.add_opt_outs(session, new, channel, cause.source)
    await history.record(session, new, "out", channel, cause, detail=detail, at=at)
    await hook_events.opt_changed(session, new, channel, "contact.opted_out", at or utcnow())
    return len(new)


async def opt_in(
    session: AsyncSession,
    contact_ids: Sequence[int],
    channel: str,
    cause: Cause,
    detail: str | None = None,
    at: datetime | None = None,
) -> int:
    """Remove the channel from the contacts' opt-outs. Returns how many were opted out."""
    if not contact_ids:
        return 0
    removed = await repository.remove_opt_outs(session, contact_ids, channel)
    await history.record(session, removed, "in", channel, cause, detail=detail, at=at)
    await hook_events.opt_changed(session, removed, channel, "contact.opted_in", at or utcnow())
    return len(removed)
