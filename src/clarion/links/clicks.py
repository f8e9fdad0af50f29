"""Writing clicks with group commit: the clicks of concurrent redirects share transactions.

Each redirect hands its click to the process's `ClickWriter` after its response has gone
and waits (still inside the request, see `links/routes.py`) until the transaction holding
it has committed. One flush runs at a time: it waits 10 ms for more clicks to join, then
commits them together; the clicks that arrive meanwhile wait for the next one, which takes
them all. Under load a commit (a disk flush on PostgreSQL)
carries hundreds of clicks instead of one, and the number of transactions in flight stays
at one per process, so redirects never queue for pool connections behind click writes.

Failure modes: a click is not in the database until its flush commits, a few milliseconds
after the redirect. A server that stops normally finishes its requests, hence their
flushes, first; a process killed outright (kill -9, power loss) loses the clicks of the
flush in progress and of the clicks waiting for it. A flush that fails (the database
away) is logged with the number of clicks it had; they are not retried.
"""

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.links import repository
from clarion.messages import events

log = logging.getLogger(__name__)
GATHER_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class ClickIn:
    code: str
    campaign_id: int
    at: datetime
    user_agent: str | None
    ip_hash: str | None


class ClickWriter:
    def __init__(self) -> None:
        self._waiting: list[tuple[ClickIn, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def record(self, db: Database, click: ClickIn) -> None:
        """Returns once `click` is committed (raises if its flush failed)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((click, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_all(db))
        await done

    async def _flush_all(self, db: Database) -> None:
        while self._waiting:
            # Let the clicks of the next few milliseconds join: the visitors have their
            # redirects already, and one transaction for many clicks is what makes a busy
            # server keep up (each costs far more than its few rows).
            await asyncio.sleep(GATHER_SECONDS)
            batch, self._waiting = self._waiting, []
            clicks = [c for c, _ in batch]

            async def work(session: AsyncSession, clicks: list[ClickIn] = clicks) -> None:
                await write(session, clicks)

            try:
                await in_transaction(db, work)
            except Exception as exc:
                log.exception("%d clicks not recorded", len(batch))
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


async def write(session: AsyncSession, clicks: list[ClickIn]) -> None:
    """Append the clicks and count them on their links, in the caller's transaction: the
    links locked first, in code order (two processes' flushes lock the same links in the
    same order: no deadlock), one INSERT, one atomic `clicks = clicks + n` per link; then
    the hooks' events.

    A link that is gone by now (retention deleted its campaign's links after the redirect
    read it) loses its click, like an unknown code: written, it would fail the foreign key
    and with it every click of the flush."""
    found = await repository.lock_links(session, sorted({c.code for c in clicks}))
    kept = [c for c in clicks if c.code in found]
    if not kept:
        return
    await repository.insert_clicks(
        session, [(c.code, c.campaign_id, c.at, c.user_agent, c.ip_hash) for c in kept]
    )
    per_code = Counter(c.code for c in kept)
    first_at: dict[str, datetime] = {}
    for c in kept:
        first_at[c.code] = min(first_at.get(c.code, c.at), c.at)
    codes = sorted(per_code)
    await repository.count_clicks(
        session, [(code, per_code[code], first_at[code]) for code in codes]
    )
    # The hooks' `message.clicked`: one event per message clicked in this batch of clicks.
    await events.record_clicked(session, list(found.values()), max(c.at for c in kept))
