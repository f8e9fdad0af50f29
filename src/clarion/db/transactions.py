"""Write transactions that are retried when the database says "try again".

PostgreSQL reports a deadlock (SQLSTATE 40P01) or a serialization failure (40001) by
aborting one transaction; SQLite reports a busy database (SQLITE_BUSY) when its lock wait
ran out. Either way the work was rolled back whole, so running it again is safe as long as it
only touches the database. The engine's rule (ids ascending, no hot row per batch) means
deadlocks should not happen; the retry is a safety net, and it is logged. Work that read a
row without a lock and finds it changed when it writes raises `RetryTransaction`, which is
run again the same way.
"""

import asyncio
import logging
import random
import sqlite3
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.session import Database

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


class RetryTransaction(Exception):
    """Raised by work that finds a row changed since it read it without a lock (an optimistic
    read): like a transient database error, the transaction is rolled back and run again."""


def is_transient(exc: DBAPIError) -> bool:
    """True for errors after which the same transaction may simply be run again."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in TRANSIENT_SQLSTATES:
        return True
    cause = getattr(orig, "__cause__", None)
    if getattr(cause, "sqlstate", None) in TRANSIENT_SQLSTATES:
        return True
    code = getattr(orig, "sqlite_errorcode", None) or getattr(cause, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


async def in_transaction(
    db: Database, work: Callable[[AsyncSession], Awaitable[T]], attempts: int = 6
) -> T:
    """Run `work` in a write transaction, run again from scratch after a transient error."""
    for attempt in range(attempts):
        try:
            async with db.transaction() as session:
                return await work(session)
        except DBAPIError as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            log.warning("transient database error, retrying: %s", str(exc.orig)[:200])
            await asyncio.sleep(0.01 * (2**attempt) * random.random())
        except RetryTransaction as exc:
            if attempt == attempts - 1:
                raise
            log.info("running the transaction again: %s", exc)
    raise AssertionError("unreachable")


async def pause(event: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less when `event` is set first (a task told to stop, see
    `stop_tasks`; a loop woken up); False when it was."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return True
    return False


async def stop_tasks(tasks: Collection[asyncio.Future[Any]], grace: float) -> None:
    """Wait up to `grace` seconds for tasks that were told to stop, then cancel the rest.

    A task is told to stop (an event it checks between transactions) rather than cancelled
    first: a cancellation that lands inside a transaction can interrupt the connection's own
    clean-up, and the connection is then lost with its transaction open. On SQLite that
    transaction keeps the write lock until the process exits, and every later writer waits.
    """
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
