"""Every query the campaigns package runs, named for what it answers. All are scoped to an
account; audience queries are set-based (one GROUP BY, or one streamed SELECT) and planned
without nested loops (`db/plans.py`), so a missing or stale statistic cannot make them
quadratic."""

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Select, cast, exists, func, outerjoin, select, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clarion.audience.models import Contact, ContactList, ContactOptOut, ListMember, OptOutEvent
from clarion.campaigns import states
from clarion.campaigns.models import Campaign
from clarion.db.dialect import is_postgres, is_sqlite
from clarion.db.plans import without_nested_loops
from clarion.links import repository as links_repository
from clarion.messages.models import CampaignTally, Message, MessageStatus
from clarion.templates.models import Template

COUNTERS = (
    "recipients",
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "skipped",
    "expired",
)


async def campaign_of(
    session: AsyncSession, account_id: int, campaign_id: int, *, for_update: bool = False
) -> Campaign | None:
    """The live (not deleted) campaign of this account. `for_update` locks the row on
    PostgreSQL so that concurrent state changes of one campaign serialize (SQLite write
    transactions are already serialized by BEGIN IMMEDIATE)."""
    stmt = select(Campaign).where(
        Campaign.id == campaign_id,
        Campaign.account_id == account_id,
        Campaign.deleted_at.is_(None),
    )
    if for_update:
        stmt = stmt.with_for_update()
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def campaigns_page(
    session: AsyncSession,
    account_id: int,
    *,
    status: str | None,
    channel: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Campaign], int]:
    where = [Campaign.account_id == account_id, Campaign.deleted_at.is_(None)]
    if status is not None:
        where.append(Campaign.status == status)
    if channel is not None:
        where.append(Campaign.channel == channel)
    total = (await session.execute(select(func.count()).where(*where))).scalar_one()
    rows = await session.execute(
        select(Campaign).where(*where).order_by(Campaign.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total)


async def lists_of(
    session: AsyncSession, account_id: int, list_ids: Sequence[int]
) -> dict[int, datetime]:
    """id -> updated_at of those of `list_ids` that exist in the account."""
    if not list_ids:
        return {}
    rows = await session.execute(
        select(ContactList.id, ContactList.updated_at).where(
            ContactList.account_id == account_id, ContactList.id.in_(list(list_ids))
        )
    )
    return {int(r[0]): r[1] for r in rows}


async def template_of(session: AsyncSession, account_id: int, template_id: int) -> Template | None:
    return (
        await session.execute(
            select(Template).where(Template.id == template_id, Template.account_id == account_id)
        )
    ).scalar_one_or_none()


def _not_excluded(contact_id: Any, exclude_ids: Sequence[int]) -> Any:
    excluded = aliased(ListMember)
    return ~exists().where(
        excluded.contact_id == contact_id, excluded.list_id.in_(list(exclude_ids))
    )


def _not_in(session: AsyncSession, column: Any, subquery: Select[Any]) -> Any:
    """`column` not among `subquery`'s ids. SQLite answers NOT IN from one in-memory index
    of the subquery, far cheaper than a probe per row; PostgreSQL plans NOT EXISTS as a
    hash anti-join (its NOT IN would degrade to a scan per row past work_mem)."""
    if is_sqlite(session):
        return column.not_in(subquery)
    inner = subquery.subquery()
    return ~exists().where(inner.c[0] == column)


def _candidates(
    session: AsyncSession, account_id: int, list_ids: Sequence[int], exclude_ids: Sequence[int]
) -> list[Any]:
    """WHERE clauses for the account's contacts in any of the lists and in no exclusion list
    (a semi-join: each contact once, however many lists hold it)."""
    members = select(ListMember.contact_id).where(ListMember.list_id.in_(list(list_ids)))
    where = [Contact.account_id == account_id, Contact.id.in_(members)]
    if exclude_ids:
        excluded = select(ListMember.contact_id).where(ListMember.list_id.in_(list(exclude_ids)))
        where.append(_not_in(session, Contact.id, excluded))
    return where


async def audience_by_country(
    session: AsyncSession, account_id: int, list_ids: Sequence[int], exclude_ids: Sequence[int]
) -> dict[str, int]:
    """Per country, the candidates: distinct contacts in the lists and in no exclusion list
    (opted out or not; opt-outs are counted apart by opted_out_by_country, as probing the
    opt-outs of a million contacts costs more than checking the lists of the few thousand
    opted-out ones)."""
    if not list_ids:
        return {}
    stmt = (
        select(Contact.country, func.count())
        .where(*_candidates(session, account_id, list_ids, exclude_ids))
        .group_by(Contact.country)
    )
    async with without_nested_loops(session):
        return {str(r[0]): int(r[1]) for r in await session.execute(stmt)}


async def memberships_of_candidates(
    session: AsyncSession, list_ids: Sequence[int], exclude_ids: Sequence[int]
) -> int:
    """How many list memberships the candidates have (duplicates = this - candidates). The
    lists belong to the account (checked on create, update and confirm)."""
    if not list_ids:
        return 0
    stmt = select(func.count()).where(ListMember.list_id.in_(list(list_ids)))
    if exclude_ids:
        excluded = aliased(ListMember)
        stmt = stmt.where(
            _not_in(
                session,
                ListMember.contact_id,
                select(excluded.contact_id).where(excluded.list_id.in_(list(exclude_ids))),
            )
        )
    async with without_nested_loops(session):
        return int((await session.execute(stmt)).scalar_one())


async def opted_out_by_country(
    session: AsyncSession,
    account_id: int,
    list_ids: Sequence[int],
    exclude_ids: Sequence[int],
    channel: str,
) -> dict[str, int]:
    """Per country: the candidates (see audience_by_country) opted out of the channel."""
    if not list_ids:
        return {}
    stmt = (
        select(Contact.country, func.count())
        .select_from(ContactOptOut)
        .join(Contact, Contact.id == ContactOptOut.contact_id)
        .where(
            ContactOptOut.channel == channel,
            Contact.account_id == account_id,
            exists().where(
                ListMember.contact_id == ContactOptOut.contact_id,
                ListMember.list_id.in_(list(list_ids)),
            ),
        )
        .group_by(Contact.country)
    )
    if exclude_ids:
        stmt = stmt.where(_not_excluded(ContactOptOut.contact_id, exclude_ids))
    async with without_nested_loops(session):
        return {str(r[0]): int(r[1]) for r in await session.execute(stmt)}


async def stream_recipient_groups(
    session: AsyncSession,
    account_id: int,
    list_ids: Sequence[int],
    exclude_ids: Sequence[int],
    channel: str,
    values: Sequence[tuple[Any, Any]],
    chunk: int = 20_000,
) -> AsyncIterator[Sequence[Row[Any]]]:
    """The recipients (candidates not opted out of the channel) as rows of
    (country, *values, count), grouped by country and by the values a personalized text
    uses. `values` pairs what to select with what to group by (e.g. a representative
    phone, grouped by its length). Streamed through a server-side cursor in chunks: memory
    stays flat however many groups there are."""
    if not list_ids:
        return
    opted_out = select(ContactOptOut.contact_id).where(ContactOptOut.channel == channel)
    where = [
        *_candidates(session, account_id, list_ids, exclude_ids),
        _not_in(session, Contact.id, opted_out),
    ]
    stmt = (
        select(Contact.country, *[s for s, _ in values], func.count())
        .where(*where)
        .group_by(Contact.country, *[g for _, g in values])
    )
    connection = await session.connection()
    async with without_nested_loops(session):  # planned when the cursor opens
        result = await connection.stream(stmt.execution_options(yield_per=chunk))
    async for partition in result.partitions(chunk):
        yield partition


async def opt_out_state(session: AsyncSession, account_id: int, channel: str) -> tuple[Any, ...]:
    """A cheap summary that changes whenever an opt-out of the channel is added or removed in
    the account: (count, newest opt-out, newest opt-out/in event)."""
    row = (
        await session.execute(
            select(func.count(), func.max(ContactOptOut.created_at))
            .select_from(ContactOptOut)
            .join(Contact, Contact.id == ContactOptOut.contact_id)
            .where(Contact.account_id == account_id, ContactOptOut.channel == channel)
        )
    ).one()
    event = (
        await session.execute(
            select(func.max(OptOutEvent.id))
            .join(Contact, Contact.id == OptOutEvent.contact_id)
            .where(Contact.account_id == account_id, OptOutEvent.channel == channel)
        )
    ).scalar_one()
    return (int(row[0]), str(row[1]), event)


async def contacts_state(session: AsyncSession, account_id: int) -> tuple[Any, ...]:
    """(count, newest update) of the account's contacts: changes when a contact's country or
    personalization fields change."""
    row = (
        await session.execute(
            select(func.count(), func.max(Contact.updated_at)).where(
                Contact.account_id == account_id
            )
        )
    ).one()
    return (int(row[0]), str(row[1]))


def _counter_sums(unfolded: Any, clicked: Any) -> list[Any]:
    """Sums of the campaigns' counters, each being its row plus its unfolded tallies, and
    of their clicks (outside the partition)."""

    def total(column: str) -> Any:
        return func.coalesce(
            func.sum(getattr(Campaign, column) + func.coalesce(getattr(unfolded.c, column), 0)), 0
        )

    return [
        func.count().label("campaigns"),
        *[total(c).label(c) for c in COUNTERS],
        total("spent").label("spent"),
        func.coalesce(func.sum(clicked.c.clicks), 0).label("clicks"),
        func.coalesce(func.sum(clicked.c.unique_clicks), 0).label("unique_clicks"),
    ]


async def stats_rows(
    session: AsyncSession,
    account_id: int,
    start: datetime | None,
    end: datetime | None,
    channel: str | None,
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Sums of the campaigns' counters (by channel, and by UTC start day) over the campaigns
    that started sending in [start, end)."""
    # Deleted campaigns still count: their messages were sent and their credits spent;
    # deleting a campaign tidies the list, it does not rewrite history.
    where = [Campaign.account_id == account_id, Campaign.started_at.is_not(None)]
    if start is not None:
        where.append(Campaign.started_at >= start)
    if end is not None:
        where.append(Campaign.started_at < end)
    if channel is not None:
        where.append(Campaign.channel == channel)
    unfolded = (
        select(
            CampaignTally.campaign_id,
            *[func.sum(getattr(CampaignTally, c)).label(c) for c in (*COUNTERS, "spent")],
        )
        .group_by(CampaignTally.campaign_id)
        .subquery()
    )
    clicked = links_repository.clicks_by_campaign_query(account_id)
    campaigns = outerjoin(Campaign, unfolded, unfolded.c.campaign_id == Campaign.id).outerjoin(
        clicked, clicked.c.campaign_id == Campaign.id
    )
    by_channel = await session.execute(
        select(Campaign.channel, *_counter_sums(unfolded, clicked))
        .select_from(campaigns)
        .where(*where)
        .group_by(Campaign.channel)
    )
    if is_sqlite(session):
        # Stored as naive UTC text: the first 10 characters are the UTC date.
        day: Any = func.substr(Campaign.started_at, 1, 10)
    else:
        day = cast(func.timezone("UTC", Campaign.started_at), Date)
    by_day = await session.execute(
        select(day.label("day"), *_counter_sums(unfolded, clicked))
        .select_from(campaigns)
        .where(*where)
        .group_by(day)
        .order_by(day)
    )
    return list(by_channel.all()), list(by_day.all())


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --- the engine's campaign transitions (each a guarded UPDATE: many schedulers may run) -------


async def start_due(session: AsyncSession, now: datetime) -> list[int]:
    """Move due scheduled campaigns to `sending`; each is started by exactly one caller."""
    rows = await session.execute(
        update(Campaign)
        .where(
            Campaign.status.in_(states.sources("start", states.SENDING)),
            Campaign.scheduled_at <= now,
        )
        .values(status=states.SENDING, started_at=now, updated_at=now)
        .returning(Campaign.id)
    )
    return sorted(rows.scalars())


def _nothing_left() -> list[Any]:
    return [Campaign.materialized_at.is_not(None), Campaign.queued == 0, Campaign.sending == 0]


async def finished(session: AsyncSession) -> list[int]:
    """Campaigns fully materialized with nothing queued or in flight (on the folded row)."""
    rows = await session.execute(
        select(Campaign.id)
        .where(Campaign.status.in_(states.sources("complete", states.COMPLETED)), *_nothing_left())
        .order_by(Campaign.id)
    )
    return list(rows.scalars())


async def complete(session: AsyncSession, campaign_id: int, now: datetime) -> int | None:
    """Guarded move to `completed`, the reservation zeroed; returns the account id when this
    call did it. The caller has folded the campaign's counters in this transaction."""
    row = await session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.status.in_(states.sources("complete", states.COMPLETED)),
            *_nothing_left(),
        )
        .values(status=states.COMPLETED, completed_at=now, reserved=0, updated_at=now)
        .returning(Campaign.account_id)
    )
    return row.scalar_one_or_none()


async def cancelled_to_close(session: AsyncSession) -> list[tuple[int, int]]:
    """Cancelled campaigns with nothing in flight that are not closed yet (credits still
    reserved, a message still queued, or no `completed_at`), on the folded row."""
    rows = await session.execute(
        select(Campaign.id, Campaign.account_id)
        .where(
            Campaign.status == states.CANCELLED,
            Campaign.sending == 0,
            (Campaign.reserved > 0) | (Campaign.queued > 0) | Campaign.completed_at.is_(None),
        )
        .order_by(Campaign.id)
    )
    return [(int(a), int(b)) for a, b in rows]


async def close_cancelled(session: AsyncSession, campaign_id: int, now: datetime) -> bool:
    """Guarded: a cancelled campaign with nothing in flight gets its reservation zeroed and
    its `completed_at`. False when it is not to be closed (any more)."""
    row = await session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.status == states.CANCELLED,
            Campaign.sending == 0,
        )
        .values(reserved=0, completed_at=func.coalesce(Campaign.completed_at, now))
        .returning(Campaign.id)
    )
    return row.scalar_one_or_none() is not None


async def next_round(session: AsyncSession, now: datetime) -> datetime | None:
    """`now` if a campaign is sending, a message is in flight (its lease may expire) or
    counters are not folded yet; else the
    earliest start of a scheduled campaign (None when there is none)."""
    busy = await session.execute(
        select(
            exists().where(Campaign.status == states.SENDING)
            | exists().where(Message.status == MessageStatus.SENDING)
            | exists().where(CampaignTally.id.is_not(None))
            | exists().where(Campaign.status == states.CANCELLED, Campaign.reserved > 0)
        )
    )
    if busy.scalar():
        return now
    due = await session.execute(
        select(func.min(Campaign.scheduled_at)).where(Campaign.status == states.SCHEDULED)
    )
    return due.scalar_one_or_none()


async def statuses_of(session: AsyncSession, account_id: int, ids: Sequence[int]) -> dict[int, str]:
    """campaign id -> status, for those of `ids` the account has (deleted ones included)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Campaign.id, Campaign.status).where(
            Campaign.account_id == account_id, Campaign.id.in_(list(ids))
        )
    )
    return {int(campaign_id): str(status) for campaign_id, status in rows}


async def campaign_using_template(
    session: AsyncSession, account_id: int, template_id: int
) -> Campaign | None:
    """A live (not deleted) campaign past `draft` whose message names the template."""
    if is_postgres(session):
        # JSONB containment compares typed values: no cast that could fail on odd data.
        uses = type_coerce(Campaign.message, JSONB).contains({"templateId": template_id})
    else:
        uses = func.json_extract(Campaign.message, "$.templateId") == template_id
    row = await session.execute(
        select(Campaign)
        .where(
            Campaign.account_id == account_id,
            Campaign.status != "draft",
            Campaign.deleted_at.is_(None),
            uses,
        )
        .order_by(Campaign.id)
        .limit(1)
    )
    return row.scalar_one_or_none()
