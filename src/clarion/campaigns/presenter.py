"""A campaign as the API shows it (`GET /campaigns/{id}`), with the counters not folded yet
added in: one shape for the routes, the live event feed and the hooks' campaign events."""

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns import abtest, counters
from clarion.campaigns.models import Campaign
from clarion.campaigns.schemas import (
    AbTestOut,
    ApprovalOut,
    CampaignOut,
    CampaignStats,
    CostOut,
    Purpose,
    VariantOut,
    VariantStats,
)
from clarion.compliance.schemas import WindowIn
from clarion.money import from_units


def _ab_out(c: Campaign, stats: dict[str, dict[str, int]] | None) -> dict[str, Any]:
    """The A/B fields of the campaign: its variants with their stats (None: not read), and
    the test."""
    if not c.variants:
        return {}
    ab = c.ab_test or {}
    return {
        "variants": [
            VariantOut(
                name=v["name"],
                message=v.get("message") or {},
                stats=None
                if stats is None
                else VariantStats.model_validate(stats.get(v["name"], {})),
            )
            for v in c.variants
        ],
        "ab_test": AbTestOut(
            test_share=ab.get("testShare", 0),
            metric=ab.get("metric", ""),
            decide_after_minutes=ab.get("decideAfterMinutes", 0),
            test_started_at=c.ab_test_at,
            winner=c.ab_winner,
            decided_at=c.ab_decided_at,
        ),
    }


def campaign_out(
    c: Campaign,
    unfolded: dict[str, int] | None = None,
    variant_stats: dict[str, dict[str, int]] | None = None,
    clicks: tuple[int, int] = (0, 0),
) -> CampaignOut:
    live = counters.live(c, unfolded)
    return CampaignOut(
        id=c.id,
        name=c.name,
        channel=c.channel,
        status=c.status,
        message=None if c.variants else c.message or {},
        **_ab_out(c, variant_stats),
        list_ids=c.list_ids or [],
        exclude_list_ids=c.exclude_list_ids or [],
        segment_ids=c.segment_ids or [],
        filter=c.audience_filter,
        sender=c.sender,
        fallback_channel=c.fallback_channel,
        purpose=cast(Purpose, c.purpose),
        send_window=WindowIn.model_construct(**c.send_window) if c.send_window else None,
        expires_at=c.expires_at,
        smart_encoding=c.smart_encoding,
        track_links=c.track_links,
        scheduled_at=c.scheduled_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
        confirmed_at=c.confirmed_at,
        started_at=c.started_at,
        completed_at=c.completed_at,
        estimate=c.estimate,
        stats=CampaignStats.model_validate(
            {**live, "clicks": clicks[0], "unique_clicks": clicks[1]}
        ),
        cost=CostOut(reserved=from_units(live["reserved"]), spent=from_units(live["spent"])),
        approval=ApprovalOut.model_validate(c.approval) if c.approval else None,
    )


async def present(session: AsyncSession, campaigns: Sequence[Campaign]) -> list[CampaignOut]:
    """The campaigns as the API shows them, with the counters not folded yet added in."""
    unfolded = await counters.pending(session, (c.id for c in campaigns))
    by_variant = await abtest.variant_stats(session, campaigns)
    clicks = await counters.clicks(session, campaigns)
    return [
        campaign_out(c, unfolded.get(c.id), by_variant.get(c.id, {}), clicks.get(c.id, (0, 0)))
        for c in campaigns
    ]


async def present_one(session: AsyncSession, campaign: Campaign) -> CampaignOut:
    return (await present(session, [campaign]))[0]
