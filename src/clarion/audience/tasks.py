"""Background work of the audience domain: CSV imports run as asyncio tasks of the process
that received the upload. An import lives as long as that process does:

- at startup, imports left `running` by a previous process are marked `failed` ("interrupted
  by a restart"). Another process may be importing right now (another API process of a
  cluster, or `clarion import` next to an embedded server), so an import counts as left
  behind when its heartbeat (written with every chunk, i.e. about every second) is older than
  STALE_AFTER seconds. A sweep repeats this every SWEEP_EVERY seconds, so an import of a
  crashed process is failed within about a minute and a half even when the process restarts
  at once or never;
- at shutdown, the process cancels its imports and marks them `failed`.

Phone parsing runs in a process pool (`import_workers` processes, spawned on the first import
and shared by every app of the process; they exit with the process, even one killed with
SIGKILL: see `clarion.procs`) so that it uses the
second core and never blocks the event loop.
"""

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from fastapi import FastAPI

from clarion.audience import hook_events, repository
from clarion.audience.history import Cause
from clarion.audience.imports import SHUTDOWN_REASON, run_import
from clarion.db.session import Database
from clarion.db.transactions import pause, stop_tasks
from clarion.procs import worker_pool

log = logging.getLogger(__name__)

RESTART_REASON = "interrupted by a restart"
STALE_AFTER = 60.0
STOP_GRACE = 2.0  # seconds a running import gets to finish its chunk on shutdown
SWEEP_EVERY = 20.0


_pools: dict[int, ProcessPoolExecutor] = {}


def parse_pool(workers: int) -> ProcessPoolExecutor | None:
    """The process's pool of `workers` CSV parsing processes (None for 0)."""
    if workers <= 0:
        return None
    pool = _pools.get(workers)
    if pool is None:
        pool = worker_pool(workers)  # its processes exit with this one, even on SIGKILL
        _pools[workers] = pool
    return pool


def _tasks(app: FastAPI) -> dict[int, asyncio.Task[None]]:
    tasks: dict[int, asyncio.Task[None]] = app.state.import_tasks
    return tasks


async def fail_abandoned(db: Database) -> int:
    """Fail running imports whose heartbeat is older than STALE_AFTER; returns how many."""
    async with db.transaction() as session:
        return await repository.fail_abandoned_imports(
            session, RESTART_REASON, stale_after=STALE_AFTER
        )


async def _sweep(db: Database, stopping: asyncio.Event) -> None:
    while await pause(stopping, SWEEP_EVERY):
        try:
            await fail_abandoned(db)
        except Exception:
            log.exception("import sweep failed; retrying later")


async def on_startup(app: FastAPI) -> None:
    """Imports run in this process only: one left `running` by a previous process is failed."""
    app.state.import_tasks = {}
    app.state.imports_stopping = asyncio.Event()
    db: Database = app.state.db
    await fail_abandoned(db)
    app.state.import_sweeper = asyncio.create_task(_sweep(db, app.state.imports_stopping))


async def on_shutdown(app: FastAPI) -> None:
    """Stop the sweeper and the running imports, each after its current transaction (see
    `stop_tasks`), and mark the imports failed."""
    app.state.imports_stopping.set()
    running = dict(_tasks(app))
    await stop_tasks([app.state.import_sweeper, *running.values()], STOP_GRACE)
    for import_id in running:
        async with app.state.db.transaction() as session:
            finished = await repository.finish_import(session, import_id, "failed", SHUTDOWN_REASON)
            if finished is not None:
                await hook_events.import_completed(session, finished)
    _tasks(app).clear()


def start_import(
    app: FastAPI,
    *,
    import_id: int,
    account_id: int,
    list_id: int,
    path: Path,
    default_country: str | None,
    cause: Cause,
) -> None:
    """Run the import in the background; the spooled file is deleted when it ends."""
    tasks = _tasks(app)

    async def job() -> None:
        try:
            await run_import(
                app.state.db,
                import_id=import_id,
                account_id=account_id,
                list_id=list_id,
                path=path,
                default_country=default_country,
                cause=cause,
                executor=parse_pool(app.state.settings.import_workers),
                utf8_checked=True,  # checked while spooling the upload
                stopping=app.state.imports_stopping,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("import %s failed", import_id)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            tasks.pop(import_id, None)

    tasks[import_id] = asyncio.create_task(job(), name=f"import-{import_id}")
