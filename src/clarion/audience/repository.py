"""Every query of the audience domain, named for what it answers.

The bulk writes (`upsert_contacts`, `add_members`) are one set-based statement per batch:
`unnest` arrays on PostgreSQL (one bind parameter per column, no 32,767-parameter limit) and
`json_each` over one JSON document on SQLite (same reason: SQLite caps bind parameters too).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import (
    Contact,
    ContactConsent,
    ContactImport,
    ContactImportError,
    ContactList,
    ContactOptOut,
    ListMember,
    OptOutEvent,
)
from clarion.db.base import utcnow
from clarion.db.dialect import is_sqlite
from clarion.db.params import chunks


def _sqlite_ts(value: datetime) -> str:
    """A UTC timestamp in the text form SQLAlchemy's SQLite DATETIME stores and reads back."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- contacts -------------------------------------------------------------------------------


async def contact_of_account(
    session: AsyncSession, account_id: int, contact_id: int
) -> Contact | None:
    row = await session.execute(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    return row.scalar_one_or_none()


async def contact_id_with_phone(session: AsyncSession, account_id: int, phone: str) -> int | None:
    row = await session.execute(
        select(Contact.id).where(Contact.account_id == account_id, Contact.phone == phone)
    )
    return row.scalar_one_or_none()


async def insert_contact_unless_phone_exists(
    session: AsyncSession, values: dict[str, Any]
) -> Contact | None:
    """Insert one contact; None when the account has that phone already (race-safe: the
    unique constraint decides, inside a savepoint)."""
    contact = Contact(**values)
    try:
        async with session.begin_nested():
            session.add(contact)
            await session.flush()
    except IntegrityError:
        return None
    return contact


async def contacts_page(
    session: AsyncSession,
    account_id: int,
    *,
    list_id: int | None,
    search: str | None,
    phone_digits: str,
    limit: int,
    offset: int,
) -> tuple[list[Contact], int]:
    """A page of the account's contacts (oldest first), optionally members of one list and
    matching `search` (a phone fragment, or a case-insensitive part of the name)."""
    query = select(Contact).where(Contact.account_id == account_id)
    if list_id is not None:
        query = query.join(ListMember, ListMember.contact_id == Contact.id).where(
            ListMember.list_id == list_id
        )
    if search:
        pattern = _like(search.lower())
        conditions = [
            func.lower(Contact.first_name).like(pattern, escape="\\"),
            func.lower(Contact.last_name).like(pattern, escape="\\"),
            func.lower(
                func.coalesce(Contact.first_name, "") + " " + func.coalesce(Contact.last_name, "")
            ).like(pattern, escape="\\"),
        ]
        if phone_digits:
            conditions.append(Contact.phone.like(_like(phone_digits), escape="\\"))
        query = query.where(or_(*conditions))
    total = (
        await session.execute(select(func.count()).select_from(query.order_by(None).subquery()))
    ).scalar_one()
    rows = await session.execute(query.order_by(Contact.id).limit(limit).offset(offset))
    return list(rows.scalars()), total


async def list_ids_of_contact(session: AsyncSession, contact_id: int) -> list[int]:
    rows = await session.execute(
        select(ListMember.list_id).where(ListMember.contact_id == contact_id)
    )
    return list(rows.scalars())


# -- lists ----------------------------------------------------------------------------------


async def list_of_account(
    session: AsyncSession, account_id: int, list_id: int
) -> ContactList | None:
    row = await session.execute(
        select(ContactList).where(ContactList.id == list_id, ContactList.account_id == account_id)
    )
    return row.scalar_one_or_none()


async def member_counts(session: AsyncSession, list_ids: Sequence[int]) -> dict[int, int]:
    if not list_ids:
        return {}
    rows = await session.execute(
        select(ListMember.list_id, func.count())
        .where(ListMember.list_id.in_(list_ids))
        .group_by(ListMember.list_id)
    )
    counts = {list_id: 0 for list_id in list_ids}
    counts.update({list_id: count for list_id, count in rows.all()})
    return counts


async def lists_page(
    session: AsyncSession, account_id: int, limit: int, offset: int
) -> tuple[list[ContactList], int]:
    where = ContactList.account_id == account_id
    total = (
        await session.execute(select(func.count()).select_from(ContactList).where(where))
    ).scalar_one()
    rows = await session.execute(
        select(ContactList).where(where).order_by(ContactList.id).limit(limit).offset(offset)
    )
    return list(rows.scalars()), total


async def members_page(
    session: AsyncSession, list_id: int, limit: int, offset: int
) -> tuple[list[Contact], int]:
    total = (
        await session.execute(
            select(func.count()).select_from(ListMember).where(ListMember.list_id == list_id)
        )
    ).scalar_one()
    rows = await session.execute(
        select(Contact)
        .join(ListMember, ListMember.contact_id == Contact.id)
        .where(ListMember.list_id == list_id)
        .order_by(Contact.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), total


async def touch_lists(session: AsyncSession, list_ids: Sequence[int]) -> None:
    """Record a membership change (campaign estimates compare `updated_at`)."""
    if list_ids:
        await session.execute(
            update(ContactList).where(ContactList.id.in_(list_ids)).values(updated_at=utcnow())
        )


async def contact_ids_of_account(
    session: AsyncSession, account_id: int, contact_ids: Sequence[int]
) -> set[int]:
    """Which of these ids are contacts of the account."""
    if not contact_ids:
        return set()
    found: set[int] = set()
    unique = list(dict.fromkeys(contact_ids))
    for start in range(0, len(unique), 5_000):
        rows = await session.execute(
            select(Contact.id).where(
                Contact.account_id == account_id, Contact.id.in_(unique[start : start + 5_000])
            )
        )
        found.update(rows.scalars())
    return found


async def add_members(session: AsyncSession, list_id: int, contact_ids: Sequence[int]) -> int:
    """Add contacts (already checked to be the account's) to a list; returns how many were
    not members before."""
    if not contact_ids:
        return 0
    conn = await session.connection()
    ids = list(dict.fromkeys(contact_ids))
    if is_sqlite(session):
        result = await conn.exec_driver_sql(
            "INSERT INTO list_member (list_id, contact_id, created_at) "
            "SELECT ?, value, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING",
            (list_id, _sqlite_ts(utcnow()), orjson.dumps(ids).decode()),
        )
        return max(result.rowcount, 0)
    result = await conn.exec_driver_sql(
        "WITH added AS (INSERT INTO list_member (list_id, contact_id, created_at) "
        "SELECT $1, id, now() FROM unnest($2::bigint[]) AS t(id) "
        "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM added",
        (list_id, ids),
    )
    return int(result.scalar_one())


async def remove_members(session: AsyncSession, list_id: int, contact_ids: Sequence[int]) -> int:
    if not contact_ids:
        return 0
    ids = list(dict.fromkeys(contact_ids))
    removed = 0
    for start in range(0, len(ids), 5_000):
        result = await session.execute(
            delete(ListMember).where(
                ListMember.list_id == list_id,
                ListMember.contact_id.in_(ids[start : start + 5_000]),
            )
        )
        removed += max(result.rowcount, 0)  # type: ignore[attr-defined]
    return removed


# -- bulk upsert by phone ------------------------------------------------------------------


class UpsertRow(NamedTuple):
    """A tuple (cheap to build and to pickle between processes)."""

    phone: str  # E.164, unique within one call
    country: str
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any] | None  # merged into the existing attributes


def merge_rows(earlier: UpsertRow | None, later: UpsertRow) -> UpsertRow:
    """Two rows for one phone in a batch: the later wins the way it would win against a stored
    contact (names it lacks and attributes it does not set are kept), so that the result does
    not depend on whether both rows fall in the same batch."""
    if earlier is None:
        return later
    attributes = later.attributes
    if earlier.attributes:
        attributes = {**earlier.attributes, **(later.attributes or {})}
    return UpsertRow(
        later.phone,
        later.country,
        later.first_name if later.first_name is not None else earlier.first_name,
        later.last_name if later.last_name is not None else earlier.last_name,
        attributes,
    )


@dataclass(frozen=True, slots=True)
class UpsertResult:
    inserted: int  # contacts created (the others existed and were updated)
    added: int  # contacts that became members of the list


_PG_UPSERT = """
WITH data AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        AS d(phone, country, first_name, last_name, attributes)
), up AS (
    INSERT INTO contact AS c
        (account_id, phone, country, first_name, last_name, attributes, created_at, updated_at)
    SELECT $1, phone, country, first_name, last_name,
           COALESCE(attributes::jsonb, '{}'::jsonb), now(), now()
    FROM data
    ON CONFLICT (account_id, phone) DO UPDATE SET
        country = EXCLUDED.country,
        first_name = COALESCE(EXCLUDED.first_name, c.first_name),
        last_name = COALESCE(EXCLUDED.last_name, c.last_name),
        attributes = c.attributes || EXCLUDED.attributes,
        updated_at = EXCLUDED.updated_at
    RETURNING c.id, (c.xmax = 0) AS inserted
), member AS (
    INSERT INTO list_member (list_id, contact_id, created_at)
    SELECT $7::bigint, id, now() FROM up WHERE $7::bigint IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM up WHERE inserted), (SELECT count(*) FROM member)
"""

_SQLITE_EXISTING = (
    "SELECT count(*) FROM contact WHERE account_id = ? "
    "AND phone IN (SELECT value FROM json_each(?))"
)
_SQLITE_UPSERT = """
INSERT INTO contact
    (account_id, phone, country, first_name, last_name, attributes, created_at, updated_at)
SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3,
       COALESCE(json_extract(value, '$[4]'), '{}'), ?, ?
FROM json_each(?) WHERE true
ON CONFLICT (account_id, phone) DO UPDATE SET
    country = excluded.country,
    first_name = COALESCE(excluded.first_name, contact.first_name),
    last_name = COALESCE(excluded.last_name, contact.last_name),
    attributes = json_patch(contact.attributes, excluded.attributes),
    updated_at = excluded.updated_at
"""
_SQLITE_MEMBERS = """
INSERT INTO list_member (list_id, contact_id, created_at)
SELECT ?, id, ? FROM contact
WHERE account_id = ? AND phone IN (SELECT value FROM json_each(?))
ON CONFLICT DO NOTHING
"""


async def upsert_contacts(
    session: AsyncSession, account_id: int, rows: Sequence[UpsertRow], list_id: int | None
) -> UpsertResult:
    """Insert or update contacts by phone (names kept when the row has none, attributes
    merged) and add them all to `list_id` when given. Phones must be unique in `rows`."""
    if not rows:
        return UpsertResult(0, 0)
    conn = await session.connection()
    if is_sqlite(session):
        phones = orjson.dumps([r.phone for r in rows]).decode()
        existing = (await conn.exec_driver_sql(_SQLITE_EXISTING, (account_id, phones))).scalar_one()
        now = _sqlite_ts(utcnow())
        payload = orjson.dumps(
            [(r.phone, r.country, r.first_name, r.last_name, r.attributes) for r in rows]
        ).decode()
        await conn.exec_driver_sql(_SQLITE_UPSERT, (account_id, now, now, payload))
        added = 0
        if list_id is not None:
            result = await conn.exec_driver_sql(_SQLITE_MEMBERS, (list_id, now, account_id, phones))
            added = max(result.rowcount, 0)
        return UpsertResult(len(rows) - int(existing), added)
    result = await conn.exec_driver_sql(
        _PG_UPSERT,
        (
            account_id,
            [r.phone for r in rows],
            [r.country for r in rows],
            [r.first_name for r in rows],
            [r.last_name for r in rows],
            [None if r.attributes is None else orjson.dumps(r.attributes).decode() for r in rows],
            list_id,
        ),
    )
    counts: Any = result.one()
    return UpsertResult(int(counts[0]), int(counts[1]))


# -- imports --------------------------------------------------------------------------------


async def create_import(
    session: AsyncSession, account_id: int, list_id: int, filename: str | None
) -> int:
    """A new `running` import with zero counts (the API and `clarion import` both start so)."""
    row = ContactImport(
        account_id=account_id,
        list_id=list_id,
        status="running",
        filename=(filename or "")[:500] or None,
        rows=0,
        imported=0,
        updated=0,
        invalid=0,
        errors=[],
    )
    session.add(row)
    await session.flush()
    return row.id


async def import_of_account(
    session: AsyncSession, account_id: int, import_id: int
) -> ContactImport | None:
    row = await session.execute(
        select(ContactImport).where(
            ContactImport.id == import_id, ContactImport.account_id == account_id
        )
    )
    return row.scalar_one_or_none()


async def record_import_progress(
    session: AsyncSession,
    import_id: int,
    *,
    rows: int,
    imported: int,
    updated: int,
    invalid: int,
    errors: list[dict[str, Any]] | None,
) -> bool:
    """Store the counters (and the error sample when it changed). False when the import is no
    longer running (failed by a restart sweep or a shutdown): the caller stops."""
    values: dict[str, Any] = {
        "rows": rows,
        "imported": imported,
        "updated": updated,
        "invalid": invalid,
        "heartbeat_at": utcnow(),
    }
    if errors is not None:
        values["errors"] = errors
    result = await session.execute(
        update(ContactImport)
        .where(ContactImport.id == import_id, ContactImport.status == "running")
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_import_errors(
    session: AsyncSession, import_id: int, errors: Sequence[tuple[int, str | None, str]]
) -> None:
    """Store rejected rows `(row, phone, reason)` of an import."""
    if errors:
        await session.execute(
            insert(ContactImportError),
            [
                {"import_id": import_id, "row": row, "phone": phone, "reason": reason}
                for row, phone, reason in errors
            ],
        )


async def import_errors_after(
    session: AsyncSession, import_id: int, after_id: int, limit: int
) -> list[ContactImportError]:
    """The import's rejected rows in file order, a keyset page after `after_id`."""
    rows = await session.execute(
        select(ContactImportError)
        .where(ContactImportError.import_id == import_id, ContactImportError.id > after_id)
        .order_by(ContactImportError.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def finish_import(
    session: AsyncSession, import_id: int, status: str, failure_reason: str | None = None
) -> ContactImport | None:
    """Guarded: the import as it now is when this call finished it, else None."""
    row = await session.execute(
        update(ContactImport)
        .where(ContactImport.id == import_id, ContactImport.status == "running")
        .values(status=status, failure_reason=failure_reason, finished_at=utcnow())
        .returning(ContactImport)
        .execution_options(populate_existing=True)
    )
    return row.scalar_one_or_none()


async def fail_abandoned_imports(
    session: AsyncSession, reason: str, *, stale_after: float | None
) -> int:
    """Fail `running` imports: all of them (stale_after None), or those whose heartbeat is
    older than `stale_after` seconds. Returns how many."""
    query = update(ContactImport).where(ContactImport.status == "running")
    if stale_after is not None:
        query = query.where(ContactImport.heartbeat_at < utcnow() - timedelta(seconds=stale_after))
    result = await session.execute(
        query.values(status="failed", failure_reason=reason, finished_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- opt-outs ------------------------------------------------------------------------------


async def opted_out_among(
    session: AsyncSession, contact_ids: Sequence[int], channel: str
) -> set[int]:
    """Those of the contacts opted out of `channel`."""
    rows = await session.execute(
        select(ContactOptOut.contact_id).where(
            ContactOptOut.contact_id.in_(contact_ids), ContactOptOut.channel == channel
        )
    )
    return set(rows.scalars())


async def add_opt_outs(
    session: AsyncSession, contact_ids: Sequence[int], channel: str, source: str
) -> None:
    """Opt these contacts (none of them opted out of `channel` yet) out of it."""
    if contact_ids:
        await session.execute(
            insert(ContactOptOut),
            [{"contact_id": cid, "channel": channel, "source": source} for cid in contact_ids],
        )


async def remove_opt_outs(
    session: AsyncSession, contact_ids: Sequence[int], channel: str
) -> list[int]:
    """Remove `channel` from the contacts' opt-outs; returns those that had it."""
    rows = await session.execute(
        delete(ContactOptOut)
        .where(ContactOptOut.contact_id.in_(contact_ids), ContactOptOut.channel == channel)
        .returning(ContactOptOut.contact_id)
    )
    return list(rows.scalars())


async def add_history(
    session: AsyncSession, contact_ids: Sequence[int], values: dict[str, Any]
) -> None:
    """One history row per contact with the same `values` (one multi-row INSERT)."""
    if contact_ids:
        await session.execute(
            insert(OptOutEvent), [{"contact_id": cid, **values} for cid in contact_ids]
        )


async def history_page(
    session: AsyncSession, contact_id: int, limit: int, offset: int
) -> tuple[list[OptOutEvent], int]:
    """The contact's history, newest first."""
    where = OptOutEvent.contact_id == contact_id
    total = (
        await session.execute(select(func.count()).select_from(OptOutEvent).where(where))
    ).scalar_one()
    rows = await session.execute(
        select(OptOutEvent).where(where).order_by(OptOutEvent.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.scalars()), total


async def opt_outs_of(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, list[str]]:
    """contact id -> sorted list of channels it opted out of."""
    result: dict[int, list[str]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return result
    rows = await session.execute(
        select(ContactOptOut.contact_id, ContactOptOut.channel)
        .where(ContactOptOut.contact_id.in_(contact_ids))
        .order_by(ContactOptOut.contact_id, ContactOptOut.channel)
    )
    for cid, channel in rows:
        result[cid].append(channel)
    return result


# -- consent -------------------------------------------------------------------------------


async def consents_of(
    session: AsyncSession, contact_ids: Sequence[int]
) -> dict[int, dict[str, ContactConsent]]:
    """contact id -> channel -> its consent row (contacts without any are absent)."""
    found: dict[int, dict[str, ContactConsent]] = {}
    for part in chunks(list(dict.fromkeys(contact_ids))):
        rows = await session.execute(
            select(ContactConsent).where(ContactConsent.contact_id.in_(part))
        )
        for row in rows.scalars():
            found.setdefault(row.contact_id, {})[row.channel] = row
    return found


async def replace_consents(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store these consents (at most one per contact and channel), replacing what was there."""
    by_channel: dict[str, list[int]] = {}
    for row in rows:
        by_channel.setdefault(row["channel"], []).append(row["contact_id"])
    for channel, ids in sorted(by_channel.items()):
        for part in chunks(sorted(ids)):
            await session.execute(
                delete(ContactConsent)
                .where(ContactConsent.channel == channel, ContactConsent.contact_id.in_(part))
                .execution_options(synchronize_session=False)
            )
    if rows:
        await session.execute(insert(ContactConsent), list(rows))


async def contact_ids_by_phone(
    session: AsyncSession, account_id: int, phones: Sequence[str]
) -> dict[str, int]:
    """phone -> contact id, for those of these phones the account has."""
    found: dict[str, int] = {}
    for part in chunks(list(dict.fromkeys(phones))):
        rows = await session.execute(
            select(Contact.phone, Contact.id).where(
                Contact.account_id == account_id, Contact.phone.in_(part)
            )
        )
        found.update({phone: cid for phone, cid in rows.all()})
    return found


# -- lookups by id (imports check their list; the CLI reports on its import) ---------------


async def list_by_id(session: AsyncSession, list_id: int) -> ContactList | None:
    return await session.get(ContactList, list_id)


async def import_by_id(session: AsyncSession, import_id: int) -> ContactImport | None:
    return await session.get(ContactImport, import_id)


async def delete_list(session: AsyncSession, row: ContactList) -> None:
    await session.delete(row)
    await session.flush()


async def delete_contact(session: AsyncSession, contact: Contact) -> None:
    await session.delete(contact)
    await session.flush()
