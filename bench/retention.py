"""Retention: how fast finished campaigns' rows go, and what it costs a dispatch running at
the same time.

On a fresh database (SQLite: a temporary file; PostgreSQL: a database created and dropped
here): --old finished campaigns of --per delivered messages with one raw receipt and one
tracked link each (a tenth of the links clicked once: a click row and the link's counter),
past the retention age, and one campaign sending with enough queued messages. Then:

1. dispatch alone for --seconds (baseline): a Dispatcher with an instant in-process provider
   claims, submits, records and charges batches of 500 on the sending campaign;
2. retention alone on half the old campaigns (rows deleted per second, all tables together,
   in 5,000-message batches, one short transaction each; the rows by table are printed);
3. both at once: the other half purged while the dispatch runs; dispatch rate and batch
   latency (median, p99, worst) next to the baseline's, and the purge rate.

Usage:
    python bench/retention.py            # 10 old campaigns x 50,000 messages
    python bench/retention.py --quick    # 4 old campaigns x 10,000 messages
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from dispatch import fresh_backend
from ops_seed import account, campaign

from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.operations import retention
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

BATCH = 5_000


class Instant:
    """Accepts every message at once (the provider is not what is measured)."""

    name = "bench"
    channel = "sms"
    capabilities = Capabilities(max_batch=500)

    async def start(self, sink: ReceiptSink) -> None:
        return None

    async def close(self) -> None:
        return None

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        return [SubmitResult(m.id, Outcome.ACCEPTED, f"b-{m.id}") for m in batch]

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        return dict.fromkeys(phones, True)

    async def receipts(self, items: Sequence[Receipt]) -> None:
        return None

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        return None


async def dispatch_for(dispatcher: Dispatcher, stop: asyncio.Event) -> tuple[int, list[float]]:
    """Batches until `stop`: messages sent and each batch's latency (ms)."""
    sent, latencies = 0, []
    while not stop.is_set():
        t = time.perf_counter()
        batch = await dispatcher.claim(500)
        if not batch:
            break
        await dispatcher.run_batch(batch)
        latencies.append((time.perf_counter() - t) * 1000)
        sent += len(batch)
        await asyncio.sleep(0)
    return sent, latencies


def describe(name: str, sent: int, seconds: float, ms: list[float]) -> str:
    ms = sorted(ms) or [float("nan")]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"  {name:<22} {sent / seconds:8.0f} msg/s   batch median {statistics.median(ms):6.1f} ms"
        f"   p99 {p99:6.1f} ms   max {ms[-1]:6.1f} ms"
    )


def purged(name: str, rows: Counter[str], took: float) -> str:
    total = sum(rows.values())
    tables = ", ".join(f"{table} {n:,}" for table, n in sorted(rows.items()))
    return f"  {name:<22} {total / took:8.0f} rows/s   ({total:,} rows in {took:.1f} s: {tables})"


async def purge(db: Database, ids: list[int], now) -> tuple[Counter[str], float]:
    t = time.perf_counter()
    rows: Counter[str] = Counter()
    for cid in ids:
        done = await retention.purge_campaign(db, cid, batch=BATCH, now=now)
        rows.update(done.rows)
    return rows, time.perf_counter() - t


async def run(name: str, old: int, per: int, seconds: float) -> None:
    backend = await fresh_backend(name)
    db = Database(backend.url)
    try:
        aid = await account(db, credits=10**12)
        past = utcnow() - timedelta(days=400)
        olds = [
            await campaign(
                db, aid, per, status="completed", completed_at=past, receipts=True, links=True
            )
            for _ in range(old)
        ]
        await campaign(db, aid, 200_000, status="sending")
        settings = Settings(database_url=backend.url, worker_batch_size=500)
        dispatcher = Dispatcher(settings, db, {"sms": Instant()}, "bench")
        print(
            f"{backend.name}: {old} finished campaigns x {per:,} messages (+1 raw receipt and "
            f"1 tracked link each, every 10th link clicked once), 1 campaign sending; "
            f"purge batches of {BATCH:,} messages"
        )

        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        t = time.perf_counter()
        sent, ms = await dispatch_for(dispatcher, stop)
        print(describe("dispatch alone", sent, time.perf_counter() - t, ms))

        half = len(olds) // 2
        now = utcnow()
        rows, took = await purge(db, olds[:half], now)
        print(purged("retention alone", rows, took))

        stop = asyncio.Event()
        t = time.perf_counter()
        purging = asyncio.create_task(purge(db, olds[half:], now))
        dispatching = asyncio.create_task(dispatch_for(dispatcher, stop))
        rows, took = await purging
        stop.set()
        sent, ms = await dispatching
        print(describe("dispatch + retention", sent, time.perf_counter() - t, ms))
        print(purged("retention + dispatch", rows, took))
    finally:
        await db.dispose()
        await backend.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument("--old", type=int)
    parser.add_argument("--per", type=int)
    parser.add_argument("--seconds", type=float)
    args = parser.parse_args()
    old = args.old or (4 if args.quick else 10)
    per = args.per or (10_000 if args.quick else 50_000)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    for name in args.backends.split(","):
        asyncio.run(run(name.strip(), old, per, seconds))


if __name__ == "__main__":
    main()
