"""Engine fixtures: a scriptable in-process provider and campaigns seeded straight into the
database (as the campaigns domain leaves them after confirm)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from clarion.accounts import ledger
from clarion.audience.models import Contact, ContactList, ListMember
from clarion.campaigns import counters
from clarion.campaigns.models import Campaign
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages.models import CampaignTally, Message
from clarion.pricing.models import Rate
from clarion.providers.base import (
    Capabilities,
    InboundMessage,
    OutboundMessage,
    Outcome,
    Receipt,
    ReceiptSink,
    SubmitResult,
)
from clarion.sending.dispatcher import Dispatcher
from clarion.sending.scheduler import tick

Script = Callable[[OutboundMessage, int], SubmitResult | None]


@dataclass
class FakeProvider:
    """Accepts everything unless `script` says otherwise; counts submissions per message id
    and, like the simulator, accepts a message id only once (deduplication)."""

    channel: str = "sms"
    name: str = "fake"
    script: Script | None = None
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(max_batch=50))
    no_rcs: set[str] = field(default_factory=set)
    submits: Counter[int] = field(default_factory=Counter)
    accepted: Counter[int] = field(default_factory=Counter)
    sent: list[OutboundMessage] = field(default_factory=list)

    async def start(self, sink: ReceiptSink) -> None:
        return None

    async def close(self) -> None:
        return None

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        await asyncio.sleep(0)
        out = []
        for m in batch:
            self.submits[m.id] += 1
            if self.accepted[m.id]:  # a retried hand-off: deduplicated by our message id
                out.append(SubmitResult(m.id, Outcome.ACCEPTED, f"{self.name}-{m.id}"))
                continue
            result = self.script(m, self.submits[m.id]) if self.script else None
            if result is None:
                if self.channel == "rcs" and m.to in self.no_rcs:
                    result = SubmitResult(m.id, Outcome.NO_CAPABILITY)
                else:
                    result = SubmitResult(m.id, Outcome.ACCEPTED, f"{self.name}-{m.id}")
            if result.outcome == Outcome.ACCEPTED:
                self.accepted[m.id] += 1
                self.sent.append(m)
            out.append(result)
        return out

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        return {p: p not in self.no_rcs for p in phones}


class NullSink:
    async def receipts(self, items: Sequence[Receipt]) -> None:
        return None

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        return None


async def set_rates(db: Database, rows: Sequence[tuple[str, str, str, int]]) -> None:
    async with db.transaction() as s:
        await s.execute(
            insert(Rate),
            [{"channel": c, "country": co, "category": ca, "price": p} for c, co, ca, p in rows],
        )


async def seed_contacts(
    db: Database,
    account_id: int,
    phones: Sequence[str],
    *,
    country: str = "FR",
    list_name: str = "list",
    first_names: Sequence[str | None] | None = None,
) -> int:
    """Contacts (reused when the phone exists) in a new list; returns the list id."""
    async with db.transaction() as s:
        lst = ContactList(account_id=account_id, name=list_name)
        s.add(lst)
        await s.flush()
        existing = dict(
            (
                await s.execute(
                    select(Contact.phone, Contact.id).where(Contact.account_id == account_id)
                )
            ).all()
        )
        new = [p for p in phones if p not in existing]
        if new:
            names = dict(zip(phones, first_names or [None] * len(phones), strict=True))
            now = utcnow()
            await s.execute(
                insert(Contact),
                [
                    {
                        "account_id": account_id,
                        "phone": p,
                        "country": country,
                        "first_name": names[p],
                        "attributes": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for p in new
                ],
            )
            existing = dict(
                (
                    await s.execute(
                        select(Contact.phone, Contact.id).where(Contact.account_id == account_id)
                    )
                ).all()
            )
        await s.execute(
            insert(ListMember), [{"list_id": lst.id, "contact_id": existing[p]} for p in phones]
        )
        return lst.id


def phones(n: int, start: int = 0, prefix: str = "+3361") -> list[str]:
    return [f"{prefix}{start + i:07d}" for i in range(n)]


async def seed_campaign(
    db: Database,
    account_id: int,
    list_ids: Sequence[int],
    *,
    channel: str = "sms",
    text: str = "Hello {{firstName}}",
    reserve: int = 0,
    status: str = "sending",
    exclude_list_ids: Sequence[int] = (),
    fallback_channel: str | None = None,
    message: dict[str, Any] | None = None,
    scheduled_at: Any = None,
) -> int:
    """A confirmed campaign, with `reserve` (1/10,000 credit) held for it."""
    async with db.transaction() as s:
        c = Campaign(
            account_id=account_id,
            name="c",
            channel=channel,
            status=status,
            message=message or {"text": text},
            list_ids=list(list_ids),
            exclude_list_ids=list(exclude_list_ids),
            sender="Clarion",
            fallback_channel=fallback_channel,
            scheduled_at=scheduled_at,
            confirmed_at=utcnow(),
            started_at=utcnow() if status == "sending" else None,
            reserved=reserve,
        )
        s.add(c)
        await s.flush()
        await ledger.reserve(s, account_id, c.id, reserve)
        return c.id


async def drain(
    db: Database,
    dispatcher: Dispatcher,
    campaign_ids: Sequence[int],
    *,
    max_rounds: int = 500,
    chunk: int = 50_000,
) -> None:
    """Run scheduler ticks and batches until the campaigns are final (bounded)."""
    for _ in range(max_rounds):
        await tick(db, chunk)
        async with db.session(write=False) as s:
            statuses = (
                await s.execute(select(Campaign.status).where(Campaign.id.in_(campaign_ids)))
            ).scalars()
            if all(st in ("completed", "cancelled") for st in statuses):
                return
        batch = await dispatcher.claim()
        if batch:
            await dispatcher.run_batch(batch)
        else:
            await asyncio.sleep(0.02)
    raise AssertionError("campaigns did not complete")


async def campaign(db: Database, campaign_id: int) -> Campaign:
    """The campaign with its counters as of now (its row plus what is not folded yet), on a
    detached object: reading it writes nothing."""
    async with db.session(write=False) as s:
        c = await s.get(Campaign, campaign_id)
        assert c is not None
        unfolded = (await counters.pending(s, [campaign_id])).get(campaign_id)
        s.expunge(c)
    for column, value in counters.live(c, unfolded).items():
        setattr(c, column, value)
    return c


async def assert_partition(db: Database, campaign_id: int) -> Campaign:
    """The campaign's counters equal the messages' statuses and add up to recipients.

    Counters and counts are read by one statement, so from one snapshot: receipts may still
    be moving messages (a provider's webhooks outlive the worker that sent them)."""
    fields = ("queued", "sending", "sent", "delivered", "read", "failed", "skipped")
    counted = [
        select(func.count())
        .where(
            Message.campaign_id == campaign_id,
            Message.contact_id.is_not(None),
            Message.status == f,
        )
        .scalar_subquery()
        for f in fields
    ]

    def kept(column: str) -> Any:
        unfolded = (
            select(func.coalesce(func.sum(getattr(CampaignTally, column)), 0))
            .where(CampaignTally.campaign_id == campaign_id)
            .scalar_subquery()
        )
        return getattr(Campaign, column) + unfolded

    async with db.session(write=False) as s:
        row = (
            await s.execute(
                select(*(kept(f) for f in fields), kept("recipients"), *counted).where(
                    Campaign.id == campaign_id
                )
            )
        ).one()
    kept, counts = row[: len(fields)], row[len(fields) + 1 :]
    assert dict(zip(fields, kept, strict=True)) == dict(zip(fields, counts, strict=True))
    assert sum(kept) == row[len(fields)]
    return await campaign(db, campaign_id)


@pytest.fixture
def engine_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "worker_batch_size": 100,
            "retry_base_seconds": 0.01,
            "retry_max_seconds": 0.05,
            "worker_max_attempts": 4,
        }
    )


@pytest.fixture
def sms() -> FakeProvider:
    return FakeProvider("sms")


@pytest.fixture
def make_dispatcher(
    engine_settings: Settings, db: Database, sms: FakeProvider
) -> Callable[..., Dispatcher]:
    def make(
        providers: dict[str, Any] | None = None, owner: str = "test-worker", **kw: Any
    ) -> Dispatcher:
        s = engine_settings.model_copy(update=kw)
        return Dispatcher(s, db, providers or {"sms": sms}, owner)

    return make
