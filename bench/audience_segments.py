"""Benchmark: GET /segments/{id}/count and calculateGoal of a campaign targeting that
segment, over many contacts, with a 3-condition filter (country, an attribute by equality,
an attribute by range).

    python bench/audience_segments.py                      # 1,000,000 contacts, PostgreSQL
    python bench/audience_segments.py --quick              # 20,000 contacts, smoke run
    python bench/audience_segments.py --contacts 200000 --backend both

The count is timed through HTTP (the real ASGI app, in process); calculateGoal by calling
the service in its own transaction, as bench/estimate.py does; then the campaign is
materialized once (the same audience clause, chunked), its message count checked against
the estimate. The baseline, measured in the
same run, is a bare `SELECT count(*) FROM contact WHERE account_id = ?` (reading every
contact of the account once). Targets (PostgreSQL, 1,000,000 contacts): count < 0.5 s,
calculateGoal < 2 s. Each PostgreSQL run uses its own fresh database, dropped afterwards.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clarion.accounts.service import create_account
from clarion.app import create_app
from clarion.campaigns import service
from clarion.campaigns.models import Campaign
from clarion.config import Settings
from clarion.db.migrate import upgrade
from clarion.db.session import Database
from clarion.pricing.models import Rate
from clarion.sending.materialize import materialize

PG_ADMIN = os.environ.get("CLARION_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
COUNTRIES = "FRDEUSGBESITNLBEPTPLSENODKFIIEATCHCZGRRO"  # 20 codes of 2 letters
FILTER = {
    "all": [
        {"field": "country", "op": "eq", "value": "FR"},
        {"field": "attributes.tier", "op": "eq", "value": "gold"},
        {"field": "attributes.age", "op": "gte", "value": 30},
    ]
}
TEXT = "Black Friday: 20% off everything today only. Reply STOP to opt out"

_SEED_PG = """
INSERT INTO contact (account_id, phone, country, first_name, last_name, attributes,
                     created_at, updated_at)
SELECT :a, '+1' || lpad(g::text, 10, '0'), substr(:countries, 1 + (g % 20) * 2, 2),
       'First' || (g % 1000), 'Last' || (g % 777),
       jsonb_build_object('tier', (ARRAY['gold', 'silver', 'bronze', 'none'])[1 + (g / 7) % 4],
                          'age', g % 80, 'city', 'City' || (g % 50)),
       now() - (g % 1000) * interval '1 hour', now()
FROM generate_series(1, :n) AS g
"""
_SEED_SQLITE = """
WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < :n)
INSERT INTO contact (account_id, phone, country, first_name, last_name, attributes,
                     created_at, updated_at)
SELECT :a, '+1' || substr('0000000000' || g, -10), substr(:countries, 1 + (g % 20) * 2, 2),
       'First' || (g % 1000), 'Last' || (g % 777),
       json_object('tier', CASE (g / 7) % 4 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver'
                                            WHEN 2 THEN 'bronze' ELSE 'none' END,
                   'age', g % 80, 'city', 'City' || (g % 50)),
       strftime('%Y-%m-%d %H:%M:%S.000000', 'now', '-' || (g % 1000) || ' hours'),
       strftime('%Y-%m-%d %H:%M:%S.000000', 'now')
FROM seq
"""


def fmt(times: list[float]) -> str:
    return f"best {min(times) * 1000:8.1f} ms  median {statistics.median(times) * 1000:8.1f} ms"


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - start)
    return times, result


async def seed(db: Database, n: int) -> tuple[int, str, int, int]:
    """(account id, its API key, segment id, campaign id) over n generated contacts."""
    async with db.transaction() as s:
        account, key = await create_account(s, "bench", 0)
        account_id = account.id
    seed_sql = _SEED_SQLITE if db.is_sqlite else _SEED_PG
    async with db.writer.begin() as conn:
        await conn.execute(text(seed_sql), {"a": account_id, "n": n, "countries": COUNTRIES})
        await conn.execute(
            text(
                "INSERT INTO segment (account_id, name, filter, created_at, updated_at) "
                "VALUES (:a, 'bench', :f, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"a": account_id, "f": json.dumps(FILTER)},
        )
        await conn.execute(text("ANALYZE"))
    async with db.transaction() as s:
        segment_id = (
            await s.execute(
                text("SELECT max(id) FROM segment WHERE account_id = :a"), {"a": account_id}
            )
        ).scalar_one()
        campaign = Campaign(
            account_id=account_id,
            name="bench",
            channel="sms",
            status="draft",
            message={"text": TEXT},
            list_ids=[],
            exclude_list_ids=[],
            segment_ids=[segment_id],
            segment_filters=[{"segmentId": segment_id, "filter": FILTER}],
        )
        s.add(campaign)
        await s.flush()
        campaign_id = campaign.id
        s.add(Rate(channel="sms", country="*", category="", price=700))
    return account_id, key, segment_id, campaign_id


async def bench(db: Database, url: str, args: argparse.Namespace, label: str) -> None:
    t0 = time.perf_counter()
    account_id, key, segment_id, campaign_id = await seed(db, args.contacts)
    print(f"[{label}] seeded {args.contacts:,} contacts in {time.perf_counter() - t0:.1f} s")

    async def baseline() -> Any:
        async with db.session(write=False) as s:
            return (
                await s.execute(
                    text("SELECT count(*) FROM contact WHERE account_id = :a"), {"a": account_id}
                )
            ).scalar_one()

    base_times, total = await timed(baseline, args.repeat)
    print(f"[{label}] baseline count(*) of the account ({total:,})   {fmt(base_times)}")

    settings = Settings(database_url=url, admin_token="bench" * 8, sender_enabled=False)
    app = create_app(settings, db=db)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def count() -> Any:
                r = await client.get(
                    f"/segments/{segment_id}/count", headers={"Authorization": f"Bearer {key}"}
                )
                assert r.status_code == 200, r.text
                return r.json()["contacts"]

            times, matched = await timed(count, args.repeat)
    ok = "OK" if min(times) < 0.5 else "MISSED"
    print(
        f"[{label}] GET /segments/id/count ({matched:,} match)  {fmt(times)}  "
        f"x{min(times) / min(base_times):5.1f} baseline  target < 500 ms: {ok}"
    )

    async def estimate() -> Any:
        async with db.transaction() as s:
            return await service.calculate_goal(s, account_id, campaign_id)

    times, result = await timed(estimate, args.repeat)
    ok = "OK" if min(times) < 2 else "MISSED"
    print(
        f"[{label}] calculateGoal of the segment ({result['recipients']:,} recipients)  "
        f"{fmt(times)}  x{min(times) / min(base_times):5.1f} baseline  target < 2 s: {ok}"
    )

    # The materializer reads the same audience clause: the campaign starts sending.
    async with db.transaction() as s:
        await s.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="sending"))
    start = time.perf_counter()
    made = await materialize(db, campaign_id, 50_000)
    print(
        f"[{label}] materialize the segment campaign: {made:,} messages in "
        f"{(time.perf_counter() - start) * 1000:.1f} ms (once)"
    )
    assert made == result["recipients"], (made, result["recipients"])


async def on_sqlite(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            await bench(db, url, args, "sqlite")
        finally:
            await db.dispose()


async def on_postgresql(args: argparse.Namespace) -> None:
    name = f"clarion_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            await bench(db, url, args, "postgresql")
        finally:
            await db.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="postgresql")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 contacts, a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.repeat = 20_000, 2
    print(f"load average: {os.getloadavg()}")
    if args.backend in ("sqlite", "both"):
        asyncio.run(on_sqlite(args))
    if args.backend in ("postgresql", "both"):
        asyncio.run(on_postgresql(args))


if __name__ == "__main__":
    main()
