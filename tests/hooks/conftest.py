"""Hook fixtures: a real aiohttp receiver on a loopback socket that verifies every request's
signature with the `standardwebhooks` package, a movable clock, and a deliverer using it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.hooks import outbox
from clarion.hooks.deliverer import HookDeliverer
from clarion.hooks.models import HookEvent
from tests.conftest import AccountClient, Api, AppFactory

ALLOW = {"hooks_allow_http_hosts": ["127.0.0.1"]}


@dataclass
class Receiver:
    """Answers `fail_status` to the next `fail_next` requests (or to all while
    `always_fail`), 204 otherwise; keeps each verified batch (webhook-id, payload)."""

    secret: str | None = None
    fail_next: int = 0
    always_fail: bool = False
    fail_status: int = 503
    hang: bool = False  # the next request never gets an answer (its sender is killed)
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    batches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seen_ids: list[str] = field(default_factory=list)
    rejected: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for _, body in self.batches for e in body["events"]]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen_ids.append(request.headers.get("webhook-id", ""))
        if self.hang:
            self.hang = False
            self.hung.set()
            await asyncio.sleep(3600)
        if self.always_fail or self.fail_next > 0:
            self.fail_next = max(self.fail_next - 1, 0)
            return web.Response(status=self.fail_status)
        assert self.secret is not None
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return web.Response(status=401)
        self.batches.append((request.headers["webhook-id"], payload))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = runner.addresses[0][1]
    yield rec
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self.now = max(self.now, at)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def hook_api(make_api: AppFactory, clock: Clock) -> Api:
    return await make_api(clock=clock, **ALLOW)


@pytest.fixture
async def acme(hook_api: Api) -> AccountClient:
    return await hook_api.new_account("acme", credits=1000)


@pytest.fixture
async def make_deliverer(
    settings: Settings, db: Database, clock: Clock
) -> AsyncIterator[Callable[..., Any]]:
    made: list[HookDeliverer] = []

    async def make(owner: str = "test-worker", **overrides: Any) -> HookDeliverer:
        s = settings.model_copy(update={**ALLOW, "hooks_timeout": 2.0, **overrides})
        deliverer = HookDeliverer(s, db, owner, clock=clock, rng=lambda: 0.5)
        await deliverer.start()
        made.append(deliverer)
        return deliverer

    yield make
    for d in made:
        await d.close()


async def add_hook(
    client: AccountClient, receiver: Receiver, events: list[str] | None = None
) -> dict[str, Any]:
    r = await client.post("/hooks", json={"url": receiver.url, "events": events or ["*"]})
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    return r.json()


@dataclass
class OutboxEvent:
    """One event of the outbox, unpacked from its row."""

    hook_id: int
    delivery_id: int | None
    type: str
    at: str
    data: dict[str, Any]


async def outbox_events(db: Database) -> list[OutboxEvent]:
    """Every event in the outbox, in order (rows by id, then their events in order)."""
    async with db.session(write=False) as s:
        rows = (await s.execute(select(HookEvent).order_by(HookEvent.id))).scalars()
        return [
            OutboxEvent(row.hook_id, row.delivery_id, e["type"], e["at"], e["data"])
            for row in rows
            for e in json.loads(row.events)
        ]


async def outbox_count(db: Database, **where: Any) -> int:
    """Events in the outbox whose attributes (`OutboxEvent`) have the values given."""
    return sum(
        all(getattr(e, name) == value for name, value in where.items())
        for e in await outbox_events(db)
    )


async def deliver_all(deliverer: HookDeliverer, rounds: int = 50) -> None:
    """Rounds until a round finds nothing due."""
    for _ in range(rounds):
        if await deliverer.step() > 0:
            return
    raise AssertionError("the deliverer kept finding work")


async def record_events(
    db: Database, account_id: int, ids: Iterable[int], event_type: str = "message.clicked"
) -> None:
    """One outbox event per id (`{"messageId": id}`), in one transaction."""
    async with db.transaction() as s:
        for i in ids:
            await outbox.record_event(s, account_id, event_type, {"messageId": i}, utcnow())


async def deliveries(client: AccountClient, hook_id: int) -> list[dict[str, Any]]:
    """The hook's whole delivery log through the API, newest first."""
    r = await client.get(f"/hooks/{hook_id}/deliveries", params={"limit": 1000})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == len(r.json()["items"])
    return r.json()["items"]


def at(value: str) -> datetime:
    """A timestamp of the API as a datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
