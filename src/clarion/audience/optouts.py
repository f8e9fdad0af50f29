"""Opt-outs per channel. Every change is also recorded as an event with its source."""

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import Contact, ContactOptOut, OptOutEvent

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
    existing = set(
        (
            await session.execute(
                select(ContactOptOut.contact_id).where(
                    ContactOptOut.contact_id.in_(contact_ids), ContactOptOut.channel == channel
                )
            )
        ).scalars()
    )
    new = [cid for cid in dict.fromkeys(contact_ids) if cid not in existing]
    if new:
        await session.execute(
            insert(ContactOptOut),
            [{"contact_id": cid, "channel": channel, "source": source} for cid in new],
        )
    await _record(session, new, channel, "out", source, detail)
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
    removed = list(
        (
            await session.execute(
                delete(ContactOptOut)
                .where(ContactOptOut.contact_id.in_(contact_ids), ContactOptOut.channel == channel)
                .returning(ContactOptOut.contact_id)
            )
        ).scalars()
    )
    await _record(session, removed, channel, "in", source, detail)
    return len(removed)


async def _record(
    session: AsyncSession,
    contact_ids: Sequence[int],
    channel: str,
    action: str,
    source: str,
    detail: str | None,
) -> None:
    """One event per contact whose opt-out changed (one multi-row INSERT)."""
    if contact_ids:
        await session.execute(
            insert(OptOutEvent),
            [
                {
                    "contact_id": cid,
                    "channel": channel,
                    "action": action,
                    "source": source,
                    "detail": detail,
                }
                for cid in contact_ids
            ],
        )


async def contacts_with_phone(session: AsyncSession, phone: str) -> list[int]:
    """Every contact, in any account, with this E.164 phone (for inbound STOP/START)."""
    rows = await session.execute(select(Contact.id).where(Contact.phone == phone))
    return list(rows.scalars())


async def opt_outs_of(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, list[str]]:
    """contact id -> sorted list of channels it opted out of."""
    result: dict[int, list[str]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return result
    rows = await session.execute(
        select(ContactOptOut.contact_id, ContactOptOut.channel)
        .where(ContactOptOut.contact_id.in_(contact_ids))
        .order_by(ContactOptOut.contact_id, ContactOptOut.channel)
    )
    for cid, channel in rows:
        result[cid].append(channel)
    return result
