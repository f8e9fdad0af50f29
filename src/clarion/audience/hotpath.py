"""The hot read path: GET /contacts/{id} as one statement and as few round trips as possible.

Measured on this machine, the generic path (a session, BEGIN, two ORM queries, ROLLBACK)
cost about 1 ms of CPU per request, nearly all of it in round trips rather than in SQL:

- PostgreSQL: the shared pool pings every connection it hands out (`pool_pre_ping`: BEGIN,
  `;`, ROLLBACK on asyncpg) and a session wraps the query in BEGIN/ROLLBACK. Here a small
  separate pool in autocommit mode, without the ping, runs the one statement: one round trip.
  A connection broken by a database restart fails once; the request is retried on a fresh
  connection (SQLAlchemy invalidates the pool on disconnect errors).
- SQLite: every aiosqlite call hops to its thread and back (8 hops a request). A primary
  key lookup takes microseconds, so it runs synchronously on the event loop thread with the
  standard library driver, on a read-only connection (WAL: readers never wait for the
  writer). A read that finds the database busy for more than BUSY_MS falls back to the
  regular async path instead of holding the loop.
"""

import sqlite3
import weakref
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from clarion.audience.models import Contact, ContactOptOut
from clarion.db.session import Database

BUSY_MS = 50

_SQLITE_SQL = (
    "SELECT c.id, c.phone, c.country, c.first_name, c.last_name, c.attributes, c.created_at,"
    " c.updated_at, (SELECT group_concat(o.channel, ',') FROM contact_opt_out o"
    " WHERE o.contact_id = c.id) FROM contact c WHERE c.id = ? AND c.account_id = ?"
)


def _statement(aggregate: Any) -> Any:
    opted = (
        select(aggregate(ContactOptOut.channel, ","))
        .where(ContactOptOut.contact_id == Contact.id)
        .scalar_subquery()
    )
    return select(
        Contact.id,
        Contact.phone,
        Contact.country,
        Contact.first_name,
        Contact.last_name,
        Contact.attributes,
        Contact.created_at,
        Contact.updated_at,
        opted,
    ).where(Contact.id == bindparam("contact_id"), Contact.account_id == bindparam("account_id"))


_STATEMENTS = {"sqlite": _statement(func.group_concat), "postgresql": _statement(func.string_agg)}

_pg_engines: "weakref.WeakKeyDictionary[Database, AsyncEngine]" = weakref.WeakKeyDictionary()
_sqlite_readers: "weakref.WeakKeyDictionary[Database, sqlite3.Connection]" = (
    weakref.WeakKeyDictionary()
)


def _utc_text(value: datetime) -> str:
    # The same text as schemas.UtcDatetime produces.
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def _as_json(row: Any, attributes: Any, created: datetime, updated: datetime) -> bytes:
    return orjson.dumps(
        {
            "id": row[0],
            "phone": row[1],
            "country": row[2],
            "firstName": row[3],
            "lastName": row[4],
            "attributes": attributes,
            "optOuts": sorted(row[8].split(",")) if row[8] else [],
            "createdAt": _utc_text(created),
            "updatedAt": _utc_text(updated),
        }
    )


def _sqlite_reader(db: Database) -> sqlite3.Connection:
    conn = _sqlite_readers.get(db)
    if conn is None:
        path = make_url(db.url).database or ""
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        conn.execute("PRAGMA query_only=ON")
        _sqlite_readers[db] = conn
    return conn


def _sqlite_time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _pg_engine(db: Database) -> AsyncEngine:
    engine = _pg_engines.get(db)
    if engine is None:
        engine = create_async_engine(
            db.url, pool_size=5, max_overflow=5, isolation_level="AUTOCOMMIT"
        )
        _pg_engines[db] = engine
    return engine


async def contact_json(db: Database, account_id: int, contact_id: int) -> bytes | None:
    """The contact as the JSON body of GET /contacts/{id}, None when the account has no such
    contact."""
    if db.is_sqlite:
        try:
            row = _sqlite_reader(db).execute(_SQLITE_SQL, (contact_id, account_id)).fetchone()
        except sqlite3.OperationalError:  # busy, or the file moved: take the regular path
            return await _generic(db, db.reader, account_id, contact_id)
        if row is None:
            return None
        attributes = orjson.Fragment(row[5]) if row[5] else {}
        return _as_json(row, attributes, _sqlite_time(row[6]), _sqlite_time(row[7]))
    engine = _pg_engine(db)
    try:
        return await _generic(db, engine, account_id, contact_id)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return await _generic(db, engine, account_id, contact_id)  # once, on a new connection


async def _generic(
    db: Database, engine: AsyncEngine, account_id: int, contact_id: int
) -> bytes | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                _STATEMENTS[db.dialect], {"contact_id": contact_id, "account_id": account_id}
            )
        ).first()
    if row is None:
        return None
    return _as_json(row, row[5] or {}, row[6], row[7])


async def close(db: Database) -> None:
    """Release this database's fast-path connections (at application shutdown)."""
    engine = _pg_engines.pop(db, None)
    if engine is not None:
        await engine.dispose()
    conn = _sqlite_readers.pop(db, None)
    if conn is not None:
        conn.close()
