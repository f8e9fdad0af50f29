"""Telling every engine that there is work, the moment the transaction that made it commits.

A campaign confirmed, resumed or started, and a chunk of messages materialized, send one
notification on `ENGINE_CHANNEL` (PostgreSQL NOTIFY, delivered to every process's listener;
in-process on SQLite). Engines wake their scheduler, materializer and sender lanes on it
instead of polling; a slow periodic round remains as a safety net.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.notify import notify

ENGINE_CHANNEL = "clarion_engine"


async def engine_has_work(session: AsyncSession) -> None:
    """Wake every engine once the caller's transaction commits."""
    await notify(session, ENGINE_CHANNEL, "")
