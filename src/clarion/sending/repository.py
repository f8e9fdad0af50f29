"""What the engine reads besides messages: which campaigns may have work, what an account
can still spend; and the one INSERT that queues a campaign's recipients (the materializer's
chunks and the A/B test share). (Message changes are the named transitions of
`messages/transitions.py`.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account
from clarion.audience.models import Contact, ContactConsent
from clarion.campaigns.models import Campaign
from clarion.db.base import UTCDateTime
from clarion.db.dialect import is_sqlite
from clarion.db.params import chunks, id_rows
from clarion.db.plans import without_nested_loops
from clarion.messages.models import CampaignTally, Message

_UTC = UTCDateTime()


# --- claimer --------------------------------------------------------------------------------


@dataclass(slots=True)
class ActiveCampaign:
    id: int
    account_id: int
    channel: str


async def active_campaigns(session: AsyncSession) -> list[ActiveCampaign]:
    """Campaigns that may have work to claim: `sending` (a paused or cancelled campaign is
    skipped), something queued or counters not folded yet."""
    rows = await session.execute(
        select(Campaign.id, Campaign.account_id, Campaign.channel)
        .where(
            Campaign.status == "sending",
            or_(
                Campaign.queued > 0,
                exists().where(CampaignTally.campaign_id == Campaign.id),
            ),
        )
        .order_by(Campaign.id)
    )
    return [ActiveCampaign(*row) for row in rows]


async def available_credits(session: AsyncSession, account_id: int) -> int:
    row = await session.execute(
        select(Account.balance - Account.reserved).where(Account.id == account_id)
    )
    return int(row.scalar_one_or_none() or 0)


async def cancelled_ids(session: AsyncSession, campaign_ids: Sequence[int]) -> set[int]:
    """Which of these campaigns are cancelled (their throttled or retried messages are not
    requeued: they become `skipped`)."""
    if not campaign_ids:
        return set()
    rows = await session.execute(
        select(Campaign.id).where(
            Campaign.id.in_(sorted(set(campaign_ids))), Campaign.status == "cancelled"
        )
    )
    return set(rows.scalars())


@dataclass(slots=True)
class ReplyContent:
    text: str
    sender: str | None


async def reply_contents(session: AsyncSession, ids: Sequence[int]) -> dict[int, ReplyContent]:
    """What messages of no campaign say, and who they are from."""
    rows = await session.execute(
        select(Message.id, Message.text, Message.sender).where(Message.id.in_(list(ids)))
    )
    return {int(i): ReplyContent(text or "", sender) for i, text, sender in rows}


async def without_consent(
    session: AsyncSession, contact_ids: Sequence[int], channel: str
) -> set[int]:
    """Those of the contacts that do not grant consent for the channel (now)."""
    ids = sorted(set(contact_ids))
    granted: set[int] = set()
    for start in range(0, len(ids), 900):
        rows = await session.execute(
            select(ContactConsent.contact_id).where(
                ContactConsent.contact_id.in_(ids[start : start + 900]),
                ContactConsent.channel == channel,
                ContactConsent.status == "granted",
            )
        )
        granted.update(rows.scalars())
    return set(ids) - granted


# --- materializing --------------------------------------------------------------------------


async def queue_contacts(
    session: AsyncSession,
    contacts: Select[*tuple[Any, ...]],
    *,
    campaign_id: int,
    account_id: int,
    channel: str,
    now: datetime,
) -> int:
    """Queue `contacts` (a SELECT of `id`, `phone`, `country`, `variant`) as the campaign's
    messages: one INSERT ... SELECT, sorted by contact id (one chunk, in memory) so that
    message ids follow the recipients' order whatever the plan. Returns how many."""
    source = contacts.subquery()
    at = literal(now, _UTC)
    rows = select(
        literal(campaign_id, BigInteger),
        literal(account_id, BigInteger),
        source.c.id,
        source.c.phone,
        source.c.country,
        literal(channel, String(16)),
        literal("queued", String(16)),
        literal(0, Integer),
        literal(0, BigInteger),
        literal(0, Integer),
        at,
        at,
        at,
        source.c.variant,
    ).order_by(source.c.id)
    columns = [
        Message.campaign_id,
        Message.account_id,
        Message.contact_id,
        Message.phone,
        Message.country,
        Message.channel,
        Message.status,
        Message.units,
        Message.price,
        Message.attempts,
        Message.next_attempt_at,
        Message.created_at,
        Message.updated_at,
        Message.variant,
    ]
    async with without_nested_loops(session):
        result: Any = await session.execute(insert(Message).from_select(columns, rows))
    return max(int(result.rowcount or 0), 0)


async def messages_range_end(
    session: AsyncSession, campaign_id: int, after: int, count: int
) -> int | None:
    """The largest contact id among the campaign's next `count` messages after contact
    `after` (None: none left), to work through its queued messages range by range (the
    unique (campaign_id, contact_id) key)."""
    ids = (
        select(Message.contact_id)
        .where(Message.campaign_id == campaign_id, Message.contact_id > after)
        .order_by(Message.contact_id)
        .limit(count)
        .subquery()
    )
    return (await session.execute(select(func.max(ids.c.contact_id)))).scalar_one_or_none()


# --- compliance at the moment of sending ---------------------------------------------------


@dataclass(slots=True)
class CampaignRules:
    account_id: int
    purpose: str
    send_window: dict[str, Any] | None
    expires_at: datetime | None


async def campaign_rules(session: AsyncSession, ids: Sequence[int]) -> dict[int, CampaignRules]:
    rows = await session.execute(
        select(
            Campaign.id,
            Campaign.account_id,
            Campaign.purpose,
            Campaign.send_window,
            Campaign.expires_at,
        ).where(Campaign.id.in_(sorted(set(ids))))
    )
    return {row[0]: CampaignRules(*row[1:]) for row in rows}


async def contact_places(
    session: AsyncSession, contact_ids: Sequence[int]
) -> dict[int, tuple[str | None, str | None]]:
    """contact id -> (timezone, region) as the contact says (None: from the number)."""
    out: dict[int, tuple[str | None, str | None]] = {}
    for part in chunks(sorted(set(contact_ids))):
        rows = await session.execute(
            select(Contact.id, Contact.timezone, Contact.region).where(Contact.id.in_(part))
        )
        out.update({cid: (tz, region) for cid, tz, region in rows})
    return out


async def lock_contacts_for_cap(session: AsyncSession, contact_ids: Sequence[int]) -> None:
    """Serialize frequency-cap decisions per contact until this transaction ends
    (PostgreSQL; SQLite's writers are serialized already). One statement, the locks taken
    in ascending order: no deadlock."""
    if is_sqlite(session) or not contact_ids:
        return
    keys = sorted({contact_id % 2**31 for contact_id in contact_ids})
    await session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(:space, k)) "
            "FROM (SELECT unnest(CAST(:keys AS INTEGER[])) AS k ORDER BY 1) AS ordered"
        ),
        {"space": _CAP_LOCK_SPACE, "keys": keys},
    )


_CAP_LOCK_SPACE = 0x436170  # any constant: the frequency cap's advisory lock space


async def marketing_sent_since(
    session: AsyncSession, account_id: int, contact_ids: Sequence[int], since: datetime
) -> Counter[int]:
    """Marketing messages of the account handed to a provider since `since`, per contact.

    One probe of the (account, contact, sent_at) index per contact, as a subquery for each
    contact id: the plan cannot become a scan of everything the account sent in the period
    filtered against the whole id list, which PostgreSQL's generic plan of `contact_id IN
    (...)` chose (a second per claim once a campaign had sent a few tens of thousands)."""
    counts: Counter[int] = Counter()
    for part in chunks(sorted(set(contact_ids))):
        wanted = id_rows(session, part)
        sent = (
            select(func.count())
            .select_from(Message)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(
                Message.account_id == account_id,
                Message.contact_id == wanted.c.value,
                Message.sent_at.is_not(None),  # the index's predicate
                Message.sent_at >= since,
                Campaign.purpose == "marketing",
            )
            .scalar_subquery()
        )
        rows = await session.execute(select(wanted.c.value, sent))
        counts.update({int(cid): int(n) for cid, n in rows if n})
    return counts


async def marketing_in_flight(
    session: AsyncSession, account_id: int, contact_ids: Sequence[int], besides: Sequence[int]
) -> Counter[int]:
    """Marketing messages of the account claimed by a worker (`sending`, not yet recorded),
    per contact, leaving out the messages `besides` (the batch being decided)."""
    counts: Counter[int] = Counter()
    skip = set(besides)
    for part in chunks(sorted(set(contact_ids))):
        rows = await session.execute(
            select(Message.id, Message.contact_id)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(
                Message.status == "sending",
                Message.contact_id.in_(part),
                Message.account_id == account_id,
                Campaign.purpose == "marketing",
            )
        )
        counts.update(cid for mid, cid in rows if cid is not None and mid not in skip)
    return counts


async def next_due(session: AsyncSession, campaign_ids: Sequence[int]) -> datetime | None:
    """The earliest time a queued message of these campaigns becomes due (one index probe
    per campaign: the claim's own index)."""
    soonest: datetime | None = None
    for campaign_id in campaign_ids:
        row = await session.execute(
            select(Message.next_attempt_at)
            .where(Message.campaign_id == campaign_id, Message.status == "queued")
            .order_by(Message.next_attempt_at)
            .limit(1)
        )
        value = row.scalar_one_or_none()
        if value is not None and (soonest is None or value < soonest):
            soonest = value
    return soonest


async def expiring_campaigns(session: AsyncSession, now: datetime) -> list[int]:
    """Campaigns past their `expiresAt` that still have queued messages."""
    rows = await session.execute(
        select(Campaign.id)
        .where(
            Campaign.status.in_(("sending", "paused")),
            Campaign.expires_at.is_not(None),
            Campaign.expires_at <= now,
            exists().where(Message.campaign_id == Campaign.id, Message.status == "queued"),
        )
        .order_by(Campaign.id)
    )
    return list(rows.scalars())


# --- GET /messages --------------------------------------------------------------------------

NO_CAMPAIGN = "none"


async def account_messages_page(
    session: AsyncSession,
    account_id: int,
    *,
    campaign: int | str | None,
    status: str | None,
    phone: str | None,
    channel: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Message], int]:
    """A page of the account's messages, newest first: campaign recipients and messages of
    no campaign (`campaign` NO_CAMPAIGN: only those; an id: that campaign's). Test sends
    are not listed (they are answered by POST /campaigns/{id}/test)."""
    where = [
        Message.account_id == account_id,
        or_(Message.campaign_id.is_(None), Message.contact_id.is_not(None)),
    ]
    if campaign == NO_CAMPAIGN:
        where.append(Message.campaign_id.is_(None))
    elif isinstance(campaign, int):
        where.append(Message.campaign_id == campaign)
    if status is not None:
        where.append(Message.status == status)
    if phone is not None:
        where.append(Message.phone == phone)
    if channel is not None:
        where.append(Message.channel == channel)
    total = (await session.execute(select(func.count()).where(*where))).scalar_one()
    rows = await session.execute(
        select(Message).where(*where).order_by(Message.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total)


async def materialized_place_groups(
    session: AsyncSession, campaign_id: int, after: int, upto: int, prefix_length: int
) -> list[tuple[str, str, str, str, str]]:
    """The place groups of a chunk just materialized: (country, timezone or "", region or
    "", number prefix, a phone of the group). Few rows whatever the chunk's size."""
    prefix = func.substr(Contact.phone, 1, prefix_length)
    zone, region = func.coalesce(Contact.timezone, ""), func.coalesce(Contact.region, "")
    rows = await session.execute(
        select(Contact.country, zone, region, prefix, func.min(Contact.phone))
        .join(Message, Message.contact_id == Contact.id)
        .where(
            Message.campaign_id == campaign_id,
            Message.status == "queued",
            Message.contact_id > after,
            Message.contact_id <= upto,
        )
        .group_by(Contact.country, zone, region, prefix)
    )
    return [(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in rows]
