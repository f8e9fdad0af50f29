"""Receipt ingestion through the HTTP webhook path.

Starts a real `clarion serve --no-sender` process on a fresh database (a temporary SQLite
file; a PostgreSQL database created and dropped for the run), pre-creates a campaign of
`--messages` messages recorded as sent through the simulator, then POSTs one `delivered`
receipt per message to `/webhooks/simulator` exactly as `clarion simulator` does (signed
batches of `--batch`, `--concurrency` requests in flight), and reports receipts/s. It then
checks that every message is delivered and that the campaign counters add up.

    .venv/bin/python bench/receipts.py                  # both backends, 100,000 receipts
    .venv/bin/python bench/receipts.py --backend sqlite --messages 50000
    .venv/bin/python bench/receipts.py --quick          # smoke run
"""

import argparse
import asyncio
import hashlib
import hmac
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import orjson
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from audience_server import free_port, start_server, stop_server, wait_ready

from clarion.accounts.service import create_account
from clarion.campaigns import counters
from clarion.campaigns.models import Campaign
from clarion.db.migrate import upgrade
from clarion.db.session import Database
from clarion.messages import tally

PG_ADMIN_DSN = os.environ.get(
    "CLARION_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SECRET = "bench-secret"
TARGET = 3000.0

SEED_SQLITE = """
WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < :n)
INSERT INTO message (campaign_id, account_id, contact_id, phone, country, channel, status,
    units, price, attempts, next_attempt_at, provider, created_at, updated_at, sent_at)
SELECT :campaign, :account, x, '+3361' || printf('%07d', x), 'FR', 'sms', 'sent',
    1, 700, 1, :now, 'simulator', :now, :now, :now FROM seq
"""
SEED_PG = """
INSERT INTO message (campaign_id, account_id, contact_id, phone, country, channel, status,
    units, price, attempts, next_attempt_at, provider, created_at, updated_at, sent_at)
SELECT :campaign, :account, x, '+3361' || lpad(x::text, 7, '0'), 'FR', 'sms', 'sent',
    1, 700, 1, :now, 'simulator', :now, :now, :now FROM generate_series(1, :n) AS x
"""


async def seed(url: str, n: int) -> tuple[int, list[str]]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            account, _ = await create_account(session, "bench", 0)
            campaign = Campaign(account_id=account.id, name="bench", channel="sms",
                                status="sending", recipients=n, sent=n)  # fmt: skip
            session.add(campaign)
            await session.flush()
            now: object = datetime.now(UTC)
            if db.is_sqlite:
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
            await session.execute(
                text(SEED_SQLITE if db.is_sqlite else SEED_PG),
                {"campaign": campaign.id, "account": account.id, "now": now, "n": n},
            )
            await session.execute(
                text(
                    "UPDATE message SET provider_message_id = 'sim-' || CAST(id AS TEXT) "
                    "WHERE campaign_id = :c"
                ),
                {"c": campaign.id},
            )
            ids = (
                await session.execute(
                    text("SELECT provider_message_id FROM message WHERE campaign_id = :c"),
                    {"c": campaign.id},
                )
            ).scalars()
            return campaign.id, list(ids)
    finally:
        await db.dispose()


async def verify(url: str, campaign_id: int, n: int) -> str:
    db = Database(url)
    try:
        async with db.session(write=False) as session:
            c = await session.get(Campaign, campaign_id)
            assert c is not None
            delivered = (
                await session.execute(
                    text("SELECT count(*) FROM message WHERE campaign_id = :c AND status = :s"),
                    {"c": campaign_id, "s": "delivered"},
                )
            ).scalar_one()
            events = (
                await session.execute(text("SELECT count(*) FROM receipt_event"))
            ).scalar_one()
            # The counters as readers see them: the row plus the changes not folded yet
            # (`serve --no-sender` runs no scheduler, so nothing is folded here).
            live = counters.live(c, (await counters.pending(session, [c.id])).get(c.id))
        parts = sum(live[status] for status in tally.STATUSES)
        ok = delivered == n and live["delivered"] == n and parts == c.recipients and events == n
        verdict = "OK" if ok else "MISMATCH"
        return f"{verdict}: {delivered} delivered, counters {live['delivered']}, {events} events"
    finally:
        await db.dispose()


async def post_receipts(base: str, ids: list[str], batch: int, concurrency: int) -> float:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    bodies = []
    for start in range(0, len(ids), batch):
        receipts = [
            {"providerMessageId": i, "status": "delivered", "errorCode": None,
             "errorMessage": None, "timestamp": stamp}
            for i in ids[start : start + batch]
        ]  # fmt: skip
        body = orjson.dumps({"receipts": receipts, "inbound": []})
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        bodies.append((body, signature))
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def worker() -> None:
            while queue:
                body, signature = queue.pop()
                headers = {"Content-Type": "application/json", "X-Simulator-Signature": signature}
                async with session.post(
                    f"{base}/webhooks/simulator", data=body, headers=headers
                ) as r:
                    answer = await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"webhook answered {r.status}: {answer[:300]!r}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def create_pg() -> tuple[str, str]:
    name = f"clarion_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


async def drop_pg(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run_backend(backend: str, args: argparse.Namespace) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="clarion-bench-"))
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        pg_name, url = asyncio.run(create_pg())
    process = None
    try:
        upgrade(url)
        t0 = time.perf_counter()
        campaign_id, ids = asyncio.run(seed(url, args.messages))
        print(f"[{backend}] seeded {len(ids):,} sent messages in {time.perf_counter() - t0:.1f}s")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # The webhook exists only where an external simulator is configured; this server
        # sends nothing (--no-sender), so the URL is never called.
        sim = {"CLARION_SIMULATOR_SECRET": SECRET, "CLARION_SIMULATOR_URL": "http://127.0.0.1:9"}
        process = start_server(url, port, tmp, sim)
        asyncio.run(wait_ready(base, process))
        elapsed = asyncio.run(post_receipts(base, ids, args.batch, args.concurrency))
        rate = len(ids) / elapsed
        print(
            f"[{backend}] {len(ids):,} receipts in {elapsed:.2f}s = {rate:,.0f} receipts/s "
            f"(batches of {args.batch}, {args.concurrency} in flight; target {TARGET:,.0f}/s: "
            f"{rate / TARGET:.2f}x)"
        )
        print(f"[{backend}] {asyncio.run(verify(url, campaign_id, len(ids)))}")
        return rate
    finally:
        if process is not None:
            stop_server(process)
        if pg_name:
            asyncio.run(drop_pg(pg_name))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--messages", type=int, default=100_000, help="receipts to ingest")
    parser.add_argument("--batch", type=int, default=1000, help="receipts per webhook POST")
    parser.add_argument("--concurrency", type=int, default=4, help="POSTs in flight")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.messages = min(args.messages, 5_000)
    print(f"load before: {load()} (1/5/15 min), {os.cpu_count()} cpus")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        run_backend(backend, args)
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
