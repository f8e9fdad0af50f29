"""Scale-out benchmark: N real `clarion worker` processes against one PostgreSQL.

One fresh PostgreSQL database (created, migrated and dropped here) holds every run. Its
contacts are seeded once, by SQL, then the product's own analyze-if-changed runs as an import
of them would have run it; the bench itself runs no VACUUM, ANALYZE or CHECKPOINT. Each run
gets new campaigns, materialized before its workers start, and one `clarion simulator`
process shared by all its workers (receipts held back past the run); a run's campaigns are
paused when it ends. A message counts as handed over when the simulator has accepted it (its
`/stats`), so the figure does not depend on how the engine
keeps its counters. Cases:

- one:   one campaign, N workers (N in --workers);
- multi: N campaigns at once, each of its own account, N workers;
- accounts: K accounts (K in --accounts) each sending 1/K of the same total at once, with
  --k-workers workers; the goal is K accounts >= 0.8x one account's total rate.

Per run: msg/s, speedup against the case's first run, each process's CPU (from /proc, in %
of one core: workers, the simulator, PostgreSQL's backends of this database), PostgreSQL lock
waits (backends of this database with wait_event_type Lock or LWLock, sampled every
--sample-ms; reported as samples per 1,000 messages, mean backends waiting and the top wait
events), deadlocks (`pg_stat_database.deadlocks` delta, read after the workers exit) and,
with several campaigns, fairness: each campaign's share of the messages sent before the
run's median send time (Jain's index over the shares; 1.0 is perfectly even).

Usage:
    python bench/scale.py                      # one + multi + accounts, a few minutes
    python bench/scale.py --quick              # smoke run
    python bench/scale.py --cases one --workers 1,2,4,8 --messages 40000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
from sqlalchemy import bindparam, text

sys.path.insert(0, str(Path(__file__).parent))
from dispatch import (
    CLARION,
    PRICE,
    SIM_SECRET,
    cpu_seconds,
    free_port,
    fresh_backend,
    new_campaign,
    start_simulator,
    stop,
    sub_list,
)

from clarion.accounts import ledger
from clarion.db.base import UTCDateTime, utcnow
from clarion.db.plans import analyze_if_changed
from clarion.db.session import Database
from clarion.sending.materialize import materialize

WAITING = "wait_event_type IN ('Lock', 'LWLock')"
STATEMENT_CHARS = 110


@dataclass
class Run:
    case: str
    workers: int
    campaigns: int
    messages: int = 0
    total: int = 0
    seconds: float = 0.0
    capped: bool = False
    setup: float = 0.0  # database, seeding and materialization, not timed into msg/s
    worker_cpu: list[float] = field(default_factory=list)  # % of one core, each
    sim_cpu: float = 0.0
    pg_cpu: float = 0.0
    wait_samples: int = 0
    samples: int = 0
    wait_events: Counter[str] = field(default_factory=Counter)
    waiting_statements: Counter[str] = field(default_factory=Counter)
    deadlocks: int = 0
    duplicates: int = 0
    shares: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def waits_per_1k(self) -> float:
        return 1000 * self.wait_samples / self.messages if self.messages else float("inf")

    @property
    def jain(self) -> float:
        if len(self.shares) < 2 or not any(self.shares):
            return 1.0
        return sum(self.shares) ** 2 / (len(self.shares) * sum(s * s for s in self.shares))


# --- seeding --------------------------------------------------------------------------------


async def seed_account(db: Database, index: int, n: int) -> int:
    """An account with credits for many runs and `n` contacts. Phones are unique across
    accounts (index < 10, n < 10**6) and end in 5 (never a simulator magic number)."""
    assert 0 <= index < 10 and n < 10**6
    now = bindparam("now", type_=UTCDateTime())
    async with db.transaction() as s:
        aid = (
            await s.execute(
                text(
                    "INSERT INTO account (name, balance, reserved, created_at, updated_at) "
                    "VALUES (:name, 0, 0, :now, :now) RETURNING id"
                ).bindparams(now),
                {"name": f"bench-{index}", "now": utcnow()},
            )
        ).scalar_one()
        await ledger.topup(s, aid, 10**15, note="bench")
        await s.execute(
            text(
                "INSERT INTO contact (account_id, phone, country, first_name, attributes,"
                " created_at, updated_at) "
                "SELECT :aid, '+336' || CAST(:k AS text) || lpad(x::text, 6, '0') || '5',"
                " 'FR', 'Ann', '{}'::jsonb, :now, :now FROM generate_series(0, :n - 1) AS x"
            ).bindparams(now),
            {"aid": aid, "k": str(index), "n": n, "now": utcnow()},
        )
    await sub_list(db, int(aid), n)  # a list of them all, as an import leaves
    return int(aid)


async def seed(db: Database, accounts: int, n: int) -> list[int]:
    """The rate card and `accounts` accounts of `n` contacts each; returns the account ids."""
    async with db.transaction() as s:
        await s.execute(
            text(
                "INSERT INTO rate (channel, country, category, price, created_at) "
                "VALUES ('sms', '*', '', :p, :now)"
            ).bindparams(bindparam("now", type_=UTCDateTime())),
            {"p": PRICE, "now": utcnow()},
        )
    return [await seed_account(db, index, n) for index in range(accounts)]


async def analyze_audience(db: Database, written: int) -> None:
    """What the product runs after an import of this size (its own analyze-if-changed): the
    bench writes the contacts behind the product's back, so it calls it in the import's place."""
    await analyze_if_changed(db, {"contact": written, "list_member": written})


async def campaigns_for(db: Database, aids: list[int], sizes: list[int]) -> list[int]:
    """One campaign per account, of its first `size` contacts, materialized before any worker
    runs so that every campaign waits from the same instant."""
    cids = []
    for aid, n in zip(aids, sizes, strict=False):
        lid = await sub_list(db, aid, n)
        cids.append(await new_campaign(db, aid, lid, n))
    for cid in cids:
        await materialize(db, cid, 50_000)
    return cids


async def park(db: Database, cids: list[int]) -> None:
    """A capped run leaves messages queued: its campaigns must not feed the next run."""
    async with db.transaction() as s:
        await s.execute(
            text(
                "UPDATE campaign SET status = 'paused' WHERE id IN :ids AND status = 'sending'"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": cids},
        )


# --- processes and readings -----------------------------------------------------------------


def start_worker(url: str, sim_url: str, lanes: int, batch: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": url,
        "CLARION_SIMULATOR_URL": sim_url,
        "CLARION_SIMULATOR_SECRET": SIM_SECRET,  # the one start_simulator signs with
        "CLARION_WORKER_BATCH_SIZE": str(batch),
    }
    return subprocess.Popen(
        [CLARION, "worker", "--lanes", str(lanes)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def safe_cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


async def backend_pids(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    )
    return [int(r["pid"]) for r in rows]


async def deadlocks(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await conn.close()


async def accepted(http: aiohttp.ClientSession, sim_url: str) -> dict:
    async with http.get(sim_url + "/stats") as r:
        return dict(await r.json())


class Sampler:
    """Counts this database's backends waiting on a lock, every `interval` seconds."""

    def __init__(self, conn: asyncpg.Connection, interval: float) -> None:
        self.conn, self.interval = conn, interval
        self.samples = self.waiting = 0
        self.events: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()  # wait event and the start of the statement
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            rows = await self.conn.fetch(
                "SELECT wait_event_type || ':' || wait_event AS e, "
                "regexp_replace(left(query, 200), '\\s+', ' ', 'g') AS q, count(*) AS n "
                f"FROM pg_stat_activity WHERE datname = current_database() AND {WAITING} "
                "GROUP BY 1, 2"
            )
            self.samples += 1
            for r in rows:
                self.waiting += int(r["n"])
                self.events[r["e"]] += int(r["n"])
                self.statements[f"{r['e']} {r['q'][:STATEMENT_CHARS]}"] += int(r["n"])
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def fairness(db: Database, cids: list[int]) -> list[float]:
    """Each campaign's share of the messages sent up to the median send time of the run."""
    async with db.session(write=False) as s:
        rows = (
            await s.execute(
                text(
                    "WITH m AS (SELECT campaign_id, sent_at FROM message "
                    "WHERE campaign_id IN :ids AND sent_at IS NOT NULL), "
                    "mid AS (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY sent_at) AS t "
                    "FROM m) "
                    "SELECT campaign_id, count(*) FROM m, mid WHERE sent_at <= mid.t "
                    "GROUP BY campaign_id"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": cids},
            )
        ).all()
    counts = dict(rows)
    total = sum(counts.values()) or 1
    return [counts.get(cid, 0) / total for cid in cids]


async def settled(db: Database, cids: list[int], timeout: float) -> None:
    """Wait (bounded) until no message is queued or leased, so send times are all written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with db.session(write=False) as s:
            left = (
                await s.execute(
                    text(
                        "SELECT count(*) FROM message WHERE campaign_id IN :ids "
                        "AND status IN ('queued', 'sending')"
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": cids},
                )
            ).scalar_one()
        if left == 0:
            return
        await asyncio.sleep(0.2)


# --- one run --------------------------------------------------------------------------------


async def run_once(
    bench: Bench, case: str, workers: int, sizes: list[int], args: argparse.Namespace
) -> Run:
    run = Run(case, workers, len(sizes), total=sum(sizes))
    db, url = bench.db, bench.url
    procs: list[subprocess.Popen[bytes]] = []
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim = start_simulator(sim_port)
    probe = await asyncpg.connect(url)
    cids: list[int] = []
    try:
        setup = time.perf_counter()
        cids = await campaigns_for(db, bench.accounts, sizes)
        run.setup = time.perf_counter() - setup
        dl0 = await deadlocks(url)
        procs = [start_worker(url, sim_url, args.lanes, args.batch) for _ in range(workers)]
        sampler = Sampler(probe, args.sample_ms / 1000)
        async with aiohttp.ClientSession() as http:
            done = 0
            deadline = time.monotonic() + 120
            while done == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                done = (await accepted(http, sim_url))["accepted"]
            t0, d0 = time.perf_counter(), done
            cpu0 = {p.pid: safe_cpu(p.pid) for p in procs}
            sim0 = safe_cpu(sim.pid)
            pg0 = {pid: safe_cpu(pid) for pid in await backend_pids(probe)}
            sampler.start()
            cap = t0 + args.max_seconds
            stats: dict = {}
            while done < run.total and time.perf_counter() < cap:
                await asyncio.sleep(0.1)
                stats = await accepted(http, sim_url)
                done = stats["accepted"]
            run.seconds = time.perf_counter() - t0
            run.capped = done < run.total
            run.messages = done - d0
            await sampler.stop()
            run.worker_cpu = [100 * (safe_cpu(p.pid) - cpu0[p.pid]) / run.seconds for p in procs]
            run.sim_cpu = 100 * (safe_cpu(sim.pid) - sim0) / run.seconds
            pg1 = {pid: safe_cpu(pid) for pid in await backend_pids(probe)}
            run.pg_cpu = 100 * sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) / run.seconds
            run.samples, run.wait_samples = sampler.samples, sampler.waiting
            run.wait_events = sampler.events
            run.waiting_statements = sampler.statements
            if not run.capped:
                await settled(db, cids, 30)
            run.duplicates = int(stats.get("duplicates", 0))
        for p in procs:
            stop(p)
        await asyncio.sleep(1.0)  # exiting backends flush their statistics
        run.deadlocks = await deadlocks(url) - dl0
        if len(cids) > 1:
            run.shares = await fairness(db, cids)
    finally:
        for p in procs:
            stop(p)
        stop(sim)
        await probe.close()
        if cids:
            await park(db, cids)
    return run


# --- report ---------------------------------------------------------------------------------


def header(title: str) -> None:
    print(f"\n## {title}\n")
    print(
        "| workers | campaigns | messages | s | msg/s | vs first | worker CPU % (each) "
        "| sim CPU % | PG CPU % | lock-wait samples /1k msg | mean waiting | top waits "
        "| deadlocks | dup | Jain | shares | setup s |"
    )
    print("|" + "---|" * 17)


def row(run: Run, base: Run | None) -> None:
    speed = run.rate / base.rate if base and base.rate else 1.0
    top = ", ".join(f"{e} {n}" for e, n in run.wait_events.most_common(3)) or "-"
    shares = " ".join(f"{s:.2f}" for s in run.shares) or "-"
    cpu = " ".join(f"{c:.0f}" for c in run.worker_cpu)
    mean = run.wait_samples / run.samples if run.samples else 0.0
    capped = " (capped)" if run.capped else ""
    print(
        f"| {run.workers} | {run.campaigns} | {run.messages:,}{capped} | {run.seconds:.1f} "
        f"| {run.rate:,.0f} | {speed:.2f} | {cpu} | {run.sim_cpu:.0f} | {run.pg_cpu:.0f} "
        f"| {run.waits_per_1k:.1f} | {mean:.2f} | {top} | {run.deadlocks} | {run.duplicates} "
        f"| {run.jain:.2f} | {shares} | {run.setup:.0f} |",
        flush=True,
    )


@dataclass
class Bench:
    """The bench's database: created, seeded once, dropped at the end."""

    url: str
    db: Database
    accounts: list[int]


async def main_async(args: argparse.Namespace) -> None:
    cases = args.cases.split(",")
    n_accounts = max(
        [1]
        + (args.workers if "multi" in cases else [])
        + (args.accounts if "accounts" in cases else [])
    )
    backend = await fresh_backend("pg")
    db = Database(backend.url)
    try:
        t0 = time.perf_counter()
        aids = await seed(db, n_accounts, args.messages)
        print(
            f"seeded {n_accounts} accounts of {args.messages:,} contacts in "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        await analyze_audience(db, n_accounts * args.messages)
        bench = Bench(backend.url, db, aids)
        await run_cases(bench, cases, args)
    finally:
        await db.dispose()
        await backend.cleanup()


async def run_case(
    bench: Bench, title: str, specs: list[tuple[str, int, list[int]]], args: argparse.Namespace
) -> None:
    """One table: a run per (case, workers, campaign sizes), then where each run waited."""
    header(title)
    runs: list[Run] = []
    for case, workers, sizes in specs:
        runs.append(await run_once(bench, case, workers, sizes, args))
        row(runs[-1], runs[0])
    print("\nWaiting statements (lock-wait samples, top 3 a run):")
    for run in runs:
        for statement, n in run.waiting_statements.most_common(3):
            print(f"- {run.workers} workers, {run.campaigns} campaigns: {n} x {statement}")


async def run_cases(bench: Bench, cases: list[str], args: argparse.Namespace) -> None:
    m = args.messages
    if "one" in cases:
        title = f"one campaign of {m:,} messages, N workers"
        await run_case(bench, title, [("one", n, [m]) for n in args.workers], args)
    if "multi" in cases:
        title = f"N campaigns of N accounts, {m:,} messages in all, N workers"
        await run_case(bench, title, [("multi", n, [m // n] * n) for n in args.workers], args)
    if "accounts" in cases:
        title = (
            f"K accounts, {m:,} messages in all, {args.k_workers} workers "
            "(goal: K accounts >= 0.8x one account)"
        )
        specs = [("accounts", args.k_workers, [m // k] * k) for k in args.accounts]
        await run_case(bench, title, specs, args)


def ints(value: str) -> list[int]:
    return [int(x) for x in value.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cases", default="one,multi,accounts", help="one, multi, accounts")
    parser.add_argument("--workers", type=ints, default=[1, 2, 4, 8], help="N for one, multi")
    parser.add_argument("--accounts", type=ints, default=[1, 2, 5, 10], help="K for accounts")
    parser.add_argument("--k-workers", type=int, default=2, help="workers in the accounts case")
    parser.add_argument("--messages", type=int, default=30_000, help="messages per run")
    parser.add_argument("--max-seconds", type=float, default=40, help="cap on one run's window")
    parser.add_argument("--lanes", type=int, default=3, help="batches in flight per worker")
    parser.add_argument("--batch", type=int, default=1000, help="CLARION_WORKER_BATCH_SIZE")
    parser.add_argument("--sample-ms", type=float, default=50, help="lock-wait sampling period")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.workers, args.accounts, args.max_seconds = 6_000, [1, 2], [1, 2], 15
    print(
        f"load before: {os.getloadavg()}; {os.cpu_count()} cores; one shared simulator; "
        f"batch {args.batch}, {args.lanes} lanes per worker; lock waits sampled every "
        f"{args.sample_ms:.0f} ms"
    )
    asyncio.run(main_async(args))
    print(f"\nload after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
