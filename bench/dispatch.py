"""Sending engine benchmark.

Measures, each on a fresh database (PostgreSQL: a database created and dropped here; SQLite:
a temporary file):

1. materializing a campaign of --rows recipients (one INSERT ... SELECT per chunk);
2. end-to-end dispatch (claimed, submitted, recorded, charged) of --messages messages by one
   `clarion worker` process against `clarion simulator` in its own process on loopback, no
   rate limit, next to the bare aiohttp rate to the same simulator measured in the same run
   (same batch size and concurrency as the provider uses);
3. two workers against one (PostgreSQL), with the simulator's and the workers' CPU share;
4. the peak RSS (VmHWM) of the worker during its run.

Usage:
    python bench/dispatch.py                 # the sizes of the issue
    python bench/dispatch.py --quick         # a small smoke run
    python bench/dispatch.py --backends pg --messages 200000 --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from sqlalchemy import bindparam, text

from clarion.accounts import ledger
from clarion.campaigns.models import Campaign
from clarion.db.base import UTCDateTime, utcnow
from clarion.db.migrate import upgrade
from clarion.db.plans import analyze_if_changed
from clarion.db.session import Database
from clarion.sending.materialize import materialize

PG_ADMIN = os.environ.get("CLARION_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
CLARION = str(Path(sys.executable).parent / "clarion")
PRICE = 700
# Shared by the simulator and the workers (both refuse to start without one).
SIM_SECRET = "bench-simulator-secret"
TICKS = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- databases ------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    url: str
    cleanup: Any


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def fresh_backend(name: str) -> Backend:
    if name == "pg":
        db_name = f"clarion_bench_{uuid.uuid4().hex[:10]}"
        await _pg_admin(f'CREATE DATABASE "{db_name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name
        await asyncio.to_thread(upgrade, url)

        async def drop() -> None:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

        return Backend("PostgreSQL", url, drop)
    tmp = tempfile.TemporaryDirectory(prefix="clarion-bench-")
    url = f"sqlite:///{tmp.name}/bench.db"
    await asyncio.to_thread(upgrade, url)

    async def remove() -> None:
        tmp.cleanup()

    return Backend("SQLite", url, remove)


async def seed(db: Database, n: int, *, credits: int) -> tuple[int, int]:
    """An account with `credits` units, `n` contacts in one list, an SMS rate. Returns
    (account_id, list_id). Phones end in 5: never a simulator magic number."""
    now = utcnow()
    async with db.transaction() as s:
        aid = (
            await s.execute(
                text(
                    "INSERT INTO account (name, balance, reserved, created_at, updated_at) "
                    "VALUES ('bench', 0, 0, :now, :now) RETURNING id"
                ).bindparams(bindparam("now", type_=UTCDateTime())),
                {"now": now},
            )
        ).scalar_one()
        await ledger.topup(s, aid, credits, note="bench")
        lid = (
            await s.execute(
                text(
                    "INSERT INTO contact_list (account_id, name, created_at, updated_at) "
                    "VALUES (:aid, 'bench', :now, :now) RETURNING id"
                ).bindparams(bindparam("now", type_=UTCDateTime())),
                {"aid": aid, "now": now},
            )
        ).scalar_one()
        await s.execute(
            text(
                "INSERT INTO rate (channel, country, category, price, created_at) "
                "VALUES ('sms', '*', '', :p, :now)"
            ).bindparams(bindparam("now", type_=UTCDateTime())),
            {"p": PRICE, "now": now},
        )
        if db.is_sqlite:
            series = (
                "WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x < :n - 1) "
            )
            phone = "'+3361' || substr('000000' || x, -6, 6) || '5'"
            contact_sql = (
                series + "INSERT INTO contact (account_id, phone, country, first_name, attributes,"
                " created_at, updated_at) "
                f"SELECT :aid, {phone}, 'FR', 'Ann', '{{}}', :now, :now FROM g"
            )
        else:
            contact_sql = (
                "INSERT INTO contact (account_id, phone, country, first_name, attributes,"
                " created_at, updated_at) "
                "SELECT :aid, '+3361' || lpad(x::text, 6, '0') || '5', 'FR', 'Ann', '{}'::jsonb,"
                " :now, :now FROM generate_series(0, :n - 1) AS x"
            )
        await s.execute(
            text(contact_sql).bindparams(bindparam("now", type_=UTCDateTime())),
            {"aid": aid, "n": n, "now": now},
        )
        await s.execute(
            text(
                "INSERT INTO list_member (list_id, contact_id, created_at) "
                "SELECT :lid, id, :now FROM contact WHERE account_id = :aid"
            ).bindparams(bindparam("now", type_=UTCDateTime())),
            {"lid": lid, "aid": aid, "now": now},
        )
    # What the product does after an import this size (no more: no VACUUM, no CHECKPOINT).
    await analyze_if_changed(db, {"contact": n, "list_member": n})
    return aid, lid


async def sub_list(db: Database, aid: int, n: int) -> int:
    """A list of the account's first `n` contacts."""
    async with db.transaction() as s:
        lid = (
            await s.execute(
                text(
                    "INSERT INTO contact_list (account_id, name, created_at, updated_at) "
                    "VALUES (:aid, 'sub', :now, :now) RETURNING id"
                ).bindparams(bindparam("now", type_=UTCDateTime())),
                {"aid": aid, "now": utcnow()},
            )
        ).scalar_one()
        await s.execute(
            text(
                "INSERT INTO list_member (list_id, contact_id, created_at) "
                "SELECT :lid, id, created_at FROM contact WHERE account_id = :aid "
                "ORDER BY id LIMIT :n"
            ),
            {"lid": lid, "aid": aid, "n": n},
        )
        return int(lid)


async def new_campaign(db: Database, aid: int, lid: int, n: int) -> int:
    async with db.transaction() as s:
        c = Campaign(
            account_id=aid,
            name="bench",
            channel="sms",
            status="sending",
            message={"text": "Hi {{firstName}}, 20% off today. Reply STOP to opt out"},
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
        return c.id


async def progress(db: Database, cid: int) -> tuple[int, int]:
    """(messages done, recipients) of a campaign."""
    async with db.session(write=False) as s:
        c = await s.get(Campaign, cid, populate_existing=True)
        assert c is not None
        return c.recipients - c.queued - c.sending, c.recipients


# --- processes ------------------------------------------------------------------------------


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [CLARION, "simulator", "--port", str(port), "--receipt-delay", "86400"],
        env={**os.environ, "CLARION_SIMULATOR_SECRET": SIM_SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("simulator did not start")


def start_worker(
    url: str, sim_url: str, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": url,
        "CLARION_SIMULATOR_URL": sim_url,
        "CLARION_SIMULATOR_SECRET": SIM_SECRET,
        "CLARION_SCHEDULER_INTERVAL": "0.2",
        "CLARION_WORKER_BATCH_SIZE": "1000",
        **(extra or {}),
    }
    return subprocess.Popen(
        [CLARION, "worker", "--lanes", str(LANES)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- measurements ---------------------------------------------------------------------------


def _bare_message(message_id: int, i: int) -> dict[str, Any]:
    return {
        "id": str(message_id),
        "channel": "sms",
        "to": f"+3361{i % 1000000:06d}5",
        "from": "Clarion",
        "text": "Hi Ann, 20% off today. Reply STOP to opt out",
    }


async def _post_all(sim_url: str, bodies: list[bytes], concurrency: int) -> float:
    """Seconds to POST these bodies to the simulator, `concurrency` at a time (then reset)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = list(reversed(bodies))

        async def run() -> None:
            while queue:
                body = queue.pop()
                async with session.post(
                    sim_url + "/messages", data=body, headers={"Content-Type": "application/json"}
                ) as r:
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(run() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        await session.post(sim_url + "/reset")
    return elapsed


async def bare_rate(sim_url: str, messages: int, batch: int = 500, concurrency: int = 8) -> float:
    """messages/s posting the provider's batches straight to the simulator (no database)."""
    base = 10**12 + int(time.time() * 1000) % 10**9 * 1000
    bodies = [
        orjson.dumps(
            [_bare_message(base + i, i) for i in range(start, min(messages, start + batch))]
        )
        for start in range(0, messages, batch)
    ]
    return messages / await _post_all(sim_url, bodies, concurrency)


async def bare_request_rate(sim_url: str, messages: int, concurrency: int = 64) -> float:
    """requests/s posting one message per request (what a per-message provider API allows)."""
    base = 2 * 10**12 + int(time.time() * 1000) % 10**9 * 1000
    bodies = [orjson.dumps(_bare_message(base + i, i)) for i in range(messages)]
    return messages / await _post_all(sim_url, bodies, concurrency)


async def pg_backend_cpu(db: Database) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends serving this database (0 on SQLite)."""
    if db.is_sqlite:
        return {}
    async with db.session(write=False) as s:
        pids = (
            await s.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        ).scalars()
        out = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                out[int(pid)] = cpu_seconds(int(pid))
        return out


async def dispatch_run(
    backend: Backend, db: Database, aid: int, lid: int, n: int, workers: int, sim_port: int
) -> dict[str, float]:
    sim_url = f"http://127.0.0.1:{sim_port}"
    lid = await sub_list(db, aid, n)
    cid = await new_campaign(db, aid, lid, n)
    await materialize(db, cid, 50_000)
    procs = [start_worker(backend.url, sim_url) for _ in range(workers)]
    sim_pid = SIM_PROC.pid
    try:
        deadline = time.monotonic() + 60
        done, total = await progress(db, cid)
        while done == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            done, total = await progress(db, cid)
        t0, d0 = time.perf_counter(), done
        cpu0 = {p.pid: cpu_seconds(p.pid) for p in procs}
        pg0 = await pg_backend_cpu(db)
        sim0 = cpu_seconds(sim_pid)
        deadline = time.monotonic() + 3600
        while done < total and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            done, total = await progress(db, cid)
        elapsed = time.perf_counter() - t0
        sim_cpu = cpu_seconds(sim_pid) - sim0
        worker_cpu = sum(cpu_seconds(p.pid) - cpu0[p.pid] for p in procs)
        pg1 = await pg_backend_cpu(db)
        db_cpu = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items())
        rss = max(peak_rss_mb(p.pid) for p in procs)
    finally:
        for p in procs:
            stop(p)
    async with aiohttp.ClientSession() as session:
        async with session.get(sim_url + "/stats") as r:
            stats = await r.json()
        await session.post(sim_url + "/reset")
    return {
        "rate": (done - d0) / elapsed,
        "elapsed": elapsed,
        "messages": done - d0,
        "sim_cpu_share": sim_cpu / (elapsed * NCPU),
        "worker_cpu_share": worker_cpu / (elapsed * NCPU),
        "worker_cpu": worker_cpu,
        "db_cpu": db_cpu,
        "rss_mb": rss,
        "db_cpu_share": db_cpu / (elapsed * NCPU),
        "sim_stats": stats,
    }


SIM_PROC: subprocess.Popen[bytes]
LANES = 3


async def bench_backend(name: str, args: argparse.Namespace) -> None:
    global SIM_PROC
    backend = await fresh_backend(name)
    db = Database(backend.url)
    try:
        total_contacts = max(args.rows, args.messages)
        t = time.perf_counter()
        aid, lid = await seed(db, total_contacts, credits=10**15)
        print(
            f"[{backend.name}] seeded {total_contacts:,} contacts "
            f"in {time.perf_counter() - t:.1f} s"
        )

        # 1. materialization
        cid = await new_campaign(db, aid, lid, total_contacts)
        t = time.perf_counter()
        made = await materialize(db, cid, 50_000)
        m_elapsed = time.perf_counter() - t
        target = 5 if name == "pg" else 10
        print(
            f"[{backend.name}] materialized {made:,} recipients in {m_elapsed:.2f} s "
            f"({made / m_elapsed:,.0f}/s; target < {target} s for 1,000,000)"
        )
        async with db.transaction() as s:  # that campaign is not sent: park it
            await s.execute(
                text("UPDATE campaign SET status = 'paused' WHERE id = :id"), {"id": cid}
            )

        if args.skip_dispatch:
            return
        # 2. dispatch, one worker, next to the bare aiohttp rate
        port = free_port()
        SIM_PROC = start_simulator(port)
        try:
            bare = await bare_rate(f"http://127.0.0.1:{port}", min(args.messages, 200_000))
            single = await bare_request_rate(
                f"http://127.0.0.1:{port}", min(args.messages // 4, 20_000)
            )
            one = await dispatch_run(backend, db, aid, lid, args.messages, 1, port)
            target_rate = 5000 if name == "pg" else 3000
            print(
                f"[{backend.name}] 1 worker: {one['rate']:,.0f} msg/s end to end "
                f"({one['messages']:,.0f} in {one['elapsed']:.1f} s; target {target_rate:,}/s); "
                f"bare aiohttp to the simulator: {bare:,.0f} msg/s; ratio {one['rate'] / bare:.2f} "
                f"(aim 0.5); bare one-message requests: {single:,.0f}/s, ratio "
                f"{one['rate'] / single:.2f}; CPU share: simulator {one['sim_cpu_share']:.0%}, "
                f"worker {one['worker_cpu_share']:.0%}, database {one['db_cpu_share']:.0%}; "
                f"worker peak RSS {one['rss_mb']:.0f} MB; "
                f"simulator duplicates {one['sim_stats'].get('duplicates')}"
            )
            if name == "pg" and not args.no_two:
                two = await dispatch_run(backend, db, aid, lid, args.messages, 2, port)
                print(
                    f"[{backend.name}] 2 workers: {two['rate']:,.0f} msg/s = "
                    f"{two['rate'] / one['rate']:.2f}x one worker (target 1.6x); CPU share: "
                    f"simulator {two['sim_cpu_share']:.0%}, workers {two['worker_cpu_share']:.0%}, "
                    f"database {two['db_cpu_share']:.0%} "
                    f"of {NCPU} cores"
                )
        finally:
            stop(SIM_PROC)
    finally:
        await db.dispose()
        await backend.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="recipients to materialize")
    parser.add_argument("--messages", type=int, default=200_000, help="messages to dispatch")
    parser.add_argument("--backends", default="pg,sqlite", help="pg, sqlite or both")
    parser.add_argument("--no-two", action="store_true", help="skip the two-worker run")
    parser.add_argument("--skip-dispatch", action="store_true", help="materialization only")
    parser.add_argument("--lanes", type=int, default=3, help="batches in flight per worker")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args()
    global LANES
    LANES = args.lanes
    if args.quick:
        args.rows, args.messages = 20_000, 10_000
    print(f"load before: {os.getloadavg()}; {NCPU} cores")
    for name in args.backends.split(","):
        asyncio.run(bench_backend(name.strip(), args))
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
