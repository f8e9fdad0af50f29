"""Event hooks benchmark.

Measures, each on a fresh database (PostgreSQL: created and dropped here; SQLite: a
temporary file), with a receiver in its own process on loopback that verifies every batch's
signature with the `standardwebhooks` package:

1. delivery: --events events already in the outbox of one hook, delivered by one
   `clarion worker` process (events/s, from the first batch received to the last);
2. dispatch with hooks off, then on (a hook subscribed to `*`, so every message.sent is
   written in the recording transaction and delivered by the same worker while it sends),
   --pairs times alternated, each run on a fresh campaign and an empty outbox: messages/s
   of each, the loss of each pair and their median, and how long the hook's backlog took
   to drain after each run with hooks on.

Usage:
    python bench/hooks.py                    # 200,000 events, 50,000 messages
    python bench/hooks.py --quick            # a small smoke run
    python bench/hooks.py --events 2000000 --backends pg
    python bench/hooks.py --events 200000 --messages 100000 --pairs 3 --backends pg
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import dispatch
from sqlalchemy import bindparam, literal, select, text
from sqlalchemy.sql import Select

from clarion.db.base import UTCDateTime, utcnow
from clarion.db.params import id_rows
from clarion.db.session import Database
from clarion.hooks import outbox

SECRET = "whsec_" + "YmVuY2gtaG9va3Mtc2VjcmV0LWtleS0xMjM0NTY3OA=="
RECEIVER = str(Path(__file__).resolve())


# --- the receiver (a process of its own: `python bench/hooks.py --receiver PORT`) -----------


def run_receiver(port: int) -> None:
    from aiohttp import web
    from standardwebhooks import Webhook

    hook = Webhook(SECRET)
    stats = {"events": 0, "batches": 0, "rejected": 0, "first": 0.0, "last": 0.0}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            batch = hook.verify(body, dict(request.headers))
        except Exception:
            stats["rejected"] += 1
            return web.Response(status=401)
        now = time.time()
        stats["first"] = stats["first"] or now
        stats["last"] = now
        stats["events"] += len(batch["events"])
        stats["batches"] += 1
        return web.Response(status=204)

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def reset(request: web.Request) -> web.Response:
        stats.update(events=0, batches=0, rejected=0, first=0.0, last=0.0)
        return web.json_response(stats)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(
        [web.post("/hook", receive), web.get("/stats", get_stats), web.post("/reset", reset)]
    )
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, RECEIVER, "--receiver", str(port)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("receiver did not start")


async def receiver_stats(port: int, reset: bool = False) -> dict[str, float]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            "POST" if reset else "GET", f"http://127.0.0.1:{port}/{'reset' if reset else 'stats'}"
        ) as r,
    ):
        return await r.json()  # type: ignore[no-any-return]


# --- the database -------------------------------------------------------------------------


async def add_hook(db: Database, aid: int, port: int) -> int:
    now = utcnow()
    async with db.transaction() as s:
        return int(
            (
                await s.execute(
                    text(
                        "INSERT INTO hook (account_id, url, event_types, secret, enabled,"
                        " created_at, updated_at) VALUES (:aid, :url, ' * ', :secret, :on,"
                        " :now, :now) RETURNING id"
                    ).bindparams(bindparam("now", type_=UTCDateTime())),
                    {
                        "aid": aid,
                        "url": f"http://127.0.0.1:{port}/hook",
                        "secret": SECRET,
                        "on": True,
                        "now": now,
                    },
                )
            ).scalar_one()
        )


async def fill_outbox(db: Database, hook_id: int, aid: int, n: int) -> None:
    """`n` message.delivered events for the hook, written by the outbox's own INSERT … SELECT
    (500 a statement, as sending batches of 500 messages write them; one transaction)."""
    async with db.transaction() as s:

        def rows_for(part: Sequence[int]) -> Select[Any]:
            x = id_rows(s, part).c.value
            data = outbox.json_object(s)(
                "messageId", x, "campaignId", 1, "contactId", x, "phone", "+33612345678",
                "channel", "sms", "status", "delivered", "errorCode", None,
                "at", "2026-12-01T10:00:00Z",
            )  # fmt: skip
            return select(literal(hook_id), literal(aid), literal("message.delivered"), data, x)

        await outbox.insert_events(s, range(1, n + 1), rows_for, utcnow())


async def undelivered(db: Database) -> int:
    async with db.session(write=False) as s:
        return int(
            (
                await s.execute(
                    text(
                        "SELECT (SELECT coalesce(sum(event_count), 0) FROM hook_event "
                        "WHERE delivery_id IS NULL) + "
                        "(SELECT coalesce(sum(events), 0) FROM hook_delivery "
                        "WHERE status <> 'succeeded')"
                    )
                )
            ).scalar_one()
        )


# --- measurements ---------------------------------------------------------------------------


async def delivery_rate(
    backend: dispatch.Backend, db: Database, aid: int, n: int, port: int, sim_port: int
) -> dict[str, float]:
    hook_id = await add_hook(db, aid, port)
    t = time.perf_counter()
    await fill_outbox(db, hook_id, aid, n)
    print(f"[{backend.name}] {n:,} events written in {time.perf_counter() - t:.1f} s")
    await receiver_stats(port, reset=True)
    worker = dispatch.start_worker(backend.url, f"http://127.0.0.1:{sim_port}")
    try:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            stats = await receiver_stats(port)
            if stats["events"] >= n:
                break
            if worker.poll() is not None:
                raise RuntimeError("the worker exited")
            await asyncio.sleep(0.2)
        cpu = dispatch.cpu_seconds(worker.pid)
    finally:
        dispatch.stop(worker)
    stats = await receiver_stats(port)
    elapsed = max(stats["last"] - stats["first"], 1e-9)
    async with db.transaction() as s:
        await s.execute(text("DELETE FROM hook WHERE id = :h"), {"h": hook_id})
        await s.execute(text("DELETE FROM hook_event WHERE hook_id = :h"), {"h": hook_id})
        await s.execute(text("DELETE FROM hook_delivery WHERE hook_id = :h"), {"h": hook_id})
    return {
        "rate": stats["events"] / elapsed,
        "events": stats["events"],
        "batches": stats["batches"],
        "rejected": stats["rejected"],
        "worker_cpu": cpu,
    }


async def set_hook(db: Database, hook_id: int, enabled: bool) -> None:
    async with db.transaction() as s:
        await s.execute(
            text("UPDATE hook SET enabled = :on WHERE id = :id"), {"on": enabled, "id": hook_id}
        )


async def drain(backend: dispatch.Backend, db: Database, sim_port: int) -> tuple[int, float]:
    """Deliver what the sending run left in the outbox with a fresh worker, so that the next
    run starts from an empty one: (events left, seconds to drain them)."""
    left = await undelivered(db)
    t = time.perf_counter()
    if left:
        worker = dispatch.start_worker(backend.url, f"http://127.0.0.1:{sim_port}")
        try:
            while await undelivered(db) and time.perf_counter() - t < 600:
                await asyncio.sleep(0.1)
        finally:
            dispatch.stop(worker)
    return left, time.perf_counter() - t


def cpu_per_message(run: dict[str, float]) -> str:
    """The worker's and the database's CPU a message in a dispatch run, in microseconds."""
    worker, database = (run[key] / run["messages"] * 1e6 for key in ("worker_cpu", "db_cpu"))
    return f"CPU a message: worker {worker:.0f} µs, database {database:.0f} µs"


async def dispatch_with_hooks(
    backend: dispatch.Backend,
    db: Database,
    aid: int,
    lid: int,
    n: int,
    pairs: int,
    port: int,
    sim_port: int,
) -> None:
    """`pairs` runs with hooks off then on, alternated (two identical runs in a row differ by
    up to a fifth on a shared machine: one pair says little), each on a fresh campaign of `n`
    messages and an empty outbox."""
    hook_id = await add_hook(db, aid, port)
    losses = []
    for i in range(1, pairs + 1):
        await set_hook(db, hook_id, False)
        off = await dispatch.dispatch_run(backend, db, aid, lid, n, 1, sim_port)
        await set_hook(db, hook_id, True)
        await receiver_stats(port, reset=True)
        on = await dispatch.dispatch_run(backend, db, aid, lid, n, 1, sim_port)
        left, drained = await drain(backend, db, sim_port)
        stats = await receiver_stats(port)
        losses.append(1 - on["rate"] / off["rate"])
        print(
            f"[{backend.name}] pair {i}: dispatch of {n:,} messages, 1 worker: hooks off "
            f"{off['rate']:,.0f} msg/s ({cpu_per_message(off)}), hooks on "
            f"{on['rate']:,.0f} msg/s ({cpu_per_message(on)}) "
            f"(loss {losses[-1]:.1%}); events received {stats['events']:,.0f} in "
            f"{stats['batches']:,.0f} batches ({stats['rejected']:.0f} rejected), {left:,} "
            f"undelivered when the sending run ended, drained in {drained:.1f} s"
        )
    print(
        f"[{backend.name}] loss with hooks on: median {statistics.median(losses):.1%} of "
        f"{pairs} pairs (target at most 15%)"
    )


async def bench_backend(name: str, args: argparse.Namespace) -> None:
    backend = await dispatch.fresh_backend(name)
    db = Database(backend.url)
    port, sim_port = dispatch.free_port(), dispatch.free_port()
    receiver = start_receiver(port)
    dispatch.SIM_PROC = dispatch.start_simulator(sim_port)
    try:
        aid, lid = await dispatch.seed(db, args.messages, credits=10**15)
        r = await delivery_rate(backend, db, aid, args.events, port, sim_port)
        print(
            f"[{backend.name}] delivery: {r['events']:,.0f} events in {r['batches']:,.0f} "
            f"batches at {r['rate']:,.0f} events/s to a verifying receiver, one worker "
            f"({r['worker_cpu']:.1f} s of its CPU; target 20,000/s); "
            f"{r['rejected']:.0f} rejected"
        )
        if not args.no_dispatch:
            await dispatch_with_hooks(
                backend, db, aid, lid, args.messages, args.pairs, port, sim_port
            )
    finally:
        dispatch.stop(dispatch.SIM_PROC)
        dispatch.stop(receiver)
        await db.dispose()
        await backend.cleanup()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        run_receiver(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="events to deliver")
    parser.add_argument("--messages", type=int, default=50_000, help="messages to dispatch")
    parser.add_argument("--backends", default="pg,sqlite", help="pg, sqlite or both")
    parser.add_argument("--pairs", type=int, default=3, help="dispatch runs off/on, alternated")
    parser.add_argument("--no-dispatch", action="store_true", help="delivery rate only")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.events, args.messages, args.pairs = 20_000, 20_000, 1
    # The bench's receiver listens on loopback over plain http: allow it for the workers.
    os.environ["CLARION_HOOKS_ALLOW_HTTP_HOSTS"] = "127.0.0.1"
    print(f"{os.cpu_count()} CPUs; events {args.events:,}, messages {args.messages:,}")
    for name in args.backends.split(","):
        asyncio.run(bench_backend(name.strip(), args))


if __name__ == "__main__":
    main()
