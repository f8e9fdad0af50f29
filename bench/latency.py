"""Confirm-to-first-message latency: how long after `PUT /campaigns/{id}/confirm` answers does
the first message of the campaign reach the provider?

The provider is a small recording server run by this script on loopback, speaking the
`clarion simulator` batch protocol (`POST /messages`, every message accepted); the servers
reach it through CLARION_SIMULATOR_URL. It notes the instant each campaign's first message
arrives, on the same clock as the confirm's answer (one process, one event loop, so the two
instants are comparable to well under a millisecond). The campaigns are small (a few
recipients each, phones unique per campaign), all created as drafts first, then confirmed
one after another, each after a random pause (seeded, printed) so that a confirm lands at
any phase of a periodic loop. Every setting is the product's default. "stale reads" counts
404s on a list or campaign whose creation had already been answered (a write answered before
it committed); the bench retries those and says how many there were.

Modes, each on a fresh database:
- sqlite:       `clarion serve` on a SQLite file (API, scheduler and sender in one process);
- pg-serve:     `clarion serve` on PostgreSQL;
- pg-worker:    `clarion serve --no-sender` + one `clarion worker` on PostgreSQL.

Usage:
    python bench/latency.py                   # 50 campaigns per mode, every mode
    python bench/latency.py --quick           # 5 campaigns per mode
    python bench/latency.py --campaigns 10 --modes sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))
from audience_server import ADMIN_TOKEN, PG_ADMIN_DSN, _pg, free_port, wait_ready

# The external simulator signs its receipts with it (Clarion refuses unsigned ones).
SIMULATOR_SECRET = "bench-simulator-secret"

CLARION = str(Path(sys.executable).with_name("clarion"))
RECIPIENTS = 3


class Recorder:
    """The provider: accepts every message and notes when each campaign's first one came."""

    def __init__(self) -> None:
        self.campaign_of: dict[str, int] = {}  # phone -> campaign index
        self.first: dict[int, float] = {}
        self.arrived: dict[int, asyncio.Event] = {}

    async def messages(self, request: web.Request) -> web.Response:
        now = time.perf_counter()
        body = orjson.loads(await request.read())
        items = body if isinstance(body, list) else [body]
        for item in items:
            index = self.campaign_of.get(item.get("to", ""))
            if index is not None and index not in self.first:
                self.first[index] = now
                self.arrived[index].set()
        results = [
            {"id": item["id"], "status": "accepted", "providerMessageId": f"lat-{item['id']}"}
            for item in items
        ]
        return web.json_response({"results": results})

    async def start(self) -> tuple[web.AppRunner, str]:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/messages", self.messages)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner, f"http://127.0.0.1:{port}"


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([CLARION, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


STALE_READS = 0  # 404s on a resource whose creation had already been answered


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    key: str,
    *,
    just_made: bool = False,
    **kw: Any,
) -> Any:
    """One request; `just_made`: the URL names a resource whose creation was just answered,
    so a 404 means the creation was answered before it committed: counted, then retried."""
    global STALE_READS
    for _ in range(50):
        async with http.request(
            method, url, headers={"Authorization": f"Bearer {key}"}, **kw
        ) as response:
            body = await response.read()
            if response.status == 404 and just_made:
                STALE_READS += 1
                await asyncio.sleep(0.02)
                continue
            if response.status >= 300:
                raise RuntimeError(f"{method} {url}: {response.status} {body[:300]!r}")
            return orjson.loads(body) if body else None
    raise RuntimeError(f"{method} {url}: still 404 a second after its creation was answered")


async def drafts(
    http: aiohttp.ClientSession, base: str, recorder: Recorder, n: int
) -> tuple[str, list[int]]:
    """An account, a rate card and `n` draft campaigns of RECIPIENTS contacts each."""
    account = await call(
        http, "POST", f"{base}/admin/accounts", ADMIN_TOKEN, json={"name": "lat", "credits": 10**6}
    )
    key = account["apiKey"]
    await call(
        http,
        "PUT",
        f"{base}/admin/rates",
        ADMIN_TOKEN,
        json={"rates": [{"channel": "sms", "country": "*", "price": 0.07}]},
    )
    ids = []
    for index in range(n):
        phones = [f"+3361{index:03d}{i:03d}5" for i in range(RECIPIENTS)]
        for phone in phones:
            recorder.campaign_of[phone] = index
        recorder.arrived[index] = asyncio.Event()
        lst = await call(http, "POST", f"{base}/lists", key, json={"name": f"l{index}"})
        await call(
            http,
            "POST",
            f"{base}/lists/{lst['id']}/contacts",
            key,
            just_made=True,
            json={"contacts": [{"phone": p} for p in phones]},
        )
        campaign = await call(
            http,
            "POST",
            f"{base}/campaigns",
            key,
            json={
                "name": f"c{index}",
                "channel": "sms",
                "message": {"text": "Hi {{firstName}}"},
                "listIds": [lst["id"]],
                "sender": "Clarion",
            },
        )
        ids.append(campaign["id"])
    return key, ids


async def measure(mode: str, args: argparse.Namespace, rng: random.Random) -> list[float]:
    recorder = Recorder()
    runner, provider_url = await recorder.start()
    work = Path(tempfile.mkdtemp(prefix="clarion-latency-"))
    pg_name = None
    if mode == "sqlite":
        url = f"sqlite:///{work / 'latency.db'}"
    else:
        pg_name = f"clarion_bench_{uuid.uuid4().hex[:10]}"
        await _pg(f'CREATE DATABASE "{pg_name}"')
        url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{pg_name}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": url,
        "CLARION_ADMIN_TOKEN": ADMIN_TOKEN,
        "CLARION_SIMULATOR_URL": provider_url,
        "CLARION_SIMULATOR_SECRET": SIMULATOR_SECRET,
        "CLARION_PUBLIC_URL": base,
    }
    serve = ["serve", "--port", str(port)] + (["--no-sender"] if mode == "pg-worker" else [])
    procs = [spawn(serve, env, work / "serve.log")]
    procs[0].log_path = work / "serve.log"  # type: ignore[attr-defined]
    latencies = []
    try:
        await wait_ready(base, procs[0])
        if mode == "pg-worker":
            procs.append(spawn(["worker"], env, work / "worker.log"))
        async with aiohttp.ClientSession() as http:
            key, ids = await drafts(http, base, recorder, args.campaigns)
            await asyncio.sleep(2)  # the worker is up and idle, as it would be in service
            for index, cid in enumerate(ids):
                await asyncio.sleep(rng.uniform(0.05, 1.0))
                await call(
                    http, "PUT", f"{base}/campaigns/{cid}/confirm", key, just_made=True, json={}
                )
                answered = time.perf_counter()
                await asyncio.wait_for(recorder.arrived[index].wait(), 30)
                latencies.append(1000 * (recorder.first[index] - answered))
    finally:
        for proc in reversed(procs):
            stop(proc)
        await runner.cleanup()
        if pg_name is not None:
            await _pg(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main_async(args: argparse.Namespace) -> None:
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    print(f"load before: {os.getloadavg()}; seed {seed}; {args.campaigns} campaigns per mode")
    print("\n| mode | campaigns | p50 ms | p95 ms | max ms | mean ms | stale reads |")
    print("|---|---|---|---|---|---|---|")
    global STALE_READS
    for mode in args.modes.split(","):
        STALE_READS = 0
        values = await measure(mode, args, random.Random(f"{seed}-{mode}"))
        print(
            f"| {mode} | {len(values)} | {pct(values, 0.5):.0f} | {pct(values, 0.95):.0f} "
            f"| {max(values):.0f} | {statistics.fmean(values):.0f} | {STALE_READS} |",
            flush=True,
        )
    print(f"\nload after: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--campaigns", type=int, default=50, help="campaigns per mode")
    parser.add_argument("--modes", default="sqlite,pg-serve,pg-worker")
    parser.add_argument("--seed", type=int, default=None, help="the pauses' random seed")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 campaigns per mode")
    args = parser.parse_args()
    if args.quick:
        args.campaigns = 5
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
