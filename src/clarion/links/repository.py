"""Every query of the links domain."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.base import UTCDateTime
from clarion.db.dialect import is_sqlite
from clarion.db.params import id_in
from clarion.db.session import Database
from clarion.links.models import Click, Link
from clarion.messages.models import Message

_UTC = UTCDateTime()


@dataclass(frozen=True, slots=True)
class NewLink:
    code: str
    message_id: int
    position: int
    url: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """A materialized message of a chunk, with the contact fields templates may use."""

    message_id: int
    contact: dict[str, Any]


_CHUNK_MESSAGES = """
SELECT m.id, c.first_name, c.last_name, c.phone, {attributes}
FROM message m JOIN contact c ON c.id = m.contact_id
WHERE m.campaign_id = :campaign_id AND m.contact_id > :after AND m.contact_id <= :upto {variant}
  {only}
ORDER BY m.id
"""
# A contact value can only make or change a URL if it holds a colon (`://`); a phone never
# does. CAST(... AS TEXT): the attributes document as JSON text, on both databases.
_WITH_COLON = """AND (c.first_name LIKE '%:%' OR c.last_name LIKE '%:%'
     OR CAST(c.attributes AS TEXT) LIKE '%:%')"""
_CHUNK_MESSAGE_IDS = """
SELECT m.id FROM message m
WHERE m.campaign_id = :campaign_id AND m.contact_id > :after AND m.contact_id <= :upto {variant}
ORDER BY m.id
"""
# An A/B campaign's messages of one variant that have no links yet: a variant's text has
# URLs of its own, and a remainder chunk's range also holds the test share's messages,
# whose links were made when the test was queued (probes of the (campaign_id, message_id)
# prefix of the links' unique index).
_OF_VARIANT = """AND m.variant = :variant
  AND NOT EXISTS (SELECT 1 FROM link l
                  WHERE l.campaign_id = m.campaign_id AND l.message_id = m.id)"""


async def chunk_recipients(
    session: AsyncSession,
    campaign_id: int,
    after: int,
    upto: int,
    *,
    with_contact: bool,
    with_attributes: bool = True,
    only_with_colon: bool = False,
    variant: str | None = None,
) -> list[Recipient]:
    """The messages materialized for contacts in (after, upto] (the unique (campaign_id,
    contact_id) index), with their contact's fields when `with_contact` (the attributes
    document only `with_attributes`: it is most of what such a read carries); only those
    whose name or attributes hold a colon when `only_with_colon`; only those of the A/B
    `variant` that have no links yet when it is given."""
    params: dict[str, Any] = {"campaign_id": campaign_id, "after": after, "upto": upto}
    of_variant = ""
    if variant is not None:
        params["variant"] = variant
        of_variant = _OF_VARIANT
    if not with_contact:
        rows = await session.execute(text(_CHUNK_MESSAGE_IDS.format(variant=of_variant)), params)
        return [Recipient(mid, {}) for (mid,) in rows]
    out = []
    stmt = _CHUNK_MESSAGES.format(
        attributes="c.attributes" if with_attributes else "NULL",
        variant=of_variant,
        only=_WITH_COLON if only_with_colon else "",
    )
    for mid, first, last, phone, attributes in await session.execute(text(stmt), params):
        if isinstance(attributes, str | bytes):  # SQLite hands JSON back as text here
            attributes = orjson.loads(attributes)
        out.append(
            Recipient(
                mid,
                {
                    "firstName": first,
                    "lastName": last,
                    "phone": phone,
                    "attributes": attributes or {},
                },
            )
        )
    return out


_INSERT_PG = """
INSERT INTO link (code, account_id, campaign_id, message_id, position, url, clicks)
SELECT code, $1, $2, message_id, position, url, 0
FROM unnest($3::text[], $4::bigint[], $5::smallint[], $6::text[])
    AS v(code, message_id, position, url)
ON CONFLICT (code) DO NOTHING
"""
_INSERT_SQLITE = """
INSERT INTO link (code, account_id, campaign_id, message_id, position, url, clicks)
SELECT json_extract(value, '$[0]'), ?, ?, json_extract(value, '$[1]'),
       json_extract(value, '$[2]'), json_extract(value, '$[3]'), 0
FROM json_each(?) WHERE true
ON CONFLICT (code) DO NOTHING
"""


async def insert_links(
    session: AsyncSession, account_id: int, campaign_id: int, links: Sequence[NewLink]
) -> int:
    """Insert links in one statement (PostgreSQL: arrays through `unnest`; SQLite: one JSON
    document through `json_each`); a code already taken is skipped, not an error. Returns
    how many were inserted: the caller draws new codes for the others."""
    if not links:
        return 0
    conn = await session.connection()
    if is_sqlite(session):
        rows = orjson.dumps([[x.code, x.message_id, x.position, x.url] for x in links]).decode()
        result = await conn.exec_driver_sql(_INSERT_SQLITE, (account_id, campaign_id, rows))
    else:
        result = await conn.exec_driver_sql(
            _INSERT_PG,
            (
                account_id,
                campaign_id,
                [x.code for x in links],
                [x.message_id for x in links],
                [x.position for x in links],
                [x.url for x in links],
            ),
        )
    return max(int(result.rowcount or 0), 0)


async def stored_positions(
    session: AsyncSession, campaign_id: int, message_ids: Sequence[int]
) -> set[tuple[int, int]]:
    """(message id, position) of the links stored for these messages of a campaign."""
    if not message_ids:
        return set()
    rows = await session.execute(
        select(Link.message_id, Link.position).where(
            Link.campaign_id == campaign_id,
            Link.message_id >= min(message_ids),
            Link.message_id <= max(message_ids),
        )
    )
    wanted = set(message_ids)
    return {(m, p) for m, p in rows if m in wanted}


async def codes_of_messages(
    session: AsyncSession, campaign_id: int, message_ids: Sequence[int]
) -> dict[int, list[str]]:
    """message id -> its links' codes, in the order of the URLs in its text."""
    out: dict[int, list[str]] = {}
    for start in range(0, len(message_ids), 900):
        rows = await session.execute(
            select(Link.message_id, Link.code)
            .where(
                Link.campaign_id == campaign_id,
                Link.message_id.in_(message_ids[start : start + 900]),
            )
            .order_by(Link.message_id, Link.position)
        )
        for mid, code in rows:
            out.setdefault(mid, []).append(code)
    return out


async def lock_links(session: AsyncSession, codes: Sequence[str]) -> dict[str, int]:
    """code -> message id of the links of `codes` that exist, locked in code order on
    PostgreSQL (primary-key reads; on SQLite the write transaction holds the only lock)."""
    out: dict[str, int] = {}
    for start in range(0, len(codes), 900):
        rows = await session.execute(
            select(Link.code, Link.message_id)
            .where(Link.code.in_(codes[start : start + 900]))
            .order_by(Link.code)
            .with_for_update()
        )
        out.update((code, int(mid)) for code, mid in rows)
    return out


_TARGET = select(Link.url, Link.campaign_id).where(Link.code == bindparam("code"))


async def target(db: Database, code: str) -> tuple[str, int] | None:
    """(url, campaign id) of a short code: one primary-key read."""
    async with db.session(write=False) as session:
        row = (await session.execute(_TARGET, {"code": code})).first()
    return None if row is None else (row[0], row[1])


async def insert_clicks(
    session: AsyncSession,
    rows: Sequence[tuple[str, int, datetime, str | None, str | None]],
) -> None:
    """Append clicks: (code, campaign id, at, user agent, ip hash) each, as one multi-row
    INSERT (Core: the ORM's bulk path costs more than the statement)."""
    await session.execute(
        insert(cast(Table, Click.__table__)),
        [
            {"code": code, "campaign_id": cid, "at": at, "user_agent": ua, "ip_hash": ip}
            for code, cid, at, ua, ip in rows
        ],
    )


async def count_clicks(session: AsyncSession, counts: Sequence[tuple[str, int, datetime]]) -> None:
    """`clicks = clicks + n` and the first click's time, per (code, n, first at): atomic
    UPDATEs (a row lock on PostgreSQL, the write lock on SQLite), so clicks racing on one
    link from any number of processes are all counted."""
    table = cast(Table, Link.__table__)  # Core: an ORM update() executemany is by primary key
    link = table.c
    stmt = (
        update(table)
        .where(link.code == bindparam("c"))
        .values(
            clicks=link.clicks + bindparam("n"),
            first_clicked_at=func.coalesce(link.first_clicked_at, bindparam("at", type_=_UTC)),
        )
    )
    await session.execute(stmt, [{"c": code, "n": n, "at": at} for code, n, at in counts])


def _clicked() -> Any:
    # Spelled as the partial index's predicate, so both planners use it.
    return literal_column("clicks") > 0


def clicks_by_campaign_query(account_id: int) -> Any:
    """campaign_id, clicks, unique_clicks over the account's clicked links (a subquery to
    join campaign counters with)."""
    return (
        select(
            Link.campaign_id.label("campaign_id"),
            func.sum(Link.clicks).label("clicks"),
            func.count(func.distinct(Link.message_id)).label("unique_clicks"),
        )
        .where(Link.account_id == account_id, _clicked())
        .group_by(Link.campaign_id)
        .subquery()
    )


async def unique_clicks_by_variant(session: AsyncSession, campaign_id: int) -> dict[str, int]:
    """A/B variant -> the campaign's messages of that variant with a clicked link (the
    clicked links' partial index, then each message by its primary key)."""
    rows = await session.execute(
        select(Message.variant, func.count(func.distinct(Link.message_id)))
        .join(Message, Message.id == Link.message_id)
        .where(Link.campaign_id == campaign_id, _clicked(), Message.variant.is_not(None))
        .group_by(Message.variant)
    )
    return {str(variant): int(n) for variant, n in rows}


async def clicks_of_campaigns(
    session: AsyncSession, campaign_ids: Sequence[int]
) -> dict[int, tuple[int, int]]:
    """campaign id -> (clicks, recipients who clicked), for campaigns with clicks."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(Link.campaign_id, func.sum(Link.clicks), func.count(func.distinct(Link.message_id)))
        .where(Link.campaign_id.in_(list(campaign_ids)), _clicked())
        .group_by(Link.campaign_id)
    )
    return {cid: (int(c or 0), int(u or 0)) for cid, c, u in rows}


async def clicks_of_messages(
    session: AsyncSession, campaign_id: int, message_ids: Sequence[int]
) -> dict[int, tuple[int, datetime | None]]:
    """message id -> (clicks, first click), for a campaign's messages that have links."""
    if not message_ids:
        return {}
    rows = await session.execute(
        select(Link.message_id, func.sum(Link.clicks), func.min(Link.first_clicked_at))
        .where(Link.campaign_id == campaign_id, Link.message_id.in_(list(message_ids)))
        .group_by(Link.message_id)
    )
    return {mid: (int(c or 0), first) for mid, c, first in rows}


async def links_of_campaign(
    session: AsyncSession, campaign_id: int, limit: int, offset: int
) -> tuple[list[tuple[str, int, int]], int]:
    """(url, clicks, recipients who clicked it) per original URL, most clicked first, and
    how many URLs there are."""
    per_url = (
        select(
            Link.url.label("url"),
            func.sum(Link.clicks).label("clicks"),
            func.count(func.distinct(case((Link.clicks > 0, Link.message_id)))).label("unique"),
        )
        .where(Link.campaign_id == campaign_id)
        .group_by(Link.url)
        .subquery()
    )
    total = (await session.execute(select(func.count()).select_from(per_url))).scalar_one()
    rows = await session.execute(
        select(per_url.c.url, per_url.c.clicks, per_url.c.unique)
        .order_by(per_url.c.clicks.desc(), per_url.c.url)
        .limit(limit)
        .offset(offset)
    )
    return [(u, int(c or 0), int(n or 0)) for u, c, n in rows], int(total)


# --- retention (operations/retention.py deletes a finished campaign's links with its messages)


@dataclass(frozen=True, slots=True)
class DeletedLinks:
    links: int
    clicks: int  # the deleted links' click counters, summed
    clicked_messages: int  # messages among them with at least one clicked link


async def delete_clicks_of(
    session: AsyncSession, campaign_id: int, message_ids: Sequence[int], n: int
) -> int:
    """Delete up to `n` click rows of these messages' links (the links' (campaign_id,
    message_id) index, then the clicks' code index)."""
    codes = select(Link.code).where(
        Link.campaign_id == campaign_id, id_in(session, Link.message_id, message_ids)
    )
    picked = select(Click.id).where(Click.code.in_(codes)).limit(n)
    result = await session.execute(
        delete(Click).where(Click.id.in_(picked)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_links_of(
    session: AsyncSession, campaign_id: int, message_ids: Sequence[int]
) -> DeletedLinks:
    """Delete every link of these messages, answering the counters of the rows deleted
    (RETURNING: a click counted on a link until the instant it goes is in the sum)."""
    table = cast(Table, Link.__table__)
    rows = await session.execute(
        delete(table)
        .where(
            table.c.campaign_id == campaign_id,
            id_in(session, table.c.message_id, message_ids),
        )
        .returning(table.c.message_id, table.c.clicks)
    )
    links = clicks = 0
    clicked: set[int] = set()
    for message_id, n in rows:
        links += 1
        clicks += int(n or 0)
        if n:
            clicked.add(int(message_id))
    return DeletedLinks(links, clicks, len(clicked))
