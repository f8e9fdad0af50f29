"""The user's path, timed: CSV upload to the last message at the provider.

Through the HTTP API of real processes, on a fresh database each run (PostgreSQL: created and
dropped here, autovacuum as the server has it; SQLite: a temporary file), nothing prepared
beyond what the product does itself:

1. upload a CSV of N contacts to a new list and wait for the import (`import`);
2. create an SMS campaign on the list and confirm it at once (`confirm`: its answer);
3. time, from sending the confirm: the first message at the provider (`first`), the last
   message handed over (`last`: the simulator holds all N), and every message final
   (`final`: delivered or failed by the receipts the simulator sends 1 s after accepting);
4. `GET /campaigns/{id}` sampled every 50 ms from confirm to the last message handed over:
   p50, p99 and max of its latency (`api`), as the console's live page would poll it.

Shapes: `embedded` (`clarion serve`: API and engine in one process, one event loop) and
`split` (`clarion serve --no-sender` plus one `clarion worker`). The provider is
`clarion simulator` in its own process, on loopback, without a rate limit.

Usage:
    python bench/journey.py --quick                      # 20,000 contacts, each backend/shape
    python bench/journey.py                              # 100,000 and 1,000,000
    python bench/journey.py --sizes 1000000 --backends pg --shapes split
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audience_server import free_port, stop_server

# The external simulator signs its receipts with it (Clarion refuses unsigned ones).
SIMULATOR_SECRET = "bench-simulator-secret"

ADMIN_TOKEN = "bench-admin-token"
PG_ADMIN_DSN = os.environ.get(
    "CLARION_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CLARION = str(Path(sys.executable).with_name("clarion"))
TEXT = "Hi {{firstName}}, 20% off today. Reply STOP to opt out"
SAMPLE_EVERY = 0.05
TIMEOUT = 1800.0  # per run (--timeout)


@dataclass
class Run:
    backend: str
    shape: str
    n: int
    import_s: float = 0.0
    confirm_s: float = 0.0
    first_s: float = float("nan")
    last_s: float = float("nan")
    final_s: float = float("nan")
    api_ms: list[float] = field(default_factory=list)
    recipients: int = 0
    sent: int = 0

    def line(self) -> str:
        lat = sorted(self.api_ms)
        p50 = statistics.median(lat) if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
        worst = lat[-1] if lat else float("nan")
        upload_to_last = self.import_s + self.last_s
        return (
            f"[{self.backend} {self.shape} N={self.n:,}] import {self.import_s:.1f} s; "
            f"confirm answered {self.confirm_s * 1000:.0f} ms; first message {self.first_s:.2f} s, "
            f"last handed over {self.last_s:.1f} s, all final {self.final_s:.1f} s after confirm; "
            f"upload -> last {upload_to_last:.1f} s; GET /campaigns/{{id}} while sending: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms ({len(lat)} samples); "
            f"recipients {self.recipients:,}, sent {self.sent:,}"
        )


# --- processes ------------------------------------------------------------------------------


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_port(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if proc.poll() is not None:
                tail = (await asyncio.to_thread(log.read_text))[-3000:]
                raise RuntimeError(f"{proc.args} exited:\n{tail}")
            try:
                async with http.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.args} did not start")


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Stack:
    base: str
    sim: str
    procs: list[subprocess.Popen[bytes]]
    drop: Callable[[], Awaitable[None]]


async def start_stack(backend: str, shape: str, workdir: Path) -> Stack:
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'journey-{uuid.uuid4().hex[:8]}.db'}"

        async def drop() -> None:
            return None
    else:
        name = f"clarion_journey_{uuid.uuid4().hex[:10]}"
        await _pg(f'CREATE DATABASE "{name}"')
        url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"

        async def drop() -> None:
            await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    port, sim_port = free_port(), free_port()
    base, sim = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}"
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": url,
        "CLARION_ADMIN_TOKEN": ADMIN_TOKEN,
        "CLARION_SIMULATOR_URL": sim,
        "CLARION_SIMULATOR_SECRET": SIMULATOR_SECRET,
        "CLARION_PUBLIC_URL": base,
        "TMPDIR": str(workdir),
    }
    procs = []
    try:
        simulator = _spawn(
            [CLARION, "simulator", "--port", str(sim_port), "--receipt-delay", "1"],
            env,
            workdir / "simulator.log",
        )
        procs.append(simulator)
        await _wait_port(sim + "/stats", simulator, workdir / "simulator.log")
        serve = [CLARION, "serve", "--port", str(port)]
        if shape == "split":
            serve.append("--no-sender")
        server = _spawn(serve, env, workdir / "server.log")
        procs.append(server)
        await _wait_port(base + "/healthz", server, workdir / "server.log")
        if shape == "split":
            procs.append(_spawn([CLARION, "worker"], env, workdir / "worker.log"))
    except BaseException:
        for proc in reversed(procs):
            stop_server(proc)
        await drop()
        raise
    return Stack(base, sim, procs, drop)


async def stop_stack(stack: Stack) -> None:
    for proc in reversed(stack.procs):
        stop_server(proc)
    await stack.drop()


# --- the path -------------------------------------------------------------------------------


def write_csv(path: Path, n: int) -> None:
    """n French mobiles, none a simulator magic number (they end in 5)."""
    names = ("Ann", "Bob", "Chloé", "Dan", "Eve")
    with path.open("w") as f:
        f.write("phone,firstName\n")
        for i in range(n):
            f.write(f"+3361{i:06d}5,{names[i % 5]}\n")


async def _json(r: aiohttp.ClientResponse, status: int) -> Any:
    body = await r.json()
    if r.status != status:
        raise RuntimeError(f"{r.method} {r.url}: {r.status} {body}")
    return body


async def journey(stack: Stack, run: Run, csv: Path) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(base_url=stack.base) as http:
        rates = {"rates": [{"channel": "sms", "country": "*", "price": 0.07}]}
        async with http.put("/admin/rates", json=rates, headers=admin) as r:
            await _json(r, 200)
        account = {"name": "journey", "credits": run.n}
        async with http.post("/admin/accounts", json=account, headers=admin) as r:
            key = (await _json(r, 201))["apiKey"]
        auth = {"Authorization": f"Bearer {key}"}
        async with http.post("/lists", json={"name": "customers"}, headers=auth) as r:
            list_id = (await _json(r, 201))["id"]

        t0 = time.perf_counter()
        form = aiohttp.FormData()
        content = await asyncio.to_thread(csv.read_bytes)
        form.add_field("file", content, filename="contacts.csv", content_type="text/csv")
        async with http.post(f"/lists/{list_id}/imports", data=form, headers=auth) as r:
            import_id = (await _json(r, 202))["id"]
        while True:
            async with http.get(f"/imports/{import_id}", headers=auth) as r:
                state = await _json(r, 200)
            if state["status"] != "running":
                break
            await asyncio.sleep(0.1)
        run.import_s = time.perf_counter() - t0
        if state["status"] != "done" or state["imported"] != run.n:
            raise RuntimeError(f"import: {state}")

        campaign = {
            "name": "journey",
            "channel": "sms",
            "message": {"text": TEXT},
            "listIds": [list_id],
            "sender": "Clarion",
        }
        async with http.post("/campaigns", json=campaign, headers=auth) as r:
            campaign_id = (await _json(r, 201))["id"]
        await _follow(http, stack.sim, auth, campaign_id, run)


async def _follow(
    http: aiohttp.ClientSession, sim: str, auth: dict[str, str], campaign_id: int, run: Run
) -> None:
    """Confirm, then watch the provider and the campaign until every message is final."""
    sending = True

    async def watch_provider() -> None:
        nonlocal sending
        async with aiohttp.ClientSession() as s:
            while True:
                async with s.get(sim + "/stats") as r:
                    accepted = (await r.json())["accepted"]
                now = time.perf_counter() - t0
                if accepted and run.first_s != run.first_s:  # still NaN
                    run.first_s = now
                if accepted >= run.n:
                    run.last_s = now
                    sending = False
                    return
                await asyncio.sleep(0.02)

    async def sample_api() -> None:
        while sending:
            start = time.perf_counter()
            async with http.get(f"/campaigns/{campaign_id}", headers=auth) as r:
                await _json(r, 200)
            run.api_ms.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(SAMPLE_EVERY)

    t0 = time.perf_counter()
    async with http.put(f"/campaigns/{campaign_id}/confirm", json={}, headers=auth) as r:
        await _json(r, 200)
    run.confirm_s = time.perf_counter() - t0
    await asyncio.gather(watch_provider(), sample_api())
    while True:
        async with http.get(f"/campaigns/{campaign_id}", headers=auth) as r:
            body = await _json(r, 200)
        s = body["stats"]
        final = s["delivered"] + s["read"] + s["failed"] + s["skipped"] + s.get("expired", 0)
        if body["status"] == "completed" and final >= s["recipients"]:
            run.final_s = time.perf_counter() - t0
            run.recipients, run.sent = s["recipients"], s["delivered"] + s["read"] + s["sent"]
            return
        await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000", help="contacts, comma-separated")
    parser.add_argument("--backends", default="sqlite,pg", help="sqlite, pg or both")
    parser.add_argument("--shapes", default="embedded,split", help="embedded, split or both")
    parser.add_argument("--quick", action="store_true", help="20,000 contacts")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds a run may take")
    args = parser.parse_args()
    timeout = args.timeout
    sizes = [20_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    print(f"load before: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="clarion-journey-") as tmp:
        workdir = Path(tmp)
        for n in sizes:
            csv = workdir / f"contacts-{n}.csv"
            write_csv(csv, n)
            for backend in args.backends.split(","):
                for shape in args.shapes.split(","):
                    run = Run("PostgreSQL" if backend == "pg" else "SQLite", shape, n)
                    stack = await start_stack(backend, shape, workdir)
                    try:
                        await asyncio.wait_for(journey(stack, run, csv), timeout)
                    except TimeoutError:
                        print(f"{run.line()} -- STOPPED after {timeout:.0f} s", flush=True)
                        continue
                    finally:
                        await stop_stack(stack)
                    print(run.line(), flush=True)
    print(f"load after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
