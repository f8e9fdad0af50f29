"""Consent to marketing per contact and channel. Every change is written to the contact's
history; setting what a contact already has changes nothing and writes nothing."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience import history, repository
from clarion.audience.history import Cause
from clarion.audience.schemas import Channel, ConsentIn, ConsentOut


@dataclass(frozen=True, slots=True)
class Wanted:
    """One consent to set."""

    contact_id: int
    channel: str
    status: str
    at: datetime | None = None  # None: now
    proof: str | None = None


def wanted_of(contact_id: int, given: dict[Channel, ConsentIn]) -> list[Wanted]:
    return [
        Wanted(contact_id, channel, c.status, c.at, c.proof) for channel, c in sorted(given.items())
    ]


async def set_consents(
    session: AsyncSession, wanted: Iterable[Wanted], cause: Cause, now: datetime
) -> int:
    """Store the consents that differ from what the contacts have (status or proof), one
    history entry each. Returns how many changed. A repeated (contact, channel): the last
    one wins."""
    latest = {(w.contact_id, w.channel): w for w in wanted}
    if not latest:
        return 0
    current = await repository.consents_of(session, sorted({cid for cid, _ in latest}))
    changed = [
        w
        for (cid, channel), w in latest.items()
        if (had := current.get(cid, {}).get(channel)) is None
        or had.status != w.status
        or (w.proof is not None and had.proof != w.proof)
    ]
    if not changed:
        return 0
    await repository.replace_consents(
        session,
        [
            {
                "contact_id": w.contact_id,
                "channel": w.channel,
                "status": w.status,
                "at": w.at or now,
                "source": cause.source,
                "proof": w.proof,
            }
            for w in changed
        ],
    )
    for w in changed:
        await history.record(
            session,
            [w.contact_id],
            "consent",
            w.channel,
            cause,
            status=w.status,
            detail=w.proof,
            at=now,
        )
    return len(changed)


async def consents_out(
    session: AsyncSession, contact_ids: Sequence[int]
) -> dict[int, dict[str, ConsentOut]]:
    """contact id -> channel -> its consent (channels never asked are absent)."""
    rows = await repository.consents_of(session, contact_ids)
    return {
        cid: {
            channel: ConsentOut(status=c.status, at=c.at, source=c.source, proof=c.proof)
            for channel, c in sorted(rows.get(cid, {}).items())
        }
        for cid in contact_ids
    }
