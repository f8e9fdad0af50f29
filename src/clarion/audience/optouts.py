"""Opt-outs per channel. Every change is also recorded as an event with its source."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience import hook_events, repository
from clarion.db.base import utcnow

CHANNELS = ("sms", "rcs", "whatsapp")


async def opt_out(
    session: AsyncSession,
    contact_ids: Sequence[int],
    channel: str,
    source: str,
    detail: str | None = None,
) -> int:
    """Opt the contacts out of `channel`. Returns how many were not opted out before."""
    if not contact_ids:
        return 0
    existing = await repository.opted_out_among(session, contact_ids, channel)
    new = [cid for cid in dict.fromkeys(contact_ids) if cid not in existing]
    await repository.add_opt_outs(session, new, channel, source)
    await repository.add_opt_out_events(session, new, channel, "out", source, detail)
    await hook_events.opt_changed(session, new, channel, "contact.opted_out", utcnow())
    return len(new)


async def opt_in(
    session: AsyncSession,
    contact_ids: Sequence[int],
    channel: str,
    source: str,
    detail: str | None = None,
) -> int:
    """Remove the channel from the contacts' opt-outs. Returns how many were opted out."""
    if not contact_ids:
        return 0
    removed = await repository.remove_opt_outs(session, contact_ids, channel)
    await repository.add_opt_out_events(session, removed, channel, "in", source, detail)
    await hook_events.opt_changed(session, removed, channel, "contact.opted_in", utcnow())
    return len(removed)


async def contacts_with_phone(session: AsyncSession, phone: str) -> list[int]:
    """Every contact, in any account, with this E.164 phone (for inbound STOP/START)."""
    return await repository.contact_ids_with_phone(session, phone)
