"""Tracked links: redirects per second from one `clarion serve`, and the cost of making the
links when a campaign is materialized.

1. Materializing: N recipients of an SMS campaign whose text has two URLs, materialized
   with `trackLinks` (two links a recipient, made in the same transactions) and without
   (the same text, URLs left as they are), one after the other on the same contacts.
2. Redirects: `clarion serve --no-sender` on that database; C concurrent keep-alive
   connections from this process GET `/l/{code}` over the links just made (each redirect
   is one primary-key read; the click is written after the response), then, as the
   baseline in the same run, GET `/healthz` (no database at all), and unknown codes (the
   read alone: 404, nothing written). Figures: requests/s and
   p50/p99 latency as this client sees them, and the CPU time each request cost the server
   process and the PostgreSQL backends serving the database (from /proc: unlike the
   rates, these hardly move with the load other work puts on the machine), with the
   connections PostgreSQL opened meanwhile. Then the clicks are counted in the database
   (every redirect answered must be there once the server has written them).

The load generator is Python in the same machine as the server (on the shared 2-core
machine it takes about as much CPU as the server): the ratio to /healthz says more than
the absolute figure.

Usage:
    python bench/links.py --quick               # 20,000 recipients, 3 s of load, both DBs
    python bench/links.py -n 200000 --seconds 10 --backends pg
    python bench/links.py -n 1000000 --materialize-only   # making links alone
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from audience_server import free_port, start_server, stop_server, wait_ready
from dispatch import cpu_seconds, fresh_backend, new_campaign, pg_backend_cpu, seed

from clarion.db.session import Database
from clarion.sending.materialize import materialize

TEXT = (
    "Hi {{firstName}}, 20% off today at https://shop.example/sale?c=bf and more at "
    "https://shop.example/new. STOP to opt out"
)
LINK_BASE = "http://127.0.0.1:8000/l"


async def _campaign(db: Database, aid: int, lid: int, n: int, tracked: bool) -> int:
    cid = await new_campaign(db, aid, lid, n)
    async with db.transaction() as s:
        await s.execute(
            text(
                "UPDATE campaign SET message = :m, track_links = :t, link_base_url = :b "
                "WHERE id = :id"
            ),
            {
                "m": '{"text": "' + TEXT + '"}',
                "t": tracked,
                "b": LINK_BASE if tracked else None,
                "id": cid,
            },
        )
    return cid


async def materializing(db: Database, n: int) -> list[str]:
    aid, lid = await seed(db, n, credits=10**15)
    timings = {}
    for tracked in (False, True):
        cid = await _campaign(db, aid, lid, n, tracked)
        started = time.perf_counter()
        made = await materialize(db, cid, 50_000)
        timings[tracked] = time.perf_counter() - started
        assert made == n, (made, n)
    async with db.session(write=False) as s:
        links = (await s.execute(text("SELECT count(*) FROM link"))).scalar_one()
        codes = list((await s.execute(text("SELECT code FROM link LIMIT 5000"))).scalars())
    assert links == 2 * n, links
    plain, tracked_s = timings[False], timings[True]
    print(f"  materialize {n:,} recipients without links: {plain:6.2f} s ({n / plain:,.0f}/s)")
    print(
        f"  materialize {n:,} recipients, 2 links each: {tracked_s:6.2f} s "
        f"({n / tracked_s:,.0f}/s; {tracked_s / plain:.2f}x the time without)"
    )
    return codes


async def hammer(base: str, paths: list[str], seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                path = paths[i % len(paths)]
                i += concurrency
                t0 = time.perf_counter()
                async with http.get(base + path, allow_redirects=False) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "count": len(latencies),
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "statuses": statuses,
    }


async def _sessions_opened(db: Database) -> int:
    """Connections PostgreSQL has accepted to this database so far (0 on SQLite)."""
    if db.is_sqlite:
        return 0
    async with db.session(write=False) as s:
        query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        return int((await s.execute(text(query))).scalar_one())


async def measured(
    db: Database, server_pid: int, base: str, paths: list[str], args: argparse.Namespace
) -> dict:
    """`hammer`, with the CPU each request cost the server and the database's backends (a
    backend that exits during the run takes its CPU time with it: `opened` says how many
    connections came and went)."""
    opened0 = await _sessions_opened(db)
    server0, db0 = cpu_seconds(server_pid), await pg_backend_cpu(db)
    r = await hammer(base, paths, args.seconds, args.concurrency)
    server = cpu_seconds(server_pid) - server0
    db1 = await pg_backend_cpu(db)
    r["server_ms"] = server * 1000 / r["count"]
    r["db_ms"] = sum(v - db0.get(pid, 0.0) for pid, v in db1.items()) * 1000 / r["count"]
    r["opened"] = await _sessions_opened(db) - opened0 - 1  # less _sessions_opened's own
    return r


async def clicks_written(db: Database, expected: int, timeout: float = 60) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    while time.perf_counter() - started < timeout:
        async with db.session(write=False) as s:
            count = (await s.execute(text("SELECT count(*) FROM click"))).scalar_one()
            summed = (await s.execute(text("SELECT sum(clicks) FROM link"))).scalar_one()
        if count >= expected and summed == count:
            break
        await asyncio.sleep(0.2)
    return int(count), time.perf_counter() - started


async def redirects(db: Database, url: str, codes: list[str], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="clarion-links-") as work:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(url, port, Path(work))
        try:
            await wait_ready(base, proc)
            await hammer(base, ["/healthz"], 0.5, args.concurrency)  # warm up
            health = await measured(db, proc.pid, base, ["/healthz"], args)
            links = await measured(db, proc.pid, base, [f"/l/{c}" for c in codes], args)
            # The read alone: codes of the right shape that no link has (404, nothing written).
            misses = [f"/l/{c[::-1][:6]}~" for c in codes[:1000]]
            unknown = await measured(
                db, proc.pid, base, [m.replace("~", "_") for m in misses], args
            )
            redirected = links["statuses"].get(302, 0)
            count, waited = await clicks_written(db, redirected)
        finally:
            stop_server(proc)
    for name, r in (
        ("GET /healthz (baseline)", health),
        ("GET /l/{code}", links),
        ("GET /l/{unknown} (404)", unknown),
    ):
        print(
            f"  {name:24} {r['rate']:7,.0f} req/s  p50 {r['p50']:6.1f} ms  "
            f"p99 {r['p99']:6.1f} ms  ({r['count']:,} requests, {r['statuses']})"
        )
        print(
            f"  {'':24} CPU a request: server {r['server_ms']:.3f} ms, database "
            f"{r['db_ms']:.3f} ms ({r['opened']} connections opened)"
        )
    print(
        f"  redirects/healthz: {links['rate'] / health['rate']:.2f} "
        f"(server CPU a request: {links['server_ms'] / health['server_ms']:.2f}x)"
    )
    print(
        f"  clicks in the database: {count:,} of {redirected:,} redirects "
        f"(all written {waited:.1f} s after the load ended)"
    )


async def main_async(args: argparse.Namespace) -> None:
    for name in args.backends.split(","):
        backend = await fresh_backend(name)
        print(f"{backend.name}: {args.n:,} recipients, {args.concurrency} connections")
        db = Database(backend.url)
        try:
            codes = await materializing(db, args.n)
            if not args.materialize_only:
                await redirects(db, backend.url, codes, args)
        finally:
            await db.dispose()
            await backend.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200_000, help="recipients")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per endpoint")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--backends", default="pg,sqlite", help="pg and/or sqlite")
    parser.add_argument("--quick", action="store_true", help="20,000 recipients, 3 s of load")
    parser.add_argument(
        "--materialize-only", action="store_true", help="part 1 only: no server, no redirects"
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.seconds = 20_000, 3.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
