"""The materializer: a `sending` campaign's audience becomes `queued` messages.

One chunk of audience members (a range of contact ids) per transaction, one
`INSERT ... SELECT` per chunk (with trackLinks, one more INSERT for the chunk's links,
`clarion.links.service.create_for_chunk`); the transaction also moves the campaign's progress marker
(`materialized_through`) past the chunk, so an interrupted run resumes after the last
committed chunk and never inserts a recipient twice. Two materializers of one campaign take
turns on the campaign row's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, bindparam, exists, func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clarion.audience.models import Contact
from clarion.campaigns import schedule, wakeups
from clarion.campaigns.audience import Audience, audience_of
from clarion.campaigns.consent import consent_required
from clarion.campaigns.models import Campaign
from clarion.campaigns.repository import (
    CapFilter,
    audience_where,
    owned_list_ids,
    recipients_where,
)
from clarion.compliance import service as compliance
from clarion.compliance.settings import FrequencyCap
from clarion.db.base import UTCDateTime, utcnow
from clarion.db.dialect import is_postgres
from clarion.db.plans import without_nested_loops
from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.links import service as links
from clarion.messages import tally
from clarion.messages.models import Message
from clarion.sending import abtest, repository
from clarion.sending.gate import hold_chunk

_UTC = UTCDateTime()


# --- queries --------------------------------------------------------------------------------


def _not_waiting_for_a_winner() -> Any:
    """An A/B campaign's audience (beyond its test share, `sending/abtest.py`) waits for
    the winner: its message is not known before."""
    return or_(Campaign.ab_seed.is_(None), Campaign.ab_winner.is_not(None))


async def campaigns_to_materialize(session: AsyncSession) -> list[int]:
    rows = await session.execute(
        select(Campaign.id)
        .where(
            Campaign.status == "sending",
            Campaign.materialized_at.is_(None),
            _not_waiting_for_a_winner(),
        )
        .order_by(Campaign.id)
    )
    return list(rows.scalars())


@dataclass(slots=True)
class ChunkResult:
    inserted: int
    done: bool


_CHUNK_END = """
SELECT max(contact_id) FROM (
    SELECT lm.contact_id FROM list_member lm
    WHERE lm.list_id IN :lists AND lm.contact_id > :after
    ORDER BY lm.contact_id LIMIT :chunk
) AS chunk
"""

# Driven from the lists' primary key (list_id, contact_id) over the chunk's id range, each
# contact then found by its primary key; the exclusions and opt-outs are read within the
# same range. On PostgreSQL it is planned without nested loops (`db/plans.py`): right after
# an import, with no statistics (or stale ones), a nested loop joined the whole chunk once
# per contact (one 50,000-contact chunk: 494 s; planned with hash joins: under 1 s, the
# same as with fresh statistics). Sorted (one chunk, in memory) so that message ids follow
# the recipients' order whatever the join.
_MATERIALIZE = """
INSERT INTO message (campaign_id, account_id, contact_id, phone, country, channel, status,
                     units, price, attempts, next_attempt_at, created_at, updated_at, variant)
SELECT CAST(:campaign_id AS BIGINT), CAST(:account_id AS BIGINT), c.id, c.phone, c.country,
       CAST(:channel AS VARCHAR(16)), 'queued', 0, 0, 0, :now, :now, :now,
       CAST(:variant AS VARCHAR(32))
FROM (
    SELECT DISTINCT lm.contact_id FROM list_member lm
    WHERE lm.list_id IN :lists AND lm.contact_id > :after AND lm.contact_id <= :upto
) AS audience
JOIN contact c ON c.id = audience.contact_id
WHERE c.account_id = :account_id AND c.id > :after AND c.id <= :upto
  AND NOT EXISTS (SELECT 1 FROM list_member lx
                  WHERE lx.list_id IN :excluded AND lx.contact_id = c.id
                    AND lx.contact_id > :after AND lx.contact_id <= :upto)
  AND NOT EXISTS (SELECT 1 FROM contact_opt_out o
                  WHERE o.contact_id = c.id AND o.channel = :channel
                    AND o.contact_id > :after AND o.contact_id <= :upto)
{remainder}
  {consent}
{capped}
ORDER BY c.id
"""
# Marketing campaigns of an account that requires consent: only contacts that granted it.
_GRANTED = """AND EXISTS (SELECT 1 FROM contact_consent g
                  WHERE g.contact_id = c.id AND g.channel = :channel AND g.status = 'granted'
                    AND g.contact_id > :after AND g.contact_id <= :upto)"""

# An A/B campaign's remainder: the audience but its test share, already queued (found by
# the message table's (campaign_id, contact_id) key; a hash anti-join over the chunk).
_NOT_IN_TEST = """AND NOT EXISTS (SELECT 1 FROM message t
                  WHERE t.campaign_id = :campaign_id AND t.contact_id = c.id
                    AND t.contact_id > :after AND t.contact_id <= :upto)"""

# A marketing campaign of an account with a frequency cap leaves out the contacts who
# reached it (one probe per recipient of the recent sends' index: account, contact,
# sent_at). Those who reach it later are skipped at the moment of sending.
_NOT_CAPPED = """
  AND (SELECT count(*) FROM message r JOIN campaign k ON k.id = r.campaign_id
       WHERE r.account_id = :account_id AND r.contact_id = c.id
         AND r.sent_at IS NOT NULL AND r.sent_at >= :cap_since
         AND k.purpose = 'marketing') < :cap_messages
"""


@dataclass(slots=True)
class Chunk:
    """One range of a campaign's audience by contact id: (after, upto]. `upto` None: no
    member is left after `after`, the audience is complete."""

    campaign_id: int
    account_id: int
    channel: str
    lists: list[int]
    excluded: list[int]
    after: int
    upto: int | None
    audience: Audience
    # An A/B campaign's remainder: the winner's name, and its test share is left out.
    variant: str | None = None
    need_consent: bool = False
    cap: FrequencyCap | None = None  # marketing campaigns of an account with a cap
    # trackLinks: the text whose URLs become links (an A/B campaign's: the winner's), and
    # the values of its other variables.
    link_text: str | None = None
    params: dict[str, Any] | None = None


# A campaign with segments or a filter: its audience is `audience_where` (the clause the
# estimate counts with), the chunks being ranges of the matching contacts' ids, its
# recipients `recipients_where` (the A/B test share's too).


async def _filtered_chunk_end(
    session: AsyncSession, audience: Audience, after: int, chunk: int
) -> int | None:
    ids = (
        select(Contact.id)
        .where(*audience_where(session, audience), Contact.id > after)
        .order_by(Contact.id)
        .limit(chunk)
        .subquery()
    )
    return (await session.execute(select(func.max(ids.c.id)))).scalar_one_or_none()


async def _insert_filtered_chunk(session: AsyncSession, chunk: Chunk, now: datetime) -> int:
    assert chunk.upto is not None
    where = recipients_where(
        session,
        chunk.audience,
        chunk.channel,
        need_consent=chunk.need_consent,
        cap=_cap_filter(chunk, now),
    )
    if chunk.variant is not None:
        # An A/B campaign's remainder: not the test share, already queued (the message
        # table's (campaign_id, contact_id) key, within the chunk's range).
        test = aliased(Message)
        where.append(
            ~exists().where(
                test.campaign_id == chunk.campaign_id,
                test.contact_id == Contact.id,
                test.contact_id > chunk.after,
                test.contact_id <= chunk.upto,
            )
        )
    contacts = select(
        Contact.id,
        Contact.phone,
        Contact.country,
        literal(chunk.variant, String(32)).label("variant"),
    ).where(*where, Contact.id > chunk.after, Contact.id <= chunk.upto)
    return await repository.queue_contacts(
        session,
        contacts,
        campaign_id=chunk.campaign_id,
        account_id=chunk.account_id,
        channel=chunk.channel,
        now=now,
    )


def _cap_filter(chunk: Chunk, now: datetime) -> CapFilter | None:
    return None if chunk.cap is None else schedule.cap_window(chunk.cap, now)


async def plan_chunk(
    session: AsyncSession, campaign_id: int, chunk: int, after: int | None = None
) -> Chunk | None:
    """The next range of up to `chunk` audience members after `after` (default: after the
    committed `materialized_through`). None when the campaign is not to be materialized
    (any more). Takes no lock: `advance_chunk` checks that nothing moved meanwhile."""
    campaign = (
        await session.execute(
            select(Campaign).where(
                Campaign.id == campaign_id,
                Campaign.status == "sending",
                Campaign.materialized_at.is_(None),
                _not_waiting_for_a_winner(),
            )
        )
    ).scalar_one_or_none()
    if campaign is None:
        return None
    if after is None:
        after = campaign.materialized_through or 0
    lists = await owned_list_ids(session, campaign.account_id, campaign.list_ids or [])
    excluded = await owned_list_ids(session, campaign.account_id, campaign.exclude_list_ids or [])
    audience = audience_of(campaign, lists, excluded)
    upto = None
    if not audience.lists_only:
        upto = await _filtered_chunk_end(session, audience, after, chunk)
    elif lists:
        upto = (
            await session.execute(
                text(_CHUNK_END).bindparams(bindparam("lists", expanding=True)),
                {"lists": lists, "after": after, "chunk": chunk},
            )
        ).scalar_one_or_none()
    need_consent = await consent_required(session, campaign.account_id, campaign.purpose)
    cap = None
    if campaign.purpose == "marketing":
        cap = (await compliance.settings_for(session, campaign.account_id)).frequency_cap
    # An A/B campaign's remainder is sent the winner's message.
    message = campaign.message or {}
    for variant in campaign.variants or []:
        if variant["name"] == campaign.ab_winner:
            message = variant.get("message") or {}
    link_text = None
    if campaign.track_links:
        link_text = await links.tracked_text(
            session, campaign.account_id, campaign.channel, message
        )
    return Chunk(
        campaign.id,
        campaign.account_id,
        campaign.channel,
        lists,
        excluded,
        after,
        upto,
        audience,
        campaign.ab_winner,
        need_consent,
        cap,
        link_text=link_text,
        params=dict(message.get("templateParams") or {}),
    )


async def insert_chunk(session: AsyncSession, chunk: Chunk, now: datetime) -> int:
    """Insert the chunk's recipients as `queued` messages; returns how many.

    No ON CONFLICT clause: without it PostgreSQL skips speculative insertion, a third of the
    cost of a 1,000,000-row campaign. A chunk is inserted exactly once because its
    transaction also moves `materialized_through` from `after` to `upto` (`advance_chunk`);
    the unique (campaign_id, contact_id) stays as the backstop: a duplicate would abort the
    chunk, never be stored."""
    assert chunk.upto is not None
    if is_postgres(session):
        # The statement is prepared once per connection; from its sixth run PostgreSQL may
        # switch to a generic plan, which does not see the chunk's narrow id range: each
        # chunk is planned for its own range instead.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if not chunk.audience.lists_only:
        return await _insert_filtered_chunk(session, chunk, now)
    sql = _MATERIALIZE.format(
        remainder=_NOT_IN_TEST if chunk.variant is not None else "",
        consent=_GRANTED if chunk.need_consent else "",
        capped=_NOT_CAPPED if chunk.cap is not None else "",
    )
    stmt = text(sql).bindparams(
        bindparam("lists", expanding=True),
        bindparam("excluded", expanding=True),
        bindparam("now", type_=_UTC),
    )
    if chunk.cap is not None:
        stmt = stmt.bindparams(bindparam("cap_since", type_=_UTC))
    params = {
        "campaign_id": chunk.campaign_id,
        "account_id": chunk.account_id,
        "channel": chunk.channel,
        "after": chunk.after,
        "upto": chunk.upto,
        "lists": chunk.lists,
        "excluded": chunk.excluded or [-1],
        "now": now,
        "variant": chunk.variant,
    }
    cap = _cap_filter(chunk, now)
    if cap is not None:
        params["cap_since"], params["cap_messages"] = cap.since, cap.messages
    async with without_nested_loops(session):
        result: Any = await session.execute(stmt, params)
    return max(int(result.rowcount or 0), 0)


async def advance_chunk(session: AsyncSession, chunk: Chunk, inserted: int, now: datetime) -> bool:
    """Move the progress marker past the chunk (or mark the audience complete when `upto` is
    None) and the counters by what it inserted, if the campaign is still `sending` with its
    marker where the chunk started. False: something moved (a pause, a cancel, another
    materializer); the caller rolls the chunk back."""
    values: dict[str, Any] = {"updated_at": now}
    if chunk.upto is None:
        values["materialized_at"] = now
    else:
        values["materialized_through"] = chunk.upto
    moved = await session.execute(
        update(Campaign)
        .where(
            Campaign.id == chunk.campaign_id,
            Campaign.status == "sending",
            Campaign.materialized_at.is_(None),
            func.coalesce(Campaign.materialized_through, 0) == chunk.after,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if cast(Any, moved).rowcount != 1:
        return False
    await tally.move(session, chunk.campaign_id, {"queued": inserted}, recipients=inserted)
    if inserted:
        await wakeups.engine_has_work(session)  # senders everywhere: messages are queued
    return True


async def materialize_chunk(
    session: AsyncSession, campaign_id: int, chunk: int, now: datetime
) -> ChunkResult | None:
    """Plan, insert and advance one chunk in the caller's transaction, the campaign row
    locked first (so two materializers take turns). Returns None when the campaign is not to
    be materialized (any more)."""
    locked = await session.execute(
        select(Campaign.id).where(Campaign.id == campaign_id).with_for_update()
    )
    if locked.scalar_one_or_none() is None:
        return None
    planned = await plan_chunk(session, campaign_id, chunk)
    if planned is None:
        return None
    inserted = 0 if planned.upto is None else await insert_chunk(session, planned, now)
    if inserted and planned.upto is not None:  # outside their sending hours: due later
        await hold_chunk(session, campaign_id, planned.after, planned.upto, now)
    if inserted and planned.link_text is not None:
        assert planned.upto is not None
        await links.create_for_chunk(
            session,
            campaign_id=planned.campaign_id,
            account_id=planned.account_id,
            text=planned.link_text,
            params=planned.params or {},
            after=planned.after,
            upto=planned.upto,
            variant=planned.variant,
        )
    if not await advance_chunk(session, planned, inserted, now):  # pragma: no cover - locked
        raise RuntimeError("the campaign moved under its lock")
    return ChunkResult(inserted, planned.upto is None)


# --- driver ---------------------------------------------------------------------------------


# The first chunk is small so that the first messages are queued (and sent) at once rather
# than after a 50,000-row insert (seconds on a busy machine); chunks then double up to the
# configured size (a million recipients: six more statements).
FIRST_CHUNK = 1_000


async def materialize(
    db: Database, campaign_id: int, chunk: int, clock: Callable[[], datetime] = utcnow
) -> int:
    """Materialize a campaign's audience, one committed chunk after the other, each in a
    write transaction of its own. Returns the messages created by this call."""
    total = 0
    size = min(chunk, FIRST_CHUNK)
    while True:

        async def work(session: AsyncSession, size: int = size) -> ChunkResult | None:
            return await materialize_chunk(session, campaign_id, size, clock())

        result = await in_transaction(db, work)
        if result is None or result.done:
            return total
        total += result.inserted
        size = min(chunk, size * 2)


async def materialize_pending(
    db: Database, chunk: int, clock: Callable[[], datetime] = utcnow
) -> int:
    """Queue what is due: A/B test shares first (`sending/abtest.py`), then audiences."""
    total = await abtest.materialize_tests(db, chunk)
    async with db.session(write=False) as session:
        ids = await campaigns_to_materialize(session)
    for campaign_id in ids:
        total += await materialize(db, campaign_id, chunk, clock)
    return total
