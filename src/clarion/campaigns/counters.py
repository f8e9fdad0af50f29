"""The campaign's delivery counters: a partition of its recipients by message status, plus
the credits it spent and still holds in reserve.

Whoever moves messages between statuses appends one balanced `CampaignTally` row per
campaign with the net change (`move`), in the same transaction. Nobody updates the campaign
row per batch: with many workers on one campaign that row was the lock every batch waited
for (and, locked in varying orders across campaigns, a source of deadlocks). The scheduler
folds the tallies into the row (`fold`); readers add what is not folded yet (`pending`), so
what they see is exact at every instant.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns.models import Campaign, CampaignTally
from clarion.db.dialect import is_postgres

STATUSES = ("queued", "sending", "sent", "delivered", "read", "failed", "skipped")
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


async def pending(session: AsyncSession, campaign_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """What is appended but not folded yet, per campaign (campaigns with none are absent)."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(
            CampaignTally.campaign_id,
            *[func.sum(getattr(CampaignTally, c)).label(c) for c in COLUMNS],
        )
        .where(CampaignTally.campaign_id.in_(ids))
        .group_by(CampaignTally.campaign_id)
    )
    return {row.campaign_id: {c: int(row._mapping[c] or 0) for c in COLUMNS} for row in rows}


def live(campaign: Campaign, unfolded: Mapping[str, int] | None) -> dict[str, int]:
    """The campaign's counters as of now: its row plus what is not folded yet."""
    extra = unfolded or {}
    return {c: int(getattr(campaign, c) or 0) + extra.get(c, 0) for c in COLUMNS}


async def with_tallies(session: AsyncSession) -> list[int]:
    """Campaigns that have tallies to fold."""
    rows = await session.execute(select(CampaignTally.campaign_id).distinct())
    return sorted(rows.scalars())


_FOLD_PG = text(
    "WITH gone AS (DELETE FROM campaign_tally WHERE campaign_id = :id RETURNING *), "
    "total AS (SELECT "
    + ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in COLUMNS)
    + " FROM gone) UPDATE campaign SET "
    + ", ".join(f'"{c}" = campaign."{c}" + total.{c}' for c in COLUMNS)
    + " FROM total WHERE campaign.id = :id"
)


async def fold(session: AsyncSession, campaign_id: int, *, locked: bool = False) -> bool:
    """Move the campaign's tallies into its row. Returns False, doing nothing, when another
    transaction holds the campaign row (it is folded on a later round), unless the caller
    already holds that lock (`locked`)."""
    if is_postgres(session):
        if not locked:
            got = await session.execute(
                select(Campaign.id)
                .where(Campaign.id == campaign_id)
                .with_for_update(skip_locked=True)
            )
            if got.scalar_one_or_none() is None:
                return False
        # One statement: the rows deleted are exactly the rows summed (the same snapshot).
        await session.execute(_FOLD_PG, {"id": campaign_id})
        return True
    # SQLite: this transaction is the only writer, so reading then deleting is exact.
    sums = (
        await session.execute(
            select(*[func.coalesce(func.sum(getattr(CampaignTally, c)), 0) for c in COLUMNS]).where(
                CampaignTally.campaign_id == campaign_id
            )
        )
    ).one()
    await session.execute(delete(CampaignTally).where(CampaignTally.campaign_id == campaign_id))
    values = {c: getattr(Campaign, c) + int(v) for c, v in zip(COLUMNS, sums, strict=True) if v}
    if values:
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
    return True
