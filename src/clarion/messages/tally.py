"""The campaigns' counter changes that message transitions append.

Whoever moves messages between statuses appends one balanced `CampaignTally` row per
campaign with the net change (`move`, or `record` for several campaigns at once), in the
same transaction. Nobody updates the campaign row per batch: with many workers on one
campaign that row was the lock every batch waited for (and, locked in varying orders across
campaigns, a source of deadlocks). `campaigns/counters.py` folds these rows into the
campaign row and adds what is not folded yet for readers.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.messages.models import CampaignTally, MessageStatus

STATUSES = tuple(s.value for s in MessageStatus)
# Every column a tally moves: the status partition, its total, and the money.
COLUMNS = ("recipients", *STATUSES, "spent", "reserved")


@dataclass(slots=True)
class Change:
    """A net change of one campaign's counters, built up before it is written."""

    deltas: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, column: str, amount: int) -> None:
        if column not in COLUMNS:
            raise ValueError(f"unknown campaign counter {column!r}")
        self.deltas[column] += amount

    def move(self, source: str, target: str, n: int = 1) -> None:
        """n messages leave `source` for `target`."""
        self.add(source, -n)
        self.add(target, n)

    def row(self, campaign_id: int) -> dict[str, int] | None:
        values = {k: v for k, v in self.deltas.items() if v}
        return {"campaign_id": campaign_id, **values} if values else None


async def record(session: AsyncSession, changes: Mapping[int, Change]) -> None:
    """Append the changes (campaign id -> change) as tally rows: one INSERT for all."""
    rows = [r for cid in sorted(changes) if (r := changes[cid].row(cid)) is not None]
    if rows:
        full = [{c: r.get(c, 0) for c in ("campaign_id", *COLUMNS)} for r in rows]
        await session.execute(insert(CampaignTally), full)


async def move(
    session: AsyncSession,
    campaign_id: int,
    deltas: Mapping[str, int],
    *,
    recipients: int = 0,
    spent: int = 0,
    reserved: int = 0,
) -> None:
    """Append one campaign's net change, e.g. {"sending": -10, "sent": 9, "failed": 1}."""
    change = Change()
    for column, amount in deltas.items():
        if column not in STATUSES:
            raise ValueError(f"unknown message status {column!r}")
        change.add(column, amount)
    change.add("recipients", recipients)
    change.add("spent", spent)
    change.add("reserved", reserved)
    await record(session, {campaign_id: change})
