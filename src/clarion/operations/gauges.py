"""The database gauges, read at scrape time in one short read transaction: three small
indexed queries (bench/metrics.py measures them), the same from every process."""

from __future__ import annotations

from datetime import datetime

from clarion import metrics
from clarion.db.session import Database
from clarion.metrics import DatabaseGauges
from clarion.money import from_units
from clarion.operations import repository as repo


async def read(db: Database, now: datetime, queue_cap: int) -> DatabaseGauges:
    async with db.session(write=False) as session:
        depth = await repo.queue_depth(session, now, queue_cap)
        campaigns = await repo.campaigns_by_status(session)
        reserved = await repo.reserved_units(session)
    return DatabaseGauges(
        queue_depth=depth, campaigns=campaigns, credits_reserved=float(from_units(reserved))
    )


async def exposition(db: Database, now: datetime, queue_cap: int) -> bytes:
    """This process's series and the database gauges, in the text format."""
    return metrics.render(await read(db, now, queue_cap))
