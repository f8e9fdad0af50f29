"""Engines and sessions.

On SQLite a write transaction starts with BEGIN IMMEDIATE: SQLite allows one writer, and a
deferred transaction that reads and then writes can fail at once with "database is locked"
instead of waiting its turn. Read-only requests keep deferred transactions so that, in WAL
mode, they never wait for a writer.

On PostgreSQL, sessions and transactions take their connections from a pool that pings each
connection as it is checked out (`pool_pre_ping`): a connection that died with a database
restart is replaced before a transaction starts on it, since a transaction that failed
half-way cannot simply be run again. `read_row` (one statement that only reads: the redirect
of a short link) has a pool of its own, without the ping and in autocommit, where one read
is one round trip instead of six (the ping, which SQLAlchemy wraps in BEGIN and ROLLBACK
outside a transaction, then BEGIN, the statement, ROLLBACK): a read of one statement can be
run again, so a dead connection costs a second try, not a failure. Its pool keeps its
connections (no overflow): connections opened for a burst and closed after it would cost a
PostgreSQL backend each. On SQLite it is an autocommit pool too: no BEGIN and ROLLBACK,
each a call into the connection's thread.
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
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


def _sqlite_engine(url: str, begin: str | None, **kwargs: Any) -> AsyncEngine:
    """An engine on the SQLite file whose transactions start with `begin` (none: autocommit,
    each statement its own transaction)."""
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

    if begin is not None:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

    return engine


class Database:
    """The process's connection pools: `writer` for transactions that write, `reader` for reads.

    On PostgreSQL both are the same pool.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        if self.dialect == "sqlite":
            self.writer = _sqlite_engine(self.url, "BEGIN IMMEDIATE")
            self.reader = _sqlite_engine(self.url, "BEGIN")
        else:
            self.writer = create_async_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.reader = self.writer
        # `read_row`'s (see the module docstring).
        single_reads: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": 0,
            "isolation_level": "AUTOCOMMIT",
        }
        self.single_reads = (
            _sqlite_engine(self.url, None, **single_reads)
            if self.dialect == "sqlite"
            else create_async_engine(self.url, **single_reads)
        )
        self._write_sessions = async_sessionmaker(self.writer, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.reader, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def session(self, *, write: bool = True) -> AsyncSession:
        return (self._write_sessions if write else self._read_sessions)()

    async def read_row(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> Sequence[Any] | None:
        """The first row of `statement`, a read of one statement (Core: no ORM session),
        on a connection of the single-read pool. A connection found dead (a database
        restart) is discarded with every other connection opened before it, and the read
        runs once more on a new one (SQLAlchemy's "optimistic" disconnect handling)."""
        for attempt in range(2):
            try:
                async with self.single_reads.connect() as connection:
                    return (await connection.execute(statement, params)).first()
            except DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self.session(write=write) as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
        await self.single_reads.dispose()
