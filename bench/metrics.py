"""GET /metrics at scrape time, with campaigns sending.

Seeds a fresh database (SQLite: a temporary file; PostgreSQL: a database created and dropped
here) with --sending campaigns each holding --per queued and due messages, and --completed
finished campaigns; then scrapes GET /metrics through the real ASGI app (token checked,
database gauges read, exposition rendered) --scrapes times, and prints the median, p95 and
worst latency next to the bare `GET /healthz` of the same app as a baseline. The target is
< 50 ms with 100 campaigns sending.

Usage:
    python bench/metrics.py              # 100 sending x 10,000 messages, 1,000 completed
    python bench/metrics.py --quick      # 100 sending x 500, 100 completed
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from asgi_lifespan import LifespanManager
from dispatch import fresh_backend
from ops_seed import account, campaign
from sqlalchemy import text

from clarion.app import create_app
from clarion.config import Settings
from clarion.db.session import Database

TOKEN = "bench-metrics"


async def _timed(
    client: httpx.AsyncClient, url: str, n: int, headers: dict[str, str]
) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await client.get(url, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return out


def _line(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    median = statistics.median(ms)
    return f"  {name:<14} median {median:6.2f} ms   p95 {p95:6.2f} ms   max {ms[-1]:6.2f} ms"


async def run(backend_name: str, sending: int, per: int, completed: int, scrapes: int) -> None:
    backend = await fresh_backend(backend_name)
    db = Database(backend.url)
    try:
        aid = await account(db)
        t = time.perf_counter()
        for _ in range(sending):
            await campaign(db, aid, per, status="sending")
        for _ in range(completed):
            await campaign(db, aid, 1, status="completed")
        seeded = time.perf_counter() - t
        if not db.is_sqlite:
            async with db.transaction() as s:
                await s.execute(text("ANALYZE"))
        settings = Settings(database_url=backend.url, metrics_token=TOKEN, sender_enabled=False)
        app = create_app(settings, db=db)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                await _timed(client, "/metrics", 3, auth)  # warm caches and pools
                metrics_ms = await _timed(client, "/metrics", scrapes, auth)
                health_ms = await _timed(client, "/healthz", scrapes, {})
                body = (await client.get("/metrics", headers=auth)).text
        depth = next(
            line
            for line in body.splitlines()
            if line.startswith('clarion_queue_depth{channel="sms"}')
        )
        print(
            f"{backend.name}: {sending} campaigns sending x {per} queued "
            f"({sending * per:,} messages), {completed} completed; seeded in {seeded:.1f} s"
        )
        print(_line("GET /metrics", metrics_ms))
        print(_line("GET /healthz", health_ms))
        print(f"  {depth}  (cap {settings.metrics_queue_cap:,})")
        verdict = "OK" if statistics.median(metrics_ms) < 50 else "OVER the 50 ms target"
        print(
            f"  /metrics minus /healthz, median: "
            f"{statistics.median(metrics_ms) - statistics.median(health_ms):.2f} ms -> {verdict}"
        )
    finally:
        await db.dispose()
        await backend.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument("--sending", type=int, default=100)
    parser.add_argument("--per", type=int)
    parser.add_argument("--completed", type=int)
    parser.add_argument("--scrapes", type=int)
    args = parser.parse_args()
    per = args.per or (500 if args.quick else 10_000)
    completed = args.completed if args.completed is not None else (100 if args.quick else 1000)
    scrapes = args.scrapes or (30 if args.quick else 200)
    for name in args.backends.split(","):
        asyncio.run(run(name.strip(), args.sending, per, completed, scrapes))


if __name__ == "__main__":
    main()
