"""The redirect's read path: a short code to its URL, as cheaply as the server can.

On PostgreSQL the lookups go through a small pool of the driver's own connections that
does nothing between uses: SQLAlchemy's pool pings a connection at checkout and resets it
at checkin, and asyncpg's own pool resets it too (`RESET ALL`, `UNLISTEN *`, ...): round
trips that cost more than the primary-key read itself (measured: 4 statements a redirect
instead of 1). The statement is prepared once per connection. Nothing else runs on these
connections, so there is nothing to reset. SQLite reads through the app's reader.
"""

import asyncio

import asyncpg
from sqlalchemy.engine import make_url

from clarion.db.session import Database
from clarion.links import repository

POOL_SIZE = 8


async def _no_reset(_: asyncpg.Connection) -> None:
    return None


class LinkLookup:
    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def target(self, db: Database, code: str) -> tuple[str, int] | None:
        """(url, campaign id) of a code, or None."""
        if db.is_sqlite:
            return await repository.target(db, code)
        pool = self._pool or await self._open(db)
        async with pool.acquire() as conn:
            row = await conn.fetchrow(repository.TARGET_PG, code)
        return None if row is None else (row[0], row[1])

    async def _open(self, db: Database) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                dsn = make_url(db.url).set(drivername="postgresql")
                self._pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=1,
                    max_size=POOL_SIZE,
                    reset=_no_reset,
                )
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
