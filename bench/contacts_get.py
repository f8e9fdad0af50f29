"""`GET /contacts/{id}` requests/s against a real `clarion serve --no-sender` process.

The load generator is a Python aiohttp loop in this process (wrk is not installed here):
`--concurrency` requests in flight on keep-alive connections for `--duration` seconds, on
random ids among `--contacts` contacts seeded through the API. Runs on a fresh SQLite file
and on a fresh PostgreSQL database (created and dropped). The load generator shares the
machine's 2 cores with the server, so the figure is a floor of what the server can do.

    .venv/bin/python bench/contacts_get.py                 # 10 s per backend
    .venv/bin/python bench/contacts_get.py --quick         # 3 s, SQLite only
"""

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from audience_server import (
    ADMIN_TOKEN,
    cpu_seconds,
    peak_rss_mb,
    served,
)


async def seed(base: str, contacts: int) -> tuple[str, list[int]]:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/admin/accounts", json={"name": "bench"}, headers=admin) as r:
            assert r.status == 201, await r.text()
            key = (await r.json())["apiKey"]
        auth = {"Authorization": f"Bearer {key}"}
        async with http.post(f"{base}/lists", json={"name": "bench"}, headers=auth) as r:
            list_id = (await r.json())["id"]
        for start in range(0, contacts, 10_000):
            rows = [
                {"phone": f"+3361{i:07d}", "firstName": f"n{i}", "attributes": {"i": i}}
                for i in range(start, min(contacts, start + 10_000))
            ]
            async with http.post(
                f"{base}/lists/{list_id}/contacts", json={"contacts": rows}, headers=auth
            ) as r:
                assert r.status == 200, await r.text()
        ids: list[int] = []
        offset = 0
        while True:
            async with http.get(
                f"{base}/lists/{list_id}/contacts",
                params={"limit": 1000, "offset": offset},
                headers=auth,
            ) as r:
                page = await r.json()
            ids += [c["id"] for c in page["items"]]
            offset += 1000
            if offset >= page["total"]:
                break
        # opt a few out, so that the path with opt-outs is measured too
        for contact_id in ids[:: max(1, len(ids) // 50)]:
            async with http.put(
                f"{base}/contacts/{contact_id}", json={"optOuts": ["sms"]}, headers=auth
            ) as r:
                assert r.status == 200
    return key, ids


async def load(base: str, key: str, ids: list[int], concurrency: int, duration: float) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    done = errors = 0
    latencies: list[float] = []
    rng = random.Random(1)
    async with aiohttp.ClientSession(base_url=base, connector=connector, headers=headers) as http:

        async def worker(deadline: float) -> None:
            nonlocal done, errors
            while (now := time.perf_counter()) < deadline:
                async with http.get(f"/contacts/{rng.choice(ids)}") as r:
                    await r.read()
                    if r.status == 200:
                        done += 1
                    else:
                        errors += 1
                latencies.append(time.perf_counter() - now)

        await asyncio.gather(*(worker(time.perf_counter() + 1.0) for _ in range(concurrency)))
        done = errors = 0
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + duration) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": done / elapsed,
        "errors": errors,
        "p50": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
        "requests": done,
    }


async def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict:
    async with served(backend, workdir) as (base, proc):
        key, ids = await seed(base, args.contacts)
        cpu_before = cpu_seconds([proc.pid])
        result = await load(base, key, ids, args.concurrency, args.duration)
        result["server_cpu"] = cpu_seconds([proc.pid]) - cpu_before
        result["rss"] = peak_rss_mb(proc.pid)
    return {"backend": backend, **result}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="3 s on SQLite, 1,000 contacts")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.contacts, args.backends = 3.0, 1_000, "sqlite"
    results = []
    with tempfile.TemporaryDirectory(prefix="clarion-bench-") as tmp:
        for backend in args.backends.split(","):
            results.append(asyncio.run(bench_backend(backend.strip(), args, Path(tmp))))
    print(f"load average after: {os.getloadavg()}")
    print(
        f"{'backend':<11}{'req/s':>9}{'errors':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'server CPU s':>13}{'req/CPU s':>10}{'RSS':>8}"
    )
    for r in results:
        per_cpu = r["requests"] / r["server_cpu"] if r["server_cpu"] else 0.0
        print(
            f"{r['backend']:<11}{r['rps']:>9,.0f}{r['errors']:>8}{r['p50']:>8.1f}{r['p99']:>8.1f}"
            f"{r['server_cpu']:>13.1f}{per_cpu:>10,.0f}{r['rss']:>6.0f}MB"
        )
    print(
        f"GET /contacts/{{id}}, aiohttp load loop, concurrency {args.concurrency}, "
        f"{args.duration:.0f} s per backend, {args.contacts:,} contacts"
    )


if __name__ == "__main__":
    main()
