"""The A/B test share: when an A/B campaign starts, a random `testShare` of its audience
becomes `queued` messages, dealt out in turn between the variants (`message.variant`).

"Random" is reproducible: recipients are ranked by a hash of (the campaign's seed, the
contact id) computed in SQL, the same on SQLite and PostgreSQL (64-bit integer arithmetic:
an affine map then two squarings modulo the prime 2^31 - 1, which scatter neighbouring ids;
every product stays below 2^63). The first `test_size` of that ranking are the test, one
`INSERT ... SELECT` for the whole share, in the transaction that stamps `ab_test_at` with the
campaign row locked, so the share is queued exactly once. The rest of the audience is
materialized by `materialize.py` once the winner is known, leaving the test share out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import ContactList
from clarion.campaigns import variants, wakeups
from clarion.campaigns.models import Campaign
from clarion.db.base import UTCDateTime, utcnow
from clarion.db.plans import without_nested_loops
from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.messages import tally

_UTC = UTCDateTime()
_PRIME = 2_147_483_647  # 2^31 - 1
_MULTIPLIER = 1_103_515_245


def _rank_expression() -> str:
    x1 = f"(((c.id % {_PRIME}) * {_MULTIPLIER} + CAST(:s1 AS BIGINT)) % {_PRIME})"
    x2 = f"(({x1} * {x1} + CAST(:s2 AS BIGINT)) % {_PRIME})"
    return f"(({x2} * {x2} + CAST(:s1 AS BIGINT)) % {_PRIME})"


_AUDIENCE = """
FROM contact c
WHERE c.account_id = :account_id
  AND c.id IN (SELECT lm.contact_id FROM list_member lm WHERE lm.list_id IN :lists)
  AND NOT EXISTS (SELECT 1 FROM list_member lx
                  WHERE lx.list_id IN :excluded AND lx.contact_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM contact_opt_out o
                  WHERE o.contact_id = c.id AND o.channel = :channel)
"""

_COUNT = "SELECT count(*) " + _AUDIENCE


def _insert_sql(n_variants: int) -> str:
    deal = " ".join(f"WHEN {i} THEN CAST(:v{i} AS VARCHAR(32))" for i in range(n_variants))
    return f"""
INSERT INTO message (campaign_id, account_id, contact_id, phone, country, channel, status,
                     units, price, attempts, next_attempt_at, created_at, updated_at, variant)
SELECT CAST(:campaign_id AS BIGINT), CAST(:account_id AS BIGINT), r.id, r.phone, r.country,
       CAST(:channel AS VARCHAR(16)), 'queued', 0, 0, 0, :now, :now, :now,
       CASE ((r.rn - 1) % {n_variants}) {deal} END
FROM (
    SELECT c.id, c.phone, c.country, row_number() OVER (ORDER BY {_rank_expression()}, c.id) AS rn
    {_AUDIENCE}
) AS r
WHERE r.rn <= :size
ORDER BY r.id
"""


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


async def _owned(session: AsyncSession, account_id: int, ids: list[int]) -> list[int]:
    if not ids:
        return []
    rows = await session.execute(
        select(ContactList.id).where(ContactList.account_id == account_id, ContactList.id.in_(ids))
    )
    return list(rows.scalars())


async def materialize_test(session: AsyncSession, campaign_id: int, now: datetime) -> int | None:
    """Queue the campaign's test share in the caller's transaction, the campaign row locked
    first. Returns how many messages, None when there is no test to queue (any more)."""
    campaign = (
        await session.execute(
            select(Campaign)
            .where(Campaign.id == campaign_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if (
        campaign is None
        or campaign.status != "sending"
        or campaign.ab_seed is None
        or campaign.ab_test_at is not None
        or campaign.ab_winner is not None
    ):
        return None
    names = variants.names(campaign.variants)
    lists = await _owned(session, campaign.account_id, list(campaign.list_ids or []))
    excluded = await _owned(session, campaign.account_id, list(campaign.exclude_list_ids or []))
    params: dict[str, Any] = {
        "campaign_id": campaign.id,
        "account_id": campaign.account_id,
        "channel": campaign.channel,
        "lists": lists or [-1],
        "excluded": excluded or [-1],
        "now": now,
        "s1": campaign.ab_seed % _PRIME,
        "s2": (campaign.ab_seed // _PRIME) % _PRIME,
        **{f"v{i}": name for i, name in enumerate(names)},
    }
    expanding: tuple[Any, ...] = (
        bindparam("lists", expanding=True),
        bindparam("excluded", expanding=True),
    )
    inserted = 0
    async with without_nested_loops(session):
        audience = int(
            (
                await session.execute(
                    text(_COUNT).bindparams(*expanding),
                    {k: params[k] for k in ("account_id", "lists", "excluded", "channel")},
                )
            ).scalar_one()
        )
        size = variants.test_size(
            audience, float((campaign.ab_test or {})["testShare"]), len(names)
        )
        if size:
            stmt = text(_insert_sql(len(names))).bindparams(
                *expanding, bindparam("now", type_=_UTC)
            )
            result: Any = await session.execute(stmt, {**params, "size": size})
            inserted = max(int(result.rowcount or 0), 0)
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


async def materialize_tests(db: Database) -> int:
    """Queue the test share of every A/B campaign that started; returns the messages."""
    async with db.session(write=False) as session:
        ids = await tests_to_materialize(session)
    total = 0
    for campaign_id in ids:

        async def work(session: AsyncSession, cid: int = campaign_id) -> int | None:
            return await materialize_test(session, cid, utcnow())

        inserted = await in_transaction(db, work)
        total += inserted or 0
    return total
