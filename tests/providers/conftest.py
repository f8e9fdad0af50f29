"""Protocol peers for the provider tests: fake HTTP APIs (aiohttp.web on 127.0.0.1, an
ephemeral port) and the in-repo SMSC simulator over TCP, plus a recording ReceiptSink."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from clarion.audience.models import Contact
from clarion.db.session import Database
from clarion.providers.base import InboundMessage, Receipt
from clarion.providers.smpp.smsc import Smsc

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeServer:
    """An HTTP server on a real socket; `requests` records what it received."""

    runner: web.AppRunner
    url: str
    requests: list[Recorded] = field(default_factory=list)


@pytest.fixture
async def http_server() -> AsyncIterator[
    Callable[[list[tuple[str, str, Handler]]], Awaitable[FakeServer]]
]:
    runners: list[web.AppRunner] = []

    async def start(routes: list[tuple[str, str, Handler]]) -> FakeServer:
        app = web.Application()
        server: FakeServer

        def recording(handler: Handler) -> Handler:
            async def wrapped(request: web.Request) -> web.StreamResponse:
                body = await request.read()
                server.requests.append(
                    Recorded(
                        request.method,
                        request.path,
                        dict(request.query),
                        dict(request.headers),
                        body,
                    )
                )
                return await handler(request)

            return wrapped

        for method, path, handler in routes:
            app.router.add_route(method, path, recording(handler))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        server = FakeServer(runner, f"http://127.0.0.1:{port}")
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    simulator = Smsc(credentials={"clarion": "secret"}, seed=7)
    await simulator.start()
    yield simulator
    await simulator.stop()


class RecordingSink:
    """A ReceiptSink that keeps what it is given; `fail` makes the next calls raise."""

    def __init__(self) -> None:
        self.receipts_: list[Receipt] = []
        self.inbound_: list[InboundMessage] = []
        self.fail = 0
        self.changed = asyncio.Event()

    async def receipts(self, items: Sequence[Receipt]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database down")
        self.receipts_.extend(items)
        self.changed.set()

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        self.inbound_.extend(items)
        self.changed.set()

    async def wait_for(self, receipts: int = 0, inbound: int = 0, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.receipts_) < receipts or len(self.inbound_) < inbound:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


async def add_contact(db: Database, account_id: int, phone: str) -> int:
    """A contact inserted directly (the contacts API belongs to another part)."""
    async with db.transaction() as session:
        contact = Contact(account_id=account_id, phone=phone, country="FR", attributes={})
        session.add(contact)
        await session.flush()
        return contact.id


async def contact_ids(db: Database, phone: str) -> list[int]:
    async with db.session(write=False) as session:
        return list(
            (await session.execute(select(Contact.id).where(Contact.phone == phone))).scalars()
        )


async def opt_outs(db: Database, contact_id: int) -> list[str]:
    from clarion.audience.optouts import opt_outs_of

    async with db.session(write=False) as session:
        return (await opt_outs_of(session, [contact_id]))[contact_id]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


async def add_sent_message(
    db: Database, account_id: int, provider: str, provider_message_id: str, channel: str = "sms"
) -> int:
    """A campaign message recorded as `sent` through `provider` (what the dispatcher writes
    after an accepted submit), for receipts to apply to."""
    from clarion.campaigns.models import Campaign
    from clarion.messages.models import Message

    async with db.transaction() as session:
        campaign = Campaign(
            account_id=account_id, name="c", channel=channel, status="sending", recipients=1, sent=1
        )
        session.add(campaign)
        await session.flush()
        message = Message(
            campaign_id=campaign.id,
            account_id=account_id,
            phone="+33612345678",
            country="FR",
            channel=channel,
            status="sent",
            provider=provider,
            provider_message_id=provider_message_id,
        )
        session.add(message)
        await session.flush()
        return message.id


async def message_state(db: Database, message_id: int) -> tuple[str, str | None]:
    from clarion.messages.models import Message

    async with db.session(write=False) as session:
        message = await session.get(Message, message_id)
        assert message is not None
        return message.status, message.error_code
