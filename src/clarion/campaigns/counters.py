"""The campaign's delivery counters: a partition of its recipients by message status, plus
the credits it spent and still holds in reserve.

Message transitions append balanced changes (`messages/tally.py`); the scheduler folds them
into the campaign row (`fold`); readers add what is not folded yet (`pending`), so what they
see is exact at every instant.
"""

from collections.abc import Iterable, Mapping

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns.models import Campaign
from clarion.db.dialect import is_postgres
from clarion.links import repository as links_repository
from clarion.messages.models import CampaignTally
from clarion.messages.tally import COLUMNS


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
    # As on SQLite (the ORM's onupdate): a fold that moved something stamps updated_at,
    # which live event streams and Last-Event-ID resumes read as the change marker.
    + ", updated_at = CASE WHEN EXISTS (SELECT 1 FROM gone) THEN now() ELSE campaign.updated_at END"
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


async def clicks(
    session: AsyncSession, campaigns: Iterable[Campaign]
) -> dict[int, tuple[int, int]]:
    """(clicks, recipients who clicked) per campaign with tracked links: outside the
    partition, summed from the clicked links (each click moves its link's counter
    atomically), plus what the links retention deleted counted (kept on the row)."""
    tracked = {c.id: c for c in campaigns if c.track_links}
    on_links = await links_repository.clicks_of_campaigns(session, sorted(tracked))
    out = {}
    for cid, c in tracked.items():
        n, unique = on_links.get(cid, (0, 0))
        out[cid] = (n + int(c.purged_clicks or 0), unique + int(c.purged_unique_clicks or 0))
    return out
