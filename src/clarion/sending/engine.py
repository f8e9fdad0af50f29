"""The engine of one process: scheduler loop, materializer loop and sender lanes.

`clarion serve` runs it next to the API (sending/tasks.py), `clarion worker` runs it alone.
Stopping it stops claiming, lets in-flight batches finish for a few seconds, then gives the
leases of anything still unfinished back to the queue, all within the 10 s shutdown budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns import wakeups
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.notify import Listener
from clarion.db.session import Database
from clarion.db.transactions import in_transaction, pause, stop_tasks
from clarion.delivery.service import DbReceiptSink
from clarion.hooks.deliverer import HookDeliverer
from clarion.messages import transitions
from clarion.operations import retention
from clarion.providers.base import Provider
from clarion.providers.registry import build_providers
from clarion.sending import materialize, scheduler
from clarion.sending.dispatcher import Dispatcher

log = logging.getLogger(__name__)

FINISH_GRACE = 7.0  # seconds in-flight batches and steps get to finish on shutdown
RETENTION_CAMPAIGNS = 10  # campaigns purged per retention round


def distinct(providers: dict[str, Provider]) -> list[Provider]:
    """Each provider once (one object may serve several channels)."""
    return list({id(p): p for p in providers.values()}.values())


async def start_providers(settings: Settings, db: Database) -> dict[str, Provider]:
    """channel -> the provider the settings choose, started with the database as the sink
    of the receipts and inbound messages it is pushed."""
    providers = build_providers(settings)
    sink = DbReceiptSink(db)
    for provider in distinct(providers):
        await provider.start(sink)
    return providers


def lease_owner() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Engine:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        providers: dict[str, Provider] | None = None,
        lanes: int = 3,
        scheduler: bool = True,
        sender: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.db = db
        self._given_providers = providers
        self.providers: dict[str, Provider] = {}
        self.owner = lease_owner()
        self.lanes = lanes
        self.run_scheduler = scheduler
        self.run_sender = sender
        self.dispatcher: Dispatcher | None = None
        # Event hooks are delivered by every engine that sends (the outbox is shared).
        self.hooks = HookDeliverer(settings, db, self.owner)
        self._stopping = asyncio.Event()
        self._wakes: list[asyncio.Event] = []
        self._listener = Listener(db)
        self._listener.subscribe(wakeups.ENGINE_CHANNEL, lambda _payload: self.wake())
        # After a lost connection, notifications may have been missed: look at once.
        self._listener.on_state(lambda live: self.wake() if live else None)
        self._tasks: list[asyncio.Task[None]] = []
        self._lane_tasks: list[asyncio.Task[None]] = []
        self._started_providers: list[Provider] = []

    async def start(self) -> None:
        if self._given_providers is not None:
            self.providers = dict(self._given_providers)
        else:
            self.providers = await start_providers(self.settings, self.db)
            self._started_providers = distinct(self.providers)
        self.dispatcher = Dispatcher(
            self.settings, self.db, self.providers, self.owner, clock=self.clock
        )
        await self._listener.start()
        if self.run_scheduler:
            self._tasks.append(asyncio.create_task(self._loop(self._schedule, "scheduler")))
            self._tasks.append(asyncio.create_task(self._loop(self._materialize, "materializer")))
            if self.settings.retention_days is not None:
                self._tasks.append(asyncio.create_task(self._loop(self._retain, "retention")))
        if self.run_sender:
            for i in range(self.lanes):
                self._lane_tasks.append(asyncio.create_task(self._lane(i)))
            await self.hooks.start()
            self._lane_tasks.append(asyncio.create_task(self._loop(self.hooks.step, "hooks")))
        log.info("engine %s started (%d lanes)", self.owner, self.lanes if self.run_sender else 0)

    def wake(self) -> None:
        """Something may be to do now (a campaign confirmed, started or resumed, messages
        queued): every loop of this engine looks at once."""
        for event in self._wakes:
            event.set()

    def _waker(self) -> asyncio.Event:
        event = asyncio.Event()
        self._wakes.append(event)
        return event

    async def _rest(self, wake: asyncio.Event, seconds: float) -> None:
        """Wait until woken, stopped, or `seconds` passed."""
        if seconds > 0 and not self._stopping.is_set():
            await pause(wake, seconds)

    async def _loop(self, step: Callable[[], Awaitable[float]], name: str) -> None:
        """Run `step` until stopped; it returns how long to rest before the next round (a
        wake-up cuts the rest short). The event is cleared before the step, so a wake-up
        that comes while it runs is not lost."""
        wake = self._waker()
        while not self._stopping.is_set():
            wake.clear()
            try:
                pause = await step()
            except Exception:
                log.exception("%s step failed; retrying", name)
                pause = self.settings.scheduler_interval
            await self._rest(wake, pause)

    async def _schedule(self) -> float:
        clock = self.clock
        await scheduler.start_due(self.db, clock)
        await scheduler.sweep_leases(self.db, clock)
        await scheduler.sweep_parked(self.db)
        await scheduler.sweep_expired(self.db, self.settings.receipt_timeout, clock())
        await scheduler.sweep_expiring(self.db, clock)
        await scheduler.decide_ab_tests(self.db, clock())
        await scheduler.finalize(self.db, clock)
        now = clock()
        upcoming = await scheduler.next_round(self.db, now)
        if upcoming is None:
            return self.settings.engine_idle_seconds
        if upcoming <= now:  # campaigns are sending: fold, sweep and finish at a steady pace
            return self.settings.scheduler_interval
        return min(self.settings.engine_idle_seconds, (upcoming - now).total_seconds())

    async def _materialize(self) -> float:
        await materialize.materialize_pending(self.db, self.settings.materialize_chunk, self.clock)
        return self.settings.engine_idle_seconds

    async def _retain(self) -> float:
        """One retention round (CLARION_RETENTION_DAYS); at once again while there is more."""
        assert self.settings.retention_days is not None
        done = await retention.purge_expired(
            self.db,
            self.settings.retention_days,
            batch=self.settings.retention_batch,
            campaigns=RETENTION_CAMPAIGNS,
        )
        return (
            0.0 if len(done.campaigns) == RETENTION_CAMPAIGNS else self.settings.retention_interval
        )

    async def _lane(self, index: int) -> None:
        assert self.dispatcher is not None
        wake = self._waker()
        idle = 0.01
        while not self._stopping.is_set():
            wake.clear()
            try:
                batch = await self.dispatcher.claim()
            except Exception:
                log.exception("claim failed")
                await self._rest(wake, 1.0)
                continue
            if not batch and self.dispatcher.saw_active:
                # Queued messages wait for their time (a retry, a sending window): sleep
                # until the first is due, so it leaves on time without polling meanwhile.
                due = await self.dispatcher.next_due()
                wait = (due - self.clock()).total_seconds() if due is not None else 0.0
                if wait > 0:
                    await self._rest(wake, min(wait, self.settings.engine_idle_seconds))
                    idle = 0.01
                    continue
            if not batch:
                # Nothing due. With campaigns sending, messages waiting for a retry become
                # due on their own: look again soon. With none, only a wake-up brings work.
                ceiling = (
                    self.settings.scheduler_interval
                    if self.dispatcher.saw_active
                    else self.settings.engine_idle_seconds
                )
                await self._rest(wake, idle)
                idle = min(idle * 2, ceiling)
                continue
            idle = 0.01
            try:
                await self.dispatcher.run_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Recording failed: the leases expire and the messages are sent again (the
                # provider deduplicates by message id where it can).
                log.exception("batch of %d failed; its leases will be released", len(batch))
                await self._release([m.id for m in batch])

    async def _release(self, ids: list[int] | None) -> int:
        async def work(session: AsyncSession) -> int:
            return await transitions.release_leases_of(session, self.owner, ids)

        try:
            return await in_transaction(self.db, work)
        except Exception:
            log.exception("could not release leases (they will expire)")
            return 0

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; let in-flight batches and steps finish briefly; release what is left."""
        self._stopping.set()
        self.hooks.stop_soon()  # a batch on the wire is answered and recorded, then it stops
        self.wake()
        # Every loop ends after its current step (see `stop_tasks`).
        await stop_tasks([*self._lane_tasks, *self._tasks], min(FINISH_GRACE, timeout * 0.7))
        await self.hooks.close()
        await self._listener.stop()
        released = await self._release(None)
        if released:
            log.info("released %d leases on shutdown", released)
        for provider in self._started_providers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(provider.close(), 2.0)
        self._tasks.clear()
        self._lane_tasks.clear()
