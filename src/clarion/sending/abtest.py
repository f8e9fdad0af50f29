"""The A/B test share: when an A/B campaign starts, a random `testShare` of its audience
becomes `queued` messages, dealt out in turn between the variants (`message.variant`).

The audience is the one any campaign with the same targeting is sent to
(`campaigns.repository.recipients_where`: lists and segments, the filter, exclusion lists,
opt-outs, consent and the frequency cap), so the test and the remainder cover exactly it.

"Random" is reproducible: recipients are ranked by a hash of (the campaign's seed, the
contact id) computed in SQL, the same on SQLite and PostgreSQL (64-bit integer arithmetic:
an affine map then two squarings modulo the prime 2^31 - 1, which scatter neighbouring ids;
every product stays below 2^63). The first `test_size` of that ranking are the test, one
`INSERT ... SELECT` for the whole share, in the transaction that stamps `ab_test_at` with the
campaign row locked, so the share is queued exactly once. With trackLinks, the same
transaction makes each variant's short links for its messages. The rest of the audience is
materialized by `materialize.py` once the winner is known, leaving the test share out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, case, cast, func, literal, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import Contact
from clarion.campaigns import repository as campaigns
from clarion.campaigns import schedule, variants, wakeups
from clarion.campaigns.audience import audience_of
from clarion.campaigns.consent import consent_required
from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.links import service as links
from clarion.messages import tally
from clarion.sending import repository

_PRIME = 2_147_483_647  # 2^31 - 1
_MULTIPLIER = 1_103_515_245


def _rank(seed: int) -> Any:
    """The contact's place in the campaign's random order (see the module docstring)."""
    prime = literal_column(str(_PRIME), BigInteger)
    s1 = cast(literal(seed % _PRIME), BigInteger)
    s2 = cast(literal((seed // _PRIME) % _PRIME), BigInteger)
    x1 = ((Contact.id % prime) * literal_column(str(_MULTIPLIER), BigInteger) + s1) % prime
    x2 = (x1 * x1 + s2) % prime
    return (x2 * x2 + s1) % prime


def _test_share(where: list[Any], seed: int, names: list[str], size: int) -> Any:
    """The first `size` recipients of the ranking, each with its variant (dealt in turn)."""
    ranked = (
        select(
            Contact.id,
            Contact.phone,
            Contact.country,
            func.row_number().over(order_by=(_rank(seed), Contact.id)).label("rn"),
        )
        .where(*where)
        .subquery()
    )
    deal = case(
        {i: literal(name, String(32)) for i, name in enumerate(names)},
        value=(ranked.c.rn - 1) % len(names),
    )
    return select(ranked.c.id, ranked.c.phone, ranked.c.country, deal.label("variant")).where(
        ranked.c.rn <= size
    )


async def tests_to_materialize(session: AsyncSession) -> list[int]:
    rows = await session.execute(
        select(Campaign.id)
        .where(
            Campaign.status == "sending",
            Campaign.ab_seed.is_not(None),
            Campaign.ab_test_at.is_(None),
            Campaign.ab_winner.is_(None),
        )
        .order_by(Campaign.id)
    )
    return list(rows.scalars())


async def _link_test_share(session: AsyncSession, campaign: Campaign, chunk: int) -> None:
    """Each variant's test messages get the short links of that variant's text, a range of
    at most `chunk` test messages at a time (memory stays flat, as in the materializer)."""
    texts: list[tuple[str, str, dict[str, Any]]] = []
    for variant in campaign.variants or []:
        message = variant.get("message") or {}
        text = await links.tracked_text(session, campaign.account_id, campaign.channel, message)
        if text is not None:
            texts.append((str(variant["name"]), text, dict(message.get("templateParams") or {})))
    after = 0
    while texts:
        upto = await repository.messages_range_end(session, campaign.id, after, chunk)
        if upto is None:
            return
        for name, text, params in texts:
            await links.create_for_chunk(
                session,
                campaign_id=campaign.id,
                account_id=campaign.account_id,
                text=text,
                params=params,
                after=after,
                upto=upto,
                variant=name,
            )
        after = upto


async def materialize_test(
    session: AsyncSession, campaign_id: int, now: datetime, chunk: int
) -> int | None:
    """Queue the campaign's test share in the caller's transaction, the campaign row locked
    first (`chunk`: how many of its messages get their links at a time). Returns how many
    messages, None when there is no test to queue (any more)."""
    campaign = await campaigns.lock_campaign(session, campaign_id)
    if (
        campaign is None
        or campaign.status != "sending"
        or campaign.ab_seed is None
        or campaign.ab_test_at is not None
        or campaign.ab_winner is not None
    ):
        return None
    names = variants.names(campaign.variants)
    lists = await campaigns.owned_list_ids(session, campaign.account_id, campaign.list_ids or [])
    excluded = await campaigns.owned_list_ids(
        session, campaign.account_id, campaign.exclude_list_ids or []
    )
    audience = audience_of(campaign, lists, excluded)
    inserted = 0
    if not audience.empty:
        settings = await schedule.settings_of(session, campaign)
        where = campaigns.recipients_where(
            session,
            audience,
            campaign.channel,
            need_consent=await consent_required(session, campaign.account_id, campaign.purpose),
            cap=schedule.cap_filter(campaign, settings, now),
        )
        size = variants.test_size(
            await campaigns.recipients_count(session, where),
            float((campaign.ab_test or {})["testShare"]),
            len(names),
        )
        if size:
            inserted = await repository.queue_contacts(
                session,
                _test_share(where, campaign.ab_seed, names, size),
                campaign_id=campaign.id,
                account_id=campaign.account_id,
                channel=campaign.channel,
                now=now,
            )
    if inserted and campaign.track_links:
        await _link_test_share(session, campaign, chunk)
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(ab_test_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if inserted:
        await tally.move(session, campaign.id, {"queued": inserted}, recipients=inserted)
        await wakeups.engine_has_work(session)
    return inserted


async def materialize_tests(db: Database, chunk: int) -> int:
    """Queue the test share of every A/B campaign that started; returns the messages."""
    async with db.session(write=False) as session:
        ids = await tests_to_materialize(session)
    total = 0
    for campaign_id in ids:

        async def work(session: AsyncSession, cid: int = campaign_id) -> int | None:
            return await materialize_test(session, cid, utcnow(), chunk)

        inserted = await in_transaction(db, work)
        total += inserted or 0
    return total
