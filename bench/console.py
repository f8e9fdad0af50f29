"""Benchmark: what the web console costs a browser.

    python bench/console.py                          # size of the first page's JS and CSS
    python bench/console.py --url http://127.0.0.1:8000 --key KEY [--repeat 20]

1. The first page's weight: every script and stylesheet `index.html` loads before the first
   paint (the entry chunk, its module preloads and CSS), compressed as `clarion serve` sends
   them (gzip through Starlette's GZipMiddleware, level 9), against the 300 KB budget. Chunks
   fetched later (each page, the chart library) are listed apart.
2. With --url and --key: the time each page waits for its first rows, that is the API calls it
   makes before it can render them (first page of each list, the statistics of the last 30
   days, one campaign and its recipients), timed over HTTP against a running server with
   whatever data it holds (median and worst of --repeat runs).
3. With --seed-pg: the same timings on a fresh PostgreSQL database filled to the issue's sizes
   (1,000,000 contacts in one list, 1,000 completed campaigns, 5,000,000 messages) by bulk SQL,
   analyzed, served by a real `clarion serve` started here; the database is dropped after.
   `--quick` seeds a tenth of that.
"""

import argparse
import asyncio
import gzip
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "src" / "clarion" / "console_dist"
BUDGET = 300 * 1024
PG_ADMIN_DSN = os.environ.get("CLARION_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "bench-console-admin"

# Bulk rows for one account, in set operations; columns the ORM fills by default are given.
SEED_SQL = [
    """INSERT INTO contact (account_id, phone, country, first_name, last_name, attributes,
                            created_at, updated_at)
       SELECT $1, '+3361' || lpad(i::text, 8, '0'), 'FR', 'Name' || i, 'Family' || (i % 997),
              '{}', now(), now()
       FROM generate_series(1, $2::int) AS i""",
    """INSERT INTO contact_list (account_id, name, created_at, updated_at)
       VALUES ($1, 'Everyone', now(), now())""",
    """INSERT INTO list_member (list_id, contact_id, created_at)
       SELECT l.id, c.id, now() FROM contact c, contact_list l
       WHERE c.account_id = $1 AND l.account_id = $1""",
    """INSERT INTO campaign (account_id, name, channel, status, message, list_ids,
                             exclude_list_ids, reserved, spent, recipients, queued, sending, sent,
                             delivered, read, failed, skipped, created_at, updated_at,
                             confirmed_at, started_at, completed_at)
       SELECT $1, 'Campaign ' || i, 'sms', 'completed', '{"text": "Hello"}', '[]', '[]', 0,
              $2::bigint * 700, $2, 0, 0, 0, $2 - $2 / 50, 0, $2 / 50, 0,
              now() - (i % 30) * interval '1 day', now(), now() - (i % 30) * interval '1 day',
              now() - (i % 30) * interval '1 day', now() - (i % 30) * interval '1 day'
       FROM generate_series(1, $3::int) AS i""",
    """INSERT INTO message (campaign_id, account_id, contact_id, phone, country, channel, status,
                            units, price, attempts, next_attempt_at, created_at, updated_at)
       SELECT k.id, $1, c.id, c.phone, 'FR', 'sms',
              CASE WHEN g.n % 50 = 0 THEN 'failed' ELSE 'delivered' END, 1, 700, 1,
              k.created_at, k.created_at, k.created_at
       FROM campaign k
       CROSS JOIN generate_series(0, $2::int - 1) AS g(n)
       JOIN contact c ON c.account_id = $1
            AND c.phone = '+3361' || lpad((((k.id * $2 + g.n) % $3) + 1)::text, 8, '0')
       WHERE k.account_id = $1""",
]


def first_page_files(dist: Path) -> list[Path]:
    index = (dist / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="(/assets/[^"]+\.(?:js|css))"', index)
    return [dist / ref.lstrip("/") for ref in dict.fromkeys(refs)]


def compressed(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def weigh(dist: Path) -> None:
    if not (dist / "index.html").is_file():
        sys.exit(f"no console build in {dist}: run `make console` first")
    first = first_page_files(dist)
    total = 0
    print("first page (loaded before the first paint):")
    for path in first:
        size = compressed(path)
        total += size
        print(f"  {path.name:<40} {path.stat().st_size / 1024:8.1f} KB  gzip {size / 1024:7.1f} KB")
    verdict = "within" if total <= BUDGET else "OVER"
    print(f"  total compressed JS+CSS: {total / 1024:.1f} KB ({verdict} the 300 KB budget)")
    later = sorted(set((dist / "assets").glob("*")) - set(first), key=lambda p: p.name)
    lazy = sum(compressed(p) for p in later if p.suffix in (".js", ".css"))
    print(f"loaded on demand: {len(later)} chunks, {lazy / 1024:.1f} KB compressed in all")


def time_pages(url: str, key: str, repeat: int) -> None:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    today = datetime.now(UTC).date()
    month = {"from": str(today - timedelta(days=29)), "to": str(today)}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        latest = client.get("/campaigns", params={"limit": 1}).json()["items"]
        campaign = latest[0]["id"] if latest else None
        pages: dict[str, list[tuple[str, dict[str, object]]]] = {
            "Dashboard": [
                ("/account", {}),
                ("/campaigns", {"status": "sending", "limit": 20}),
                ("/campaigns/stats", month),
            ],
            "Campaigns": [("/campaigns", {"limit": 50})],
            "Contacts": [("/contacts", {"limit": 50})],
            "Contacts search": [("/contacts", {"limit": 50, "search": "+336"})],
            "Lists": [("/lists", {"limit": 50})],
            "Templates": [("/templates", {"limit": 50})],
            "Statistics": [("/campaigns/stats", month)],
            "Settings": [("/users", {"limit": 100}), ("/account/ledger", {"limit": 20})],
        }
        if campaign is not None:
            pages["Campaign"] = [
                (f"/campaigns/{campaign}", {}),
                (f"/campaigns/{campaign}/messages", {"limit": 50}),
            ]
        print(f"time to first rows (API calls before the page can render), {repeat} runs:")
        for name, calls in pages.items():
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                for path, params in calls:
                    answer = client.get(path, params=params)
                    answer.raise_for_status()
                samples.append(time.perf_counter() - started)
            print(
                f"  {name:<16} median {statistics.median(samples) * 1000:7.1f} ms"
                f"  worst {max(samples) * 1000:7.1f} ms"
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed(dsn: str, account_id: int, contacts: int, campaigns: int, per_campaign: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql, args in zip(
            SEED_SQL,
            [
                (account_id, contacts),
                (account_id,),
                (account_id,),
                (account_id, per_campaign, campaigns),
                (account_id, per_campaign, contacts),
            ],
            strict=True,
        ):
            started = time.perf_counter()
            status = await conn.execute(sql, *args)
            print(f"  seed: {status} in {time.perf_counter() - started:.1f} s")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def seeded_run(contacts: int, campaigns: int, per_campaign: int, repeat: int) -> None:
    name = f"clarion_bench_console_{uuid.uuid4().hex[:10]}"
    admin_dsn = PG_ADMIN_DSN
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    port = free_port()
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": dsn,
        "CLARION_ADMIN_TOKEN": ADMIN_TOKEN,
        "CLARION_REDIS_URL": "",
    }
    log = Path(tempfile.mkdtemp()) / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "clarion"), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                sys.exit(f"clarion serve exited:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        created = httpx.post(
            f"{url}/admin/accounts",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"name": "bench", "credits": 0},
        ).json()
        total = campaigns * per_campaign
        print(f"seeding {contacts:,} contacts, {campaigns:,} campaigns, {total:,} messages")
        asyncio.run(seed(dsn, created["id"], contacts, campaigns, per_campaign))
        time_pages(url, created["apiKey"], repeat)
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=DIST)
    parser.add_argument("--url", help="a running clarion serve, to time the pages' first rows")
    parser.add_argument("--key", help="an API key of the account to read")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed-pg", action="store_true", help="time pages on seeded PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="with --seed-pg: a tenth the size")
    args = parser.parse_args()
    weigh(args.dist)
    if args.seed_pg:
        scale = 10 if args.quick else 1
        seeded_run(1_000_000 // scale, 1_000 // scale, 5_000, args.repeat)
    if args.url:
        if not args.key:
            parser.error("--url needs --key")
        time_pages(args.url, args.key, args.repeat)


if __name__ == "__main__":
    main()
