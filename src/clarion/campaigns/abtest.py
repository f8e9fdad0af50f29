"""A/B tests: the rules of a campaign with `variants`.

- Definition: 2 to 5 variants with unique names (case-insensitive), each message checked as
  a campaign's `message` (service.validate); `variants` and `abTest` go together and
  replace the top-level `message`.
- Sending: at start the materializer queues a random `testShare` of the audience (any
  targeting: lists, segments, filter), split evenly between the variants, each message
  with its variant's tracked links (`sending/abtest.py`); the rest waits, the campaign
  stays `sending` (it is not materialized, so it cannot complete).
- Decision: `decideAfterMinutes` after the last test message was handed over, the
  scheduler picks the variant with the best rate of the metric (`decide_if_due`); a
  manager may decide earlier (`decide_now`, while sending or paused). Either way one
  guarded UPDATE records the winner, so exactly one decision is made whoever asks at the
  same time, and in the same transaction the reservation is corrected: the remainder was
  reserved at the dearest variant's price, it now costs the winner's, and the difference
  is released (a ledger row). The materializer then queues the remainder with the winner.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.campaigns import repository, states, variants, wakeups
from clarion.campaigns.models import Campaign
from clarion.errors import Conflict, Unprocessable
from clarion.links import repository as links_repository
from clarion.messages import tally
from clarion.messages.models import MessageStatus
from clarion.money import to_units
from clarion.templates.models import Template

DELIVERED = (MessageStatus.DELIVERED.value, MessageStatus.READ.value)


def is_ab(campaign: Campaign) -> bool:
    return bool(campaign.variants)


def check_shape(campaign: Campaign, bad: Any) -> None:
    """`variants` and `abTest` together, never with a top-level message; unique names.
    `bad(field, message)` collects a 422 error."""
    if campaign.variants and campaign.message:
        bad("message", "A campaign with variants has no top-level message.")
    if campaign.variants and not campaign.ab_test:
        bad("abTest", "A campaign with variants needs abTest (testShare, metric, ...).")
    if campaign.ab_test and not campaign.variants:
        bad("variants", "abTest needs 2 to 5 variants.")
    seen: set[str] = set()
    for i, variant in enumerate(campaign.variants or []):
        key = str(variant["name"]).casefold()
        if key in seen:
            bad(f"variants[{i}].name", f"Variant name {variant['name']!r} is used twice.")
        seen.add(key)


async def variant_templates(session: AsyncSession, campaign: Campaign) -> list[Template | None]:
    """Each variant's template (None: a text message, or an unknown template)."""
    out: list[Template | None] = []
    for variant in campaign.variants or []:
        template_id = (variant.get("message") or {}).get("templateId")
        template = None
        if template_id is not None:
            template = await repository.template_of(session, campaign.account_id, template_id)
        out.append(template)
    return out


# --- presenting -----------------------------------------------------------------------------


async def variant_stats(
    session: AsyncSession, campaigns: Sequence[Campaign]
) -> dict[int, dict[str, dict[str, int]]]:
    """campaign id -> variant -> its status partition and, with tracked links, the clicks
    on its messages' links (`clicks`, `unique_clicks`: what a uniqueClicks test compares),
    for the A/B campaigns among these."""
    # Messages exist once the test share was queued, or the winner known (a decision
    # before the start sends the whole audience the winner).
    started = [c for c in campaigns if is_ab(c) and (c.ab_test_at or c.ab_winner)]
    counts = await repository.variant_counts(session, [c.id for c in started])
    clicks = await links_repository.clicks_by_variant(
        session, [c.id for c in started if c.track_links]
    )
    out: dict[int, dict[str, dict[str, int]]] = {}
    for campaign_id, by_variant in counts.items():
        clicked = clicks.get(campaign_id, {})
        out[campaign_id] = {
            name: {
                **statuses,
                "recipients": sum(statuses.values()),
                "clicks": clicked.get(name, (0, 0))[0],
                "unique_clicks": clicked.get(name, (0, 0))[1],
            }
            for name, statuses in by_variant.items()
        }
    return out


# --- deciding -------------------------------------------------------------------------------


async def _rates(
    session: AsyncSession, campaign: Campaign
) -> tuple[dict[str, int], dict[str, int]]:
    """(hits, test messages) per variant for the campaign's metric. Decided before the
    remainder is queued, so every message of a variant is one of its test messages."""
    by_variant = (await repository.variant_counts(session, [campaign.id])).get(campaign.id, {})
    sent = {name: sum(statuses.values()) for name, statuses in by_variant.items()}
    if (campaign.ab_test or {}).get("metric") == "uniqueClicks":
        # Recipients who clicked: a message counts once however many of its links were
        # clicked, however often (texts without URLs have no links: a tie).
        return await links_repository.unique_clicks_by_variant(session, campaign.id), sent
    hits = {
        name: sum(statuses.get(s, 0) for s in DELIVERED) for name, statuses in by_variant.items()
    }
    return hits, sent


def _released_by(campaign: Campaign, winner: str) -> int:
    """What the winner saves on the remainder's reservation (dearest variant's price minus
    the winner's), from the figures stored at confirm."""
    split = (campaign.estimate or {}).get("abTest")
    if not split:
        return 0
    reserved = to_units(Decimal(str(split["remainderPrice"])))
    for v in split["variants"]:
        if v["name"] == winner:
            # The estimate's own rounding (estimate.VariantPrice.share): the variant's
            # audience price, pro rata of the remainder, rounded up.
            cost = variants.ceil_share(
                to_units(Decimal(str(v["audiencePrice"]))),
                int(split["remainderRecipients"]),
                int(v["audienceRecipients"]),
            )
            return max(reserved - cost, 0)
    return 0


async def _record(session: AsyncSession, campaign: Campaign, winner: str, now: datetime) -> bool:
    """Record the winner (guarded) and correct the reservation. False: already decided."""
    if not await repository.set_winner(session, campaign.id, winner, now):
        return False
    saving = _released_by(campaign, winner)
    if saving:
        # Campaign row (locked by the caller), then the account row: the house order. The
        # workers' slices are dissolved first, so none sets aside what is given back.
        await ledger.dissolve_slices(session, campaign.account_id, campaign.id)
        held = await ledger.campaign_reserved(session, campaign.id)
        amount = min(saving, held)
        if amount > 0:
            await ledger.release(
                session,
                campaign.account_id,
                campaign.id,
                amount,
                note=f"A/B test decided: the remainder goes out as variant {winner}",
            )
            await tally.move(session, campaign.id, {}, reserved=-amount)
    await wakeups.engine_has_work(session)  # the materializer: the remainder is due
    return True


async def decide_now(session: AsyncSession, campaign: Campaign, name: str, now: datetime) -> None:
    """A manager's early decision on a campaign whose row the caller locked: 409 unless
    it is an A/B campaign sending or paused and not decided yet, 422 for an unknown name."""
    if not is_ab(campaign):
        raise Conflict("This campaign has no A/B test.")
    states.require("decide", campaign.status)
    if campaign.ab_winner is not None:
        raise Conflict(
            f"The A/B test is already decided: {campaign.ab_winner} won.",
            winner=campaign.ab_winner,
        )
    known = variants.names(campaign.variants)
    if name not in known:
        raise Unprocessable(
            f"Unknown variant {name!r}: the variants are {', '.join(known)}.", field="name"
        )
    if not await _record(session, campaign, name, now):  # pragma: no cover - row locked
        raise Conflict("The A/B test is already decided.")


async def _due(session: AsyncSession, campaign: Campaign, now: datetime) -> bool:
    """Undecided, sending, every test message handed over, and the wait over."""
    if campaign.ab_winner is not None or campaign.status != states.SENDING:
        return False
    done, last = await repository.test_handed_over(session, campaign.id)
    started = last or campaign.ab_test_at
    if not done or started is None:
        return False
    wait = timedelta(minutes=int((campaign.ab_test or {}).get("decideAfterMinutes", 0)))
    return now >= started + wait


async def decide_if_due(session: AsyncSession, campaign_id: int, now: datetime) -> str | None:
    """The scheduler's decision: once every test message was handed over and
    `decideAfterMinutes` passed since the last one, the best rate wins. Returns the
    winner when this call decided."""
    # Looked at without a lock first: a test waits for an hour or so, the scheduler looks
    # every round, and only the round that decides needs the row.
    campaign = await repository.campaign_by_id(session, campaign_id)
    if campaign is None or not await _due(session, campaign, now):
        return None
    campaign = await repository.lock_campaign(session, campaign_id)
    if campaign is None or not await _due(session, campaign, now):
        return None
    hits, sent = await _rates(session, campaign)
    winner = variants.winner(variants.names(campaign.variants), hits, sent)
    return winner if await _record(session, campaign, winner, now) else None


async def due(session: AsyncSession) -> list[int]:
    return await repository.ab_tests_to_decide(session)
