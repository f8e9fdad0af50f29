"""Engines and sessions.

On SQLite a write transaction starts with BEGIN IMMEDIATE: SQLite allows one writer, and a
deferred transaction that reads and then writes can fail at once with "database is locked"
instead of waiting its turn. Read-only requests keep deferred transactions so that, in WAL
mode, they never wait for a writer.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def async_url(url: str) -> str:
    """Map a plain database URL to the async driver we use for it."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False))
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database: {backend} (use sqlite:/// or postgresql://)")


def _sqlite_engine(url: str, immediate: bool, **kwargs: Any) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgresql_engine(url: str, pool_size: int) -> AsyncEngine:
    """A pool whose connections are checked before use, so that a database restart (or a
    connection it dropped) costs a reconnection, not an error: raising `DisconnectionError`
    on checkout makes the pool replace the connection and try again.

    SQLAlchemy's own `pool_pre_ping` on asyncpg wraps its probe in BEGIN and ROLLBACK (for
    PgBouncer's transaction mode, where a prepared statement may land on another server):
    three round trips on every checkout. A simple-protocol `SELECT 1` prepares nothing, so it
    is safe there too, in one round trip (`bench/links.py`: 16-24% more 404s a second, each
    of them one read)."""
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            dbapi_connection.run_async(lambda driver: driver.execute("SELECT 1"))
        except Exception as exc:  # whatever the driver raises for a dead connection
            raise DisconnectionError(f"connection unusable: {exc!r}") from exc

    return engine


class Database:
    """The process's connection pools: `writer` for transactions that write, `reader` for reads.

    A read transaction sees one snapshot, however many statements it sends: readers add what
    is appended but not folded yet to a row with two statements (a campaign's row and its
    tallies, an account and its reservation slices), and a fold committed between them must
    not be half seen. SQLite's read transactions are snapshots already (WAL); on PostgreSQL
    reads run at REPEATABLE READ, which a transaction that only reads never has to retry. On
    PostgreSQL both share one pool.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        if self.dialect == "sqlite":
            self.writer = _sqlite_engine(self.url, immediate=True)
            self.reader = _sqlite_engine(self.url, immediate=False)
        else:
            self.writer = _postgresql_engine(self.url, pool_size)
            # The same pool; each read transaction sees one snapshot (see the docstring).
            self.reader = self.writer.execution_options(isolation_level="REPEATABLE READ")
        self._write_sessions = async_sessionmaker(self.writer, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.reader, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def session(self, *, write: bool = True) -> AsyncSession:
        return (self._write_sessions if write else self._read_sessions)()

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self.session(write=write) as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.is_sqlite:
            await self.reader.dispose()
