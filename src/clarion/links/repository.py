"""Every query of the links domain."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
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
from clarion.db.plans import without_nested_loops
from clarion.db.session import Database
from clarion.links.models import Click, Link
from clarion.messages.models import Message

_UTC = UTCDateTime()


@dataclass(frozen=True, slots=True)
class Recipient:
    """A materialized message of a chunk, with the contact fields templates may use."""

    message_id: int
    contact: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChunkLinks:
    """The links a chunk's messages must have: each message of the chunk (contacts in
    (after, upto]; of one A/B `variant`, without links yet, when given) gets one link per URL
    of `urls`, except the messages of `own_ids`, whose links are `own` (message id, position,
    url) rows: recipients whose own text was searched."""

    campaign_id: int
    account_id: int
    after: int
    upto: int
    variant: str | None
    urls: Sequence[str]
    own_ids: Sequence[int] = ()
    own: Sequence[tuple[int, int, str]] = ()


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
    with_attributes: bool = True,
    only_with_colon: bool = False,
    variant: str | None = None,
) -> list[Recipient]:
    """The messages materialized for contacts in (after, upto] (the unique (campaign_id,
    contact_id) index) with their contact's fields (the attributes document only
    `with_attributes`: it is most of what such a read carries); only those whose name or
    attributes hold a colon when `only_with_colon`; only those of the A/B `variant` that
    have no links yet when it is given."""
    params: dict[str, Any] = {"campaign_id": campaign_id, "after": after, "upto": upto}
    of_variant = ""
    if variant is not None:
        params["variant"] = variant
        of_variant = _OF_VARIANT
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


# The links a chunk wants, (message_id, position, url) rows, built by the database: the
# chunk's messages (the (campaign_id, contact_id) index) times the text's URLs, but for the
# recipients searched one by one, whose rows come as parameters. Nothing per link crosses
# the connection but its code. `{variant}`: the A/B variant's messages without links yet.
_WANTED_PG = """
SELECT m.id AS message_id, CAST(u.position - 1 AS SMALLINT) AS position, u.url
FROM message m CROSS JOIN unnest(CAST(:urls AS TEXT[])) WITH ORDINALITY AS u(url, position)
WHERE m.campaign_id = :campaign_id AND m.contact_id > :after AND m.contact_id <= :upto {variant}
  AND NOT EXISTS (SELECT 1 FROM unnest(CAST(:own_ids AS BIGINT[])) AS o(id) WHERE o.id = m.id)
UNION ALL
SELECT o.message_id, o.position, o.url
FROM unnest(CAST(:own_mids AS BIGINT[]), CAST(:own_positions AS SMALLINT[]),
            CAST(:own_urls AS TEXT[])) AS o(message_id, position, url)
"""
_WANTED_SQLITE = """
SELECT m.id AS message_id, u.key AS position, u.value AS url
FROM message m CROSS JOIN json_each(:urls) AS u
WHERE m.campaign_id = :campaign_id AND m.contact_id > :after AND m.contact_id <= :upto {variant}
  AND m.id NOT IN (SELECT value FROM json_each(:own_ids))
UNION ALL
SELECT json_extract(o.value, '$[0]'), json_extract(o.value, '$[1]'),
       json_extract(o.value, '$[2]')
FROM json_each(:own) AS o
"""
# After a draw that collided: only the positions still without a link, within the id range
# (`lo`, `hi`) of the rows first wanted (an A/B remainder's range also holds the test
# share's messages of the same variant, older and with all their links).
_MISSING = """
SELECT w.message_id, w.position, w.url FROM ({wanted}) AS w
WHERE w.message_id >= :lo AND w.message_id <= :hi
  AND NOT EXISTS (SELECT 1 FROM link l
                  WHERE l.campaign_id = :campaign_id AND l.message_id >= :lo
                    AND l.message_id <= :hi AND l.message_id = w.message_id
                    AND l.position = w.position)
"""
_COUNT = "SELECT count(*), min(w.message_id), max(w.message_id) FROM ({rows}) AS w"
# The k-th wanted row takes the k-th code of the draw: one parameter of 7 bytes a code
# (a BLOB or bytea, so that taking the k-th is not a walk through the characters before it).
# `drawn` bounds k: a row beyond the draw is left for the next one, never given a short code.
_INSERT = """
INSERT INTO link (code, account_id, campaign_id, message_id, position, url, clicks)
SELECT {code}, :account_id, :campaign_id, n.message_id, n.position, n.url, 0
FROM (SELECT w.message_id, w.position, w.url, row_number() OVER () AS k
      FROM ({rows}) AS w) AS n
WHERE n.k <= :drawn
ON CONFLICT (code) DO NOTHING
"""
_CODE_PG = (
    "convert_from(substring(CAST(:codes AS BYTEA) FROM CAST((n.k - 1) * 7 + 1 AS INTEGER) "
    "FOR 7), 'UTF8')"
)
_CODE_SQLITE = "CAST(substr(:codes, (n.k - 1) * 7 + 1, 7) AS TEXT)"


def _wanted(
    session: AsyncSession, chunk: ChunkLinks, missing_within: tuple[int, int] | None
) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {
        "campaign_id": chunk.campaign_id,
        "after": chunk.after,
        "upto": chunk.upto,
    }
    of_variant = ""
    if chunk.variant is not None:
        params["variant"] = chunk.variant
        # Once a draw has run, the variant's messages have some of their links: the
        # positions still missing are what is wanted (the test share's have them all).
        of_variant = "AND m.variant = :variant" if missing_within else _OF_VARIANT
    if is_sqlite(session):
        sql = _WANTED_SQLITE.format(variant=of_variant)
        params["urls"] = orjson.dumps(list(chunk.urls)).decode()
        params["own_ids"] = orjson.dumps(list(chunk.own_ids)).decode()
        params["own"] = orjson.dumps(list(chunk.own)).decode()
    else:
        sql = _WANTED_PG.format(variant=of_variant)
        params["urls"] = list(chunk.urls)
        params["own_ids"] = list(chunk.own_ids)
        params["own_mids"] = [mid for mid, _, _ in chunk.own]
        params["own_positions"] = [position for _, position, _ in chunk.own]
        params["own_urls"] = [url for _, _, url in chunk.own]
    if missing_within is not None:
        sql = _MISSING.format(wanted=sql)
        params["lo"], params["hi"] = missing_within
    return sql, params


@asynccontextmanager
async def _planned(session: AsyncSession, chunk: ChunkLinks) -> AsyncIterator[None]:
    """Recipients searched one by one (`own_ids`) are left out of the chunk's messages by a
    join with the parameter's ids: planned without nested loops, so that it cannot rescan
    one side per row of the other. Without them, the statement's other choices (probes of
    the links' index) are the planner's."""
    if chunk.own_ids:
        async with without_nested_loops(session):
            yield
    else:
        yield


async def count_wanted_links(
    session: AsyncSession, chunk: ChunkLinks, missing_within: tuple[int, int] | None = None
) -> tuple[int, int, int]:
    """(how many, lowest message id, highest) of the links the chunk wants; with
    `missing_within` (a message id range), only those not stored yet."""
    sql, params = _wanted(session, chunk, missing_within)
    async with _planned(session, chunk):
        count, lo, hi = (await session.execute(text(_COUNT.format(rows=sql)), params)).one()
    return int(count), int(lo or 0), int(hi or 0)


async def insert_links(
    session: AsyncSession,
    chunk: ChunkLinks,
    codes: Sequence[str],
    missing_within: tuple[int, int] | None = None,
) -> int:
    """Insert the chunk's wanted links (with `missing_within`, those not stored yet) in one
    statement, the k-th taking the k-th of `codes` (7 characters each); a code already taken
    is skipped, not an error, and so are rows beyond the codes given. Returns how many were
    inserted: the caller draws new codes for the others."""
    if not codes:
        return 0
    sql, params = _wanted(session, chunk, missing_within)
    code = _CODE_SQLITE if is_sqlite(session) else _CODE_PG
    params.update(
        account_id=chunk.account_id,
        drawn=len(codes),
        codes="".join(codes).encode("ascii"),
    )
    async with _planned(session, chunk):
        result: Any = await session.execute(text(_INSERT.format(code=code, rows=sql)), params)
    return max(int(result.rowcount or 0), 0)


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


_LINK = cast(Table, Link.__table__).c
# Core, on the table: the ORM's per-execution work (session, unit of work, result
# processing) cost more than the read itself.
_TARGET = select(_LINK.url, _LINK.campaign_id).where(_LINK.code == bindparam("code"))


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


async def clicks_by_variant(
    session: AsyncSession, campaign_ids: Sequence[int]
) -> dict[int, dict[str, tuple[int, int]]]:
    """campaign id -> A/B variant -> (clicks, its messages with a clicked link), for the
    variants that have clicks: one GROUP BY over the campaigns' clicked links (their partial
    index), each joined to its message by the primary key."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(
            Link.campaign_id,
            Message.variant,
            func.sum(Link.clicks),
            func.count(func.distinct(Link.message_id)),
        )
        .join(Message, Message.id == Link.message_id)
        .where(Link.campaign_id.in_(list(campaign_ids)), _clicked(), Message.variant.is_not(None))
        .group_by(Link.campaign_id, Message.variant)
    )
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for cid, variant, n, unique in rows:
        out.setdefault(int(cid), {})[str(variant)] = (int(n or 0), int(unique or 0))
    return out


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
