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

from clarion import __version__
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.hooks import addresses, repository
from clarion.hooks.repository import Claimed
from clarion.schemas import utc_z

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


def batch_body(events: list[Any]) -> bytes:
    return orjson.dumps(
        {
            "type": "batch",
            "events": [
                {"id": e.id, "type": e.type, "at": utc_z(e.at), "data": e.data} for e in events
            ],
        }
    )


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
        now = self.clock()
        disabled = await self._in_tx(lambda s: repository.disable_failing(s, now, DISABLE_AFTER))
        if disabled:
            log.warning("hooks %s disabled: every delivery failed for 3 days", disabled)
        claimed: list[Claimed] = await self._in_tx(
            lambda s: repository.claim_hooks(
                s, self.owner, self.settings.hooks_concurrency, now, self._lease_until(now)
            )
        )
        if not claimed:
            return self.settings.engine_idle_seconds
        results = await asyncio.gather(*(self._serve(h) for h in claimed), return_exceptions=True)
        for hook, result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):
                log.error("hook %d: delivery round failed: %r", hook.id, result)
        return 0.0

    async def _serve(self, hook: Claimed) -> None:
        """Send the hook's due batches one after the other while they succeed, then let the
        hook go."""
        signer = Webhook(hook.secret)
        try:
            while not self._stopping:
                now = self.clock()
                found = await self._in_tx(partial(self._next, hook_id=hook.id, now=now))
                if found is None:
                    return
                delivery_id, body = found
                ok, code, error = await self._post(hook, signer, delivery_id, body)
                done = self.clock()
                await self._in_tx(
                    partial(
                        self._record,
                        hook_id=hook.id,
                        delivery_id=delivery_id,
                        ok=ok,
                        code=code,
                        error=error,
                        now=done,
                    )
                )
                if not ok:
                    return  # the hook waits for its retry: later batches stay behind it
        finally:
            with contextlib.suppress(Exception):
                await self._in_tx(lambda s: repository.release_leases(s, self.owner, [hook.id]))

    async def _next(
        self, session: AsyncSession, hook_id: int, now: datetime
    ) -> tuple[int, bytes] | None:
        """The delivery to send now and its body, with the lease renewed; None: nothing due
        (or the lease was lost)."""
        if not await repository.renew_lease(session, hook_id, self.owner, self._lease_until(now)):
            return None
        pending = await repository.oldest_pending(session, hook_id)
        if pending is not None:
            delivery_id, due = pending
            if due > now:
                return None
        else:
            cut = await repository.cut_delivery(
                session, hook_id, self.settings.hooks_batch_size, now
            )
            if cut is None:
                return None
            delivery_id = cut
        events = await repository.events_of(session, delivery_id)
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
        hook_id: int,
        delivery_id: int,
        ok: bool,
        code: int | None,
        error: str | None,
        now: datetime,
    ) -> None:
        delivery = await repository.delivery_for_attempt(session, delivery_id)
        if delivery is None:
            return  # finished meanwhile by a worker that took over an expired lease
        delivery.attempts += 1
        delivery.last_status_code = code
        delivery.last_error = error
        delivery.updated_at = now
        if delivery.window_started_at is None:
            delivery.window_started_at = now
        if ok:
            delivery.status = repository.SUCCEEDED
            await repository.hook_succeeded(session, hook_id)
            return
        window_over = now - delivery.window_started_at >= RETRY_WINDOW
        if delivery.attempts >= MIN_ATTEMPTS and window_over:
            delivery.status = repository.FAILED
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts, self.rng)
        await repository.hook_failed(session, hook_id, now)
