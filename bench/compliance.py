"""Compliance benchmark: what sending hours and the frequency cap cost the engine.

Each backend gets a fresh database (PostgreSQL: created and dropped here; SQLite: a
temporary file) and one in-process engine (3 lanes, default intervals) with an in-process
provider that accepts everything at once, so the figures are the engine's own:

1. dispatch of --messages messages with no compliance settings, then of the same audience
   again with a "*" row open all week (every recipient's place and window evaluated) and a
   frequency cap that nobody reaches (every claim counts the contacts' recent sends under
   its lock): the throughput ratio on/off;
2. --held messages whose window is closed (Saturday evening in Paris, a row for Monday to
   Friday): the time of the first pass that holds them, then the engine process's CPU while
   it waits with all of them held;
3. the time from the window opening (the engine's clock jumps to three seconds before Monday
   09:00 in Paris) to the first message handed to the provider.

Usage:
    python bench/compliance.py                # 20,000 messages, 100,000 held
    python bench/compliance.py --quick        # a small smoke run
    python bench/compliance.py --backends pg --held 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
from dispatch import PRICE, fresh_backend, seed, sub_list

from clarion.accounts import ledger
from clarion.campaigns.models import Campaign
from clarion.compliance.models import ComplianceSettingsRow
from clarion.compliance.settings import DEFAULTS
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages.models import Message
from clarion.providers.base import Capabilities, OutboundMessage, Outcome, ReceiptSink, SubmitResult
from clarion.sending.engine import Engine

PARIS = ZoneInfo("Europe/Paris")
ALL_WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class InstantProvider:
    """Accepts every message at once; notes when the first one came."""

    name = "bench"
    channel = "sms"
    capabilities = Capabilities(max_batch=500)

    def __init__(self) -> None:
        self.first_at: float | None = None
        self.count = 0

    async def start(self, sink: ReceiptSink) -> None:
        return None

    async def close(self) -> None:
        return None

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        if self.first_at is None and batch:
            self.first_at = time.monotonic()
        self.count += len(batch)
        return [SubmitResult(m.id, Outcome.ACCEPTED, f"b-{m.id}") for m in batch]

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        return dict.fromkeys(phones, True)


class MovingClock:
    def __init__(self, start: datetime) -> None:
        self.jump(start)

    def jump(self, to: datetime) -> None:
        self._base, self._t0 = to, time.monotonic()

    def __call__(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._t0)


async def confirm(db: Database, aid: int, lid: int, n: int) -> int:
    async with db.transaction() as s:
        c = Campaign(
            account_id=aid,
            name="bench",
            channel="sms",
            status="sending",
            message={"text": "Hello {{firstName}}"},
            list_ids=[lid],
            exclude_list_ids=[],
            sender="Clarion",
            confirmed_at=utcnow(),
            started_at=utcnow(),
            reserved=n * PRICE,
        )
        s.add(c)
        await s.flush()
        await ledger.reserve(s, aid, c.id, n * PRICE)
        return int(c.id)


async def set_rules(db: Database, aid: int, rows: list[dict], cap: tuple[int, int] | None) -> None:
    async with db.transaction() as s:
        row = await s.get(ComplianceSettingsRow, aid)
        if row is None:
            row = ComplianceSettingsRow(
                account_id=aid,
                opt_out_keywords=list(DEFAULTS.opt_out_keywords),
                opt_in_keywords=list(DEFAULTS.opt_in_keywords),
                help_keywords=list(DEFAULTS.help_keywords),
            )
            s.add(row)
        row.sending_hours = rows
        row.cap_messages, row.cap_period_hours = cap if cap else (None, None)


async def status(db: Database, cid: int) -> str:
    async with db.session(write=False) as s:
        return str((await s.execute(select(Campaign.status).where(Campaign.id == cid))).scalar())


async def held(db: Database, cid: int) -> int:
    async with db.session(write=False) as s:
        stmt = select(func.count()).where(
            Message.campaign_id == cid, Message.status == "queued", Message.not_before.is_not(None)
        )
        return int((await s.execute(stmt)).scalar_one())


async def dispatch(db: Database, settings: Settings, cid: int) -> float:
    provider = InstantProvider()
    engine = Engine(settings, db, providers={"sms": provider})
    began = time.perf_counter()
    await engine.start()
    try:
        while await status(db, cid) != "completed":
            await asyncio.sleep(0.05)
        return time.perf_counter() - began
    finally:
        await engine.stop()


async def run_backend(name: str, messages: int, n_held: int, idle_seconds: float) -> None:
    backend = await fresh_backend(name)
    db = Database(backend.url)
    settings = Settings(database_url=backend.url)
    try:
        aid, everyone = await seed(
            db, max(messages, n_held), credits=3 * (messages + n_held) * PRICE
        )
        lid = await sub_list(db, aid, messages)
        off = await dispatch(db, settings, await confirm(db, aid, lid, messages))
        anywhere = {"country": "*", "days": ALL_WEEK, "start": "00:00", "end": "24:00"}
        await set_rules(db, aid, [{**anywhere, "region": None, "holidays": True}], (10, 24))
        on = await dispatch(db, settings, await confirm(db, aid, lid, messages))
        print(
            f"{backend.name}: dispatch of {messages:,} messages: {messages / off:,.0f}/s off, "
            f"{messages / on:,.0f}/s with hours and cap on (ratio on/off {off / on:.2f})"
        )

        lid2 = everyone if n_held >= messages else await sub_list(db, aid, n_held)
        weekdays = {"country": "FR", "region": None, "days": ALL_WEEK[:5], "holidays": True}
        await set_rules(db, aid, [{**weekdays, "start": "09:00", "end": "18:00"}], None)
        saturday = datetime(2026, 12, 5, 21, 0, tzinfo=PARIS).astimezone(UTC)
        clock = MovingClock(saturday)
        provider = InstantProvider()
        engine = Engine(settings, db, providers={"sms": provider}, clock=clock)
        cid = await confirm(db, aid, lid2, n_held)
        began = time.perf_counter()
        await engine.start()
        try:
            while await held(db, cid) < n_held:
                await asyncio.sleep(0.2)
            hold_pass = time.perf_counter() - began
            await asyncio.sleep(1.0)  # let the last batches settle
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(idle_seconds)
            cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            print(
                f"{backend.name}: {n_held:,} held: first pass {hold_pass:.1f} s "
                f"({n_held / hold_pass:,.0f}/s); then the engine process used {cpu:.1%} "
                f"of a core over {idle_seconds:.0f} s with all of them held "
                f"({provider.count} sent meanwhile)"
            )
            monday = datetime(2026, 12, 7, 9, 0, tzinfo=PARIS).astimezone(UTC)
            # A few seconds before: longer than an idle lane's longest rest, so that what is
            # measured is the lanes' timed wake-up, not the jump of the clock.
            lead = settings.engine_idle_seconds + 1.0
            clock.jump(monday - timedelta(seconds=lead))
            opens_at = time.monotonic() + lead
            while provider.first_at is None:
                await asyncio.sleep(0.01)
            print(
                f"{backend.name}: window opening to first message handed over: "
                f"{provider.first_at - opens_at:.3f} s"
            )
        finally:
            await engine.stop()
    finally:
        await db.dispose()
        await backend.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--held", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.quick:
        args.messages, args.held, args.idle_seconds = 2_000, 5_000, 3.0
    for name in args.backends.split(","):
        asyncio.run(run_backend(name.strip(), args.messages, args.held, args.idle_seconds))


if __name__ == "__main__":
    main()
