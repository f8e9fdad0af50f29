"""The delivering worker: one of the engine's loops (`clarion worker`, `clarion serve`).

Each round leases the hooks that have something to send (SKIP LOCKED on PostgreSQL, so any
number of workers share them; SQLite has one embedded sender) and serves them concurrently.
A hook is served in order: its oldest pending delivery first (a retry that is due), else the
next batch of up to 500 undelivered events, cut into a new delivery before it is POSTed. A
worker killed mid-POST leaves the delivery pending and the hook's lease runs out: another
worker sends the same batch again (at least once; the `webhook-id` stays the same).

A non-2xx answer, a timeout (10 s) or a connection error is retried with exponential backoff
and jitter; after 24 h and at least 8 attempts the delivery is `failed` and the hook goes on
with its next batch. A hook whose every attempt failed for 3 days is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from clarion import __version__, metrics
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.hooks import addresses, repository
from clarion.hooks.models import ID_SPAN
from clarion.hooks.repository import Claimed

log = logging.getLogger(__name__)

RETRY_WINDOW = timedelta(hours=24)
MIN_ATTEMPTS = 8
BACKOFF_BASE = 10.0  # seconds before the 2nd attempt; doubling after each failure
BACKOFF_CAP = 4 * 3600.0
DISABLE_AFTER = timedelta(days=3)
ERROR_LENGTH = 500


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """How long to wait after `attempts` failed attempts: 10 s, 20 s, 40 s … up to 4 h, each
    within ±25% (jitter, so that receivers coming back are not hit by every retry at once).
    Within the 24 h window that is 14 attempts or more."""
    seconds = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return timedelta(seconds=seconds * (0.75 + 0.5 * rng()))


def batch_body(rows: list[Any]) -> bytes:
    """`{"type": "batch", "events": [{"type", "at", "data", "id"}]}` from outbox rows (id,
    events as JSON text): each event's id is its row's id times `ID_SPAN` plus its place in
    the row (a row holds at most `PER_ROW` < `ID_SPAN` events, so ids never meet), unless
    the stored event has one (an event written before events were packed keeps its id)."""
    events = []
    for row_id, packed in rows:
        first = row_id * ID_SPAN
        for place, event in enumerate(orjson.loads(packed)):
            event.setdefault("id", first + place)
            events.append(event)
    return orjson.dumps({"type": "batch", "events": events})


class HookDeliverer:
    """Delivers the outbox. `clock` rules the retry schedule and the 3-day rule (tests move
    it); the `webhook-timestamp` a receiver checks is always the real time of sending."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        owner: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.db = db
        self.owner = owner
        self.clock = clock
        self.rng = rng
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=addresses.GuardedResolver(self.settings),
            limit=max(self.settings.hooks_concurrency * 2, 10),
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.settings.hooks_timeout),
            headers={"User-Agent": f"Clarion-Hooks/{__version__}"},
        )

    def stop_soon(self) -> None:
        """Send no further batch: the one on the wire is still answered and recorded."""
        self._stopping = True

    async def close(self) -> None:
        """Stop, give the hooks this worker holds back (their pending deliveries are sent by
        whoever claims them next), close the HTTP session."""
        self._stopping = True
        with contextlib.suppress(Exception):
            await self._in_tx(lambda s: repository.release_leases(s, self.owner, None))
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _in_tx(self, work: Callable[[AsyncSession], Any]) -> Any:
        return await in_transaction(self.db, work)

    def _lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.hooks_lease_seconds)

    async def step(self) -> float:
        """One round; returns how long to rest (0 when there may be more to do)."""
        if not await self._any_enabled():
            # No hook to deliver to (and no failing one to disable): one read, then the
            # engine's idle pace rather than a write transaction every scheduler round. A
            # hook created or re-enabled meanwhile gets its first batch within that rest.
            return self.settings.engine_idle_seconds
        now = self.clock()

        async def disable_then_claim(session: AsyncSession) -> tuple[list[int], list[Claimed]]:
            disabled = await repository.disable_failing(session, now, DISABLE_AFTER)
            claimed = await repository.claim_hooks(
                session, self.owner, self.settings.hooks_concurrency, now, self._lease_until(now)
            )
            return disabled, claimed

        disabled, claimed = await self._in_tx(disable_then_claim)
        if disabled:
            log.warning("hooks %s disabled: every delivery failed for 3 days", disabled)
        if not claimed:
            return self._idle()
        results = await asyncio.gather(
            *(self._serve(h, self._lease_until(now)) for h in claimed), return_exceptions=True
        )
        sent = 0
        for hook, result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):
                log.error("hook %d: delivery round failed: %r", hook.id, result)
            else:
                sent += result
        return 0.0 if sent else self._idle()

    async def _any_enabled(self) -> bool:
        async with self.db.session(write=False) as session:
            return await repository.any_enabled(session)

    def _idle(self) -> float:
        # Nothing wakes this loop when an event is written (the outbox is written inside
        # every sending transaction; a notification each would cost more than a look), so it
        # looks again at the pace of the scheduler.
        return min(self.settings.scheduler_interval, self.settings.engine_idle_seconds)

    async def _serve(self, hook: Claimed, lease_until: datetime) -> int:
        """Send the hook's due batches one after the other while they succeed, then let the
        hook go; returns how many attempts were made. While a batch is on the wire the next
        one is read and cut (it stays pending behind this one should this one fail), so the
        database and the receiver work at the same time; batches still leave one at a time,
        in order."""
        signer = Webhook(hook.secret)
        lease = [lease_until]
        attempts = 0
        try:
            batch = await self._in_tx(partial(self._prepare, hook=hook, lease=lease, besides=None))
            while batch is not None and not self._stopping:
                delivery_id, body = batch
                posting: asyncio.Future[tuple[bool, int | None, str | None]]
                posting = asyncio.ensure_future(self._post(hook, signer, delivery_id, body))
                preparing: asyncio.Future[tuple[int, bytes] | None] = asyncio.ensure_future(
                    self._in_tx(partial(self._prepare, hook=hook, lease=lease, besides=delivery_id))
                )
                await asyncio.wait((posting, preparing))  # type: ignore[type-var]
                ok, code, error = posting.result()
                attempts += 1
                await self._in_tx(
                    partial(
                        self._record,
                        hook=hook,
                        delivery_id=delivery_id,
                        ok=ok,
                        code=code,
                        error=error,
                        now=self.clock(),
                    )
                )
                metrics.hook_deliveries_total.labels("succeeded" if ok else "failed").inc()
                if not ok:
                    break  # the hook waits for its retry: later batches stay behind it
                batch = preparing.result()
        finally:
            with contextlib.suppress(Exception):
                await self._in_tx(lambda s: repository.release_leases(s, self.owner, [hook.id]))
        return attempts

    async def _prepare(
        self, session: AsyncSession, *, hook: Claimed, lease: list[datetime], besides: int | None
    ) -> tuple[int, bytes] | None:
        """The delivery to send next (other than `besides`, in flight) and its body: the
        oldest pending one if it is due, else a new batch; None when nothing is due or the
        lease was lost. The lease is renewed once half of it has gone."""
        now = self.clock()
        half = timedelta(seconds=self.settings.hooks_lease_seconds / 2)
        if lease[0] - now < half:
            lease[0] = self._lease_until(now)
            if not await repository.renew_lease(session, hook.id, self.owner, lease[0]):
                return None
        pending = await repository.oldest_pending(session, hook.id, besides=besides)
        if pending is not None:
            delivery_id, due = pending
            if due > now:
                return None
            return delivery_id, batch_body(await repository.events_of(session, delivery_id))
        cut = await repository.cut_delivery(session, hook.id, self.settings.hooks_batch_size, now)
        if cut is None:
            return None
        delivery_id, events = cut
        return delivery_id, batch_body(events)

    async def _post(
        self, hook: Claimed, signer: Webhook, delivery_id: int, body: bytes
    ) -> tuple[bool, int | None, str | None]:
        """(success, HTTP status, error) of one attempt."""
        assert self._http is not None, "start() first"
        try:
            addresses.check_url(hook.url, self.settings)
        except addresses.AddressRefused as exc:
            return False, None, f"url {exc}"
        msg_id = f"msg_{delivery_id}"
        sent_at = datetime.now(UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signer.sign(msg_id, sent_at, body.decode()),
        }
        try:
            async with self._http.post(
                hook.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                code = response.status
                if 200 <= code < 300:
                    return True, code, None
                return False, code, f"HTTP {code} {response.reason or ''}".strip()[:ERROR_LENGTH]
        except TimeoutError:
            return False, None, f"no answer within {self.settings.hooks_timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return False, None, f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]

    async def _record(
        self,
        session: AsyncSession,
        *,
        hook: Claimed,
        delivery_id: int,
        ok: bool,
        code: int | None,
        error: str | None,
        now: datetime,
    ) -> None:
        """Write the attempt's outcome (a delivery finished meanwhile by a worker that took
        over an expired lease is left alone)."""
        if ok:
            assert code is not None
            await repository.mark_succeeded(session, delivery_id, code, now)
            if hook.failing:
                await repository.hook_succeeded(session, hook.id)
                hook.failing = False
            return
        delivery = await repository.delivery_for_attempt(session, delivery_id)
        if delivery is None:
            return
        delivery.attempts += 1
        delivery.last_status_code = code
        delivery.last_error = error
        delivery.updated_at = now
        if delivery.window_started_at is None:
            delivery.window_started_at = now
        window_over = now - delivery.window_started_at >= RETRY_WINDOW
        if delivery.attempts >= MIN_ATTEMPTS and window_over:
            delivery.status = repository.FAILED
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts, self.rng)
        await repository.hook_failed(session, hook.id, now)
        hook.failing = True
