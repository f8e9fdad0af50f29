"""Every query the campaigns package runs, named for what it answers. All are scoped to an
account; audience queries are set-based (one GROUP BY, or one streamed SELECT) and planned
without nested loops (`db/plans.py`), so a missing or stale statistic cannot make them
quadratic."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    outerjoin,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clarion.audience.models import (
    Contact,
    ContactConsent,
    ContactList,
    ContactOptOut,
    ListMember,
    OptOutEvent,
)
from clarion.campaigns import states
from clarion.campaigns.audience import Audience
from clarion.campaigns.models import Campaign
from clarion.db.dialect import is_postgres, is_sqlite
from clarion.db.plans import without_nested_loops
from clarion.links import repository as links_repository
from clarion.messages.models import CampaignTally, Message, MessageStatus
from clarion.segments.compile import to_sql
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


async def owned_list_ids(
    session: AsyncSession, account_id: int, list_ids: Sequence[int]
) -> list[int]:
    """Those of `list_ids` that belong to the account, in their order."""
    found = await lists_of(session, account_id, list_ids)
    return [i for i in dict.fromkeys(list_ids) if i in found]


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


def _sources(session: AsyncSession, audience: Audience, *, probe_lists: bool) -> Any | None:
    """`contact` is in one of the lists or matches one of the segments (None: no list and no
    segment, the filter alone decides). The lists alone are a semi-join over their members
    (a whole audience); beside segments, or with `probe_lists` (a few contacts), each
    contact's membership is probed by the lists' primary key: inside an OR, PostgreSQL
    can only hash an IN subquery that fits in work_mem, and would otherwise rescan the
    members for every contact."""
    postgres = is_postgres(session)
    sources: list[Any] = []
    if audience.list_ids:
        lists = list(audience.list_ids)
        if probe_lists or audience.segments:
            member = aliased(ListMember)  # correlated with `contact` only
            sources.append(
                exists().where(member.contact_id == Contact.id, member.list_id.in_(lists))
            )
        else:
            members = select(ListMember.contact_id).where(ListMember.list_id.in_(lists))
            sources.append(Contact.id.in_(members))
    sources.extend(to_sql(node, postgres=postgres) for node in audience.segments)
    if not sources:
        return None
    return sources[0] if len(sources) == 1 else or_(*sources)


def audience_where(
    session: AsyncSession,
    audience: Audience,
    *,
    probe_lists: bool = False,
    in_a_list: bool = False,
) -> list[Any]:
    """WHERE clauses over `contact` for the audience's candidates (opted out or not): the
    account's contacts in any of the lists or segments, matching the filter, in no
    exclusion list (a semi-join: each contact once, however many lists hold it). The one
    definition of a campaign's audience: the estimate and the materializer both use it.
    `in_a_list`: the statement joins `contact` to the members of the audience's lists, so
    "in a list or a segment" holds already and is left out (it would read the members a
    second time)."""
    where: list[Any] = [Contact.account_id == audience.account_id]
    sources = None if in_a_list else _sources(session, audience, probe_lists=probe_lists)
    if sources is not None:
        where.append(sources)
    elif audience.narrow is None and not in_a_list:
        where.append(false())
    if audience.narrow is not None:
        where.append(to_sql(audience.narrow, postgres=is_postgres(session)))
    if audience.exclude_ids:
        excluded_ids = list(audience.exclude_ids)
        if probe_lists:
            where.append(_not_excluded(Contact.id, excluded_ids))
        else:
            excluded = select(ListMember.contact_id).where(ListMember.list_id.in_(excluded_ids))
            where.append(_not_in(session, Contact.id, excluded))
    return where


async def memberships_of_candidates(session: AsyncSession, audience: Audience) -> int:
    """How many times the candidates are targeted: one per list holding them and one per
    segment matching them (duplicates = this - candidates). The lists belong to the account
    (checked on create, update and confirm)."""
    if audience.empty:
        return 0
    if audience.lists_only:
        return await _list_memberships(session, audience.list_ids, audience.exclude_ids)
    where = audience_where(session, audience)
    total = 0
    if audience.list_ids:
        stmt = (
            select(func.count())
            .select_from(ListMember)
            .join(Contact, Contact.id == ListMember.contact_id)
            .where(
                ListMember.list_id.in_(list(audience.list_ids)),
                *audience_where(session, audience, in_a_list=True),
            )
        )
        async with without_nested_loops(session):
            total += int((await session.execute(stmt)).scalar_one())
    postgres = is_postgres(session)
    matches: list[Any] = [
        case((to_sql(node, postgres=postgres), 1), else_=0) for node in audience.segments
    ]
    if not audience.list_ids and not audience.segments:
        matches = [literal(1)]  # the filter alone: each candidate once
    if matches:
        per_contact = sum(matches[1:], matches[0])
        stmt = select(func.coalesce(func.sum(per_contact), 0)).where(*where)
        total += int((await session.execute(stmt)).scalar_one())
    return total


async def _list_memberships(
    session: AsyncSession, list_ids: Sequence[int], exclude_ids: Sequence[int]
) -> int:
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


def granted(channel: str) -> Select[Any]:
    """The contacts that granted consent for the channel."""
    return select(ContactConsent.contact_id).where(
        ContactConsent.channel == channel, ContactConsent.status == "granted"
    )


@dataclass(frozen=True)
class CapFilter:
    """Contacts who received `messages` marketing messages of the account since `since`."""

    since: datetime
    messages: int


def _capped_ids(account_id: int, cap: CapFilter) -> Select[Any]:
    # Driven by the recent sends of the account (index on account, contact, sent_at): the
    # few contacts messaged in the period, whatever the size of the audience.
    return (
        select(Message.contact_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.account_id == account_id,
            Message.sent_at.is_not(None),
            Message.sent_at >= cap.since,
            Message.contact_id.is_not(None),
            Campaign.purpose == "marketing",
        )
        .group_by(Message.contact_id)
        .having(func.count() >= cap.messages)
    )


def recipients_where(
    session: AsyncSession,
    audience: Audience,
    channel: str,
    *,
    need_consent: bool = False,
    cap: CapFilter | None = None,
) -> list[Any]:
    """WHERE clauses over `contact` for whom a campaign is sent at this moment: the
    audience (`audience_where`) but the contacts opted out of the channel, without granted
    consent (`need_consent`) or over the frequency cap (`cap`). One definition for the
    materializer (segments or a filter) and the A/B test share, so that an A/B campaign
    reaches exactly whom the same targeting without variants would."""
    opted_out = exists().where(
        ContactOptOut.contact_id == Contact.id, ContactOptOut.channel == channel
    )
    where = [*audience_where(session, audience), ~opted_out]
    if need_consent:
        where.append(Contact.id.in_(granted(channel)))
    if cap is not None:
        where.append(~Contact.id.in_(_capped_ids(audience.account_id, cap)))
    return where


async def recipients_count(session: AsyncSession, where: Sequence[Any]) -> int:
    """How many contacts `where` (recipients_where) selects."""
    stmt = select(func.count()).select_from(Contact).where(*where)
    async with without_nested_loops(session):
        return int((await session.execute(stmt)).scalar_one())


@dataclass(slots=True)
class CountryCounts:
    """The candidates of one country, and among them those left out: opted out of the
    channel; else without granted consent (when it is required); else over the cap. Each
    excluded contact counts once."""

    candidates: int = 0
    opted_out: int = 0
    no_consent: int = 0
    capped: int = 0
    memberships: int | None = None  # of the candidates (lists only): see breakdown_by_country


async def breakdown_by_country(
    session: AsyncSession,
    audience: Audience,
    channel: str,
    *,
    need_consent: bool = False,
    cap: CapFilter | None = None,
) -> dict[str, CountryCounts]:
    """Per country: the candidates (distinct contacts in the audience, opted out or not) and
    those left out (CountryCounts), in one pass over the audience. The opt-out and the
    consent are outer-joined on their primary keys (contact, channel), the capped contacts
    on their grouped ids: one row per candidate, whatever it joins. One pass instead of one
    per exclusion: each pass re-reads the audience (lists and filter) of a million contacts,
    which is what an estimate costs. Without segments, the candidates are joined to their
    list memberships grouped per contact (instead of a semi-join over the members), and
    `memberships` counts them in the same pass (memberships_of_candidates otherwise)."""
    if audience.empty:
        return {}
    opt_out = aliased(ContactOptOut)
    consent = aliased(ContactConsent)
    opted = opt_out.contact_id.is_not(None)
    stmt: Select[Any] = select(Contact.country)
    fold = bool(audience.list_ids) and not audience.segments
    if fold:
        members = (
            select(ListMember.contact_id, func.count().label("n"))
            .where(ListMember.list_id.in_(list(audience.list_ids)))
            .group_by(ListMember.contact_id)
            .subquery()
        )
        stmt = stmt.join(members, members.c.contact_id == Contact.id)
    stmt = stmt.outerjoin(
        opt_out, and_(opt_out.contact_id == Contact.id, opt_out.channel == channel)
    )
    left_out: ColumnElement[bool] = opted  # the contacts an earlier exclusion counted
    columns: list[Any] = [func.count(), func.count().filter(opted)]
    if need_consent:
        stmt = stmt.outerjoin(
            consent,
            and_(
                consent.contact_id == Contact.id,
                consent.channel == channel,
                consent.status == "granted",
            ),
        )
        without = consent.contact_id.is_(None)
        columns.append(func.count().filter(~left_out, without))
        left_out = or_(left_out, without)
    else:
        columns.append(literal(0))
    if cap is not None:
        capped = _capped_ids(audience.account_id, cap).subquery()
        stmt = stmt.outerjoin(capped, capped.c.contact_id == Contact.id)
        columns.append(func.count().filter(~left_out, capped.c.contact_id.is_not(None)))
    else:
        columns.append(literal(0))
    columns.append(func.sum(members.c.n) if fold else literal(None))
    stmt = (
        stmt.add_columns(*columns)
        .where(*audience_where(session, audience, in_a_list=fold))
        .group_by(Contact.country)
    )
    async with without_nested_loops(session):
        return {
            str(country): CountryCounts(
                int(n), int(out), int(nc), int(over), None if m is None else int(m)
            )
            for country, n, out, nc, over, m in await session.execute(stmt)
        }


async def stream_recipient_groups(
    session: AsyncSession,
    audience: Audience,
    channel: str,
    values: Sequence[tuple[Any, Any]],
    chunk: int = 20_000,
    cap: CapFilter | None = None,
    *,
    need_consent: bool = False,
) -> AsyncIterator[Sequence[Row[Any]]]:
    """The recipients (candidates not opted out of the channel) as rows of
    (country, *values, count), grouped by country and by the values a personalized text
    uses. `values` pairs what to select with what to group by (e.g. a representative
    phone, grouped by its length). Streamed through a server-side cursor in chunks: memory
    stays flat however many groups there are. `need_consent`: only contacts that granted
    consent for the channel."""
    if audience.empty:
        return
    opted_out = select(ContactOptOut.contact_id).where(ContactOptOut.channel == channel)
    where = [*audience_where(session, audience), _not_in(session, Contact.id, opted_out)]
    if need_consent:
        where.append(Contact.id.in_(granted(channel)))
    if cap is not None:  # left out like the opted out (the frequency cap)
        where.append(_not_in(session, Contact.id, _capped_ids(audience.account_id, cap)))
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
    of their clicks (outside the partition: the clicked links' sums plus what the links
    retention deleted counted, kept on the row)."""

    def total(column: str, beside: Any, extra: str) -> Any:
        return func.coalesce(
            func.sum(getattr(Campaign, column) + func.coalesce(getattr(beside.c, extra), 0)), 0
        )

    return [
        func.count().label("campaigns"),
        *[total(c, unfolded, c).label(c) for c in COUNTERS],
        total("spent", unfolded, "spent").label("spent"),
        total("purged_clicks", clicked, "clicks").label("clicks"),
        total("purged_unique_clicks", clicked, "unique_clicks").label("unique_clicks"),
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
    """`now` if a message is in flight (its lease may expire, its receipt may be parked) or
    counters are not folded yet (a campaign may be finishing); else the earliest start of a
    scheduled campaign (None when there is none). A sending campaign whose messages all wait
    (held outside their hours, or for a retry) needs no round before the engine's idle pace:
    its lanes sleep until the first is due, and sending it again makes tallies."""
    busy = await session.execute(
        select(
            exists().where(Message.status == MessageStatus.SENDING)
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
    """A live (not deleted) campaign past `draft` whose message, or one of whose A/B
    variants' messages, names the template."""
    in_variant: Any
    if is_postgres(session):
        # JSONB containment compares typed values: no cast that could fail on odd data.
        uses = type_coerce(Campaign.message, JSONB).contains({"templateId": template_id})
        in_variant = type_coerce(Campaign.variants, JSONB).contains(
            [{"message": {"templateId": template_id}}]
        )
    else:
        uses = func.json_extract(Campaign.message, "$.templateId") == template_id
        in_variant = text(
            "EXISTS (SELECT 1 FROM json_each(campaign.variants) AS v"
            " WHERE json_extract(v.value, '$.message.templateId') = :variant_template)"
        ).bindparams(variant_template=template_id)
    uses = or_(uses, in_variant)
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


# --- A/B tests (campaigns/abtest.py) ----------------------------------------------------------


async def variant_counts(
    session: AsyncSession, campaign_ids: Sequence[int]
) -> dict[int, dict[str, dict[str, int]]]:
    """campaign id -> variant -> status -> messages (recipients only, not test sends). One
    GROUP BY over the campaigns' messages, found by the (campaign_id, contact_id) key."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(Message.campaign_id, Message.variant, Message.status, func.count())
        .where(
            Message.campaign_id.in_(list(campaign_ids)),
            Message.contact_id.is_not(None),
            Message.variant.is_not(None),
        )
        .group_by(Message.campaign_id, Message.variant, Message.status)
    )
    out: dict[int, dict[str, dict[str, int]]] = {}
    for campaign_id, variant, status, n in rows:  # (campaign_id IN ...: never None here)
        out.setdefault(int(campaign_id or 0), {}).setdefault(str(variant), {})[str(status)] = int(n)
    return out


async def campaign_by_id(session: AsyncSession, campaign_id: int) -> Campaign | None:
    """The campaign row as it is now (any account: for the engine)."""
    stmt = (
        select(Campaign).where(Campaign.id == campaign_id).execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_campaign(session: AsyncSession, campaign_id: int) -> Campaign | None:
    """The campaign row, locked (FOR UPDATE on PostgreSQL) and read fresh."""
    stmt = (
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def ab_tests_to_decide(session: AsyncSession) -> list[int]:
    """Sending A/B campaigns whose test share is queued and whose winner is not known."""
    rows = await session.execute(
        select(Campaign.id)
        .where(
            Campaign.status == states.SENDING,
            Campaign.ab_seed.is_not(None),
            Campaign.ab_test_at.is_not(None),
            Campaign.ab_winner.is_(None),
        )
        .order_by(Campaign.id)
    )
    return list(rows.scalars())


async def test_handed_over(session: AsyncSession, campaign_id: int) -> tuple[bool, datetime | None]:
    """(whether every message of the campaign left the queue, when the last one was handed
    to the provider or failed: its `sent_at`, else its last change)."""
    pending = await session.execute(
        select(
            exists().where(
                Message.campaign_id == campaign_id,
                Message.contact_id.is_not(None),
                Message.status.in_((MessageStatus.QUEUED, MessageStatus.SENDING)),
            )
        )
    )
    if pending.scalar():
        return False, None
    last = await session.execute(
        select(func.max(func.coalesce(Message.sent_at, Message.updated_at))).where(
            Message.campaign_id == campaign_id, Message.contact_id.is_not(None)
        )
    )
    value = last.scalar_one_or_none()
    if isinstance(value, str):  # SQLite returns the aggregate of a text column as text
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return True, value


async def set_winner(session: AsyncSession, campaign_id: int, name: str, now: datetime) -> bool:
    """Guarded: record the winner unless one is recorded already (exactly one decision
    whoever asks at the same time)."""
    row = await session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.ab_seed.is_not(None),
            Campaign.ab_winner.is_(None),
            Campaign.status.in_((states.SENDING, states.PAUSED)),
        )
        .values(ab_winner=name, ab_decided_at=now, updated_at=now)
        .returning(Campaign.id)
    )
    return row.scalar_one_or_none() is not None
