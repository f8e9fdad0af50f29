"""Background work of the delivery domain: the parked-receipt sweep.

`apply_parked` (called by the dispatcher right after it records submit results) applies
nearly every parked receipt. A receipt that raced that call (its transaction committed in
between) stays parked until a sweep; the engine's scheduler runs `run_sweeper` (or calls
`sweep_once` on its own tick).
"""

import asyncio
import contextlib
import logging

from clarion.db.session import Database
from clarion.delivery.service import sweep_parked

log = logging.getLogger(__name__)


async def sweep_once(db: Database) -> int:
    """One sweep in its own transaction; returns how many parked receipts were applied."""
    async with db.transaction() as session:
        return await sweep_parked(session)


async def run_sweeper(db: Database, stop: asyncio.Event, interval: float = 5.0) -> None:
    """Sweep every `interval` seconds until `stop` is set; errors are logged, not fatal."""
    while not stop.is_set():
        try:
            applied = await sweep_once(db)
            if applied:
                log.info("applied %d parked receipts", applied)
        except Exception:
            log.exception("parked receipt sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
