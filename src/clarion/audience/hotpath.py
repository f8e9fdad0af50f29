"""The hot read path: GET /contacts/{id} as one statement and as few round trips as possible.

Measured on this machine, the generic path (a session, BEGIN, two ORM queries, ROLLBACK)
cost about 1 ms of CPU per request, nearly all of it in round trips rather than in SQL:

- PostgreSQL: the shared pool pings every connection it hands out (`pool_pre_ping`: BEGIN,
  `;`, ROLLBACK on asyncpg) and a session wraps the query in BEGIN/ROLLBACK. Even without
  those, SQLAlchemy's async layer over asyncpg cost about 0.7 ms of CPU a request (greenlet
  hops, result processing). Here a small asyncpg pool of its own runs the one prepared
  statement outside a transaction: one round trip, about a third of the CPU. A connection
  broken by a database restart fails once; the request is retried on a fresh connection.
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

import asyncpg
import orjson
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from clarion.audience.models import Contact, ContactOptOut
from clarion.db.session import Database
from clarion.schemas import utc_z

BUSY_MS = 50

_SQLITE_SQL = (
    "SELECT c.id, c.phone, c.country, c.first_name, c.last_name, c.attributes, c.created_at,"
    " c.updated_at, (SELECT group_concat(o.channel, ',') FROM contact_opt_out o"
    " WHERE o.contact_id = c.id) FROM contact c WHERE c.id = ? AND c.account_id = ?"
)


def _statement() -> Any:
    opted = (
        select(func.group_concat(ContactOptOut.channel, ","))
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


_PG_SQL = (
    "SELECT c.id, c.phone, c.country, c.first_name, c.last_name, c.attributes::text,"
    " c.created_at, c.updated_at, (SELECT string_agg(o.channel, ',') FROM contact_opt_out o"
    " WHERE o.contact_id = c.id) FROM contact c WHERE c.id = $1 AND c.account_id = $2"
)
_SQLITE_STATEMENT = _statement()  # the same, on the regular async path

_pg_pools: "weakref.WeakKeyDictionary[Database, asyncpg.Pool]" = weakref.WeakKeyDictionary()
_sqlite_readers: "weakref.WeakKeyDictionary[Database, sqlite3.Connection]" = (
    weakref.WeakKeyDictionary()
)


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
            "createdAt": utc_z(created),
            "updatedAt": utc_z(updated),
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


async def _keep(connection: "asyncpg.Connection") -> None:
    return None


async def _pg_pool(db: Database) -> "asyncpg.Pool":
    pool = _pg_pools.get(db)
    if pool is None:
        # The connection parameters SQLAlchemy itself uses for this URL (host, ssl, ...).
        _args, params = db.writer.dialect.create_connect_args(db.writer.url)
        for dialect_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            params.pop(dialect_only, None)
        # reset=_keep: each use is one autocommit SELECT that leaves no session state, so the
        # pool's default reset query (a second round trip per request) has nothing to undo
        pool = await asyncpg.create_pool(**params, min_size=1, max_size=8, reset=_keep)
        if db in _pg_pools:  # another request built one meanwhile: keep that one
            await pool.close()
        else:
            _pg_pools[db] = pool
    return _pg_pools[db]


async def _pg_row(db: Database, account_id: int, contact_id: int) -> Any:
    pool = await _pg_pool(db)
    try:
        return await pool.fetchrow(_PG_SQL, contact_id, account_id)
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
        # a connection the database dropped (restart): the pool replaces it; try once more
        return await pool.fetchrow(_PG_SQL, contact_id, account_id)


async def contact_json(db: Database, account_id: int, contact_id: int) -> bytes | None:
    """The contact as the JSON body of GET /contacts/{id}, None when the account has no such
    contact."""
    if db.is_sqlite:
        try:
            row = _sqlite_reader(db).execute(_SQLITE_SQL, (contact_id, account_id)).fetchone()
        except sqlite3.OperationalError:  # busy, or the file moved: take the regular path
            return await _sqlite_async(db.reader, account_id, contact_id)
        if row is None:
            return None
        attributes = orjson.Fragment(row[5]) if row[5] else {}
        return _as_json(row, attributes, _sqlite_time(row[6]), _sqlite_time(row[7]))
    row = await _pg_row(db, account_id, contact_id)
    if row is None:
        return None
    attributes = orjson.Fragment(row[5]) if row[5] else {}
    return _as_json(row, attributes, row[6], row[7])


async def _sqlite_async(engine: AsyncEngine, account_id: int, contact_id: int) -> bytes | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                _SQLITE_STATEMENT, {"contact_id": contact_id, "account_id": account_id}
            )
        ).first()
    if row is None:
        return None
    return _as_json(row, row[5] or {}, row[6], row[7])


async def close(db: Database) -> None:
    """Release this database's fast-path connections (at application shutdown)."""
    pool = _pg_pools.pop(db, None)
    if pool is not None:
        await pool.close()
    conn = _sqlite_readers.pop(db, None)
    if conn is not None:
        conn.close()
