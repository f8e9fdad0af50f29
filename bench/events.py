"""Live events: what 200 open event streams cost the server while nothing changes, and how
soon a change reaches a stream.

    .venv/bin/python bench/events.py [--backend sqlite|postgresql] [--streams 200] [--idle 30]

Starts `clarion serve --no-sender` on a fresh database, opens the streams over real sockets
(aiohttp), lets them sit idle for `--idle` seconds and reads the server's CPU time from
/proc before and after: the figure is the share of one core the idle streams cost. Then it
renames a campaign `--changes` times and times each change until its event reaches a stream
(the target is under 1 s).
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from audience_server import ADMIN_TOKEN, cpu_seconds, descendants, served


async def _open(http: aiohttp.ClientSession, url: str, key: str) -> aiohttp.ClientResponse:
    r = await http.get(url, headers={"Authorization": f"Bearer {key}"})
    assert r.status == 200, await r.text()
    return r


async def _drain(r: aiohttp.ClientResponse, seen: asyncio.Queue[tuple[float, str]]) -> None:
    async for raw in r.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            await seen.put((time.perf_counter(), json.loads(line[6:])["name"]))


async def bench(backend: str, streams: int, idle: float, changes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with served(backend, Path(tmp)) as (base, proc):
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
            connector = aiohttp.TCPConnector(limit=streams + 10)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                async with http.post(
                    f"{base}/admin/accounts", json={"name": "bench"}, headers=admin
                ) as r:
                    body = await r.json()
                    assert r.status == 201, body
                    key = body["apiKey"]
                auth = {"Authorization": f"Bearer {key}"}
                async with http.post(
                    f"{base}/campaigns",
                    json={"name": "c0", "channel": "sms", "message": {"text": "hi"}},
                    headers=auth,
                ) as r:
                    body = await r.json()
                    assert r.status == 201, body
                    campaign = body["id"]
                half = streams // 2
                opened = [await _open(http, f"{base}/events", key) for _ in range(half)]
                opened += [
                    await _open(http, f"{base}/campaigns/{campaign}/events", key)
                    for _ in range(streams - half)
                ]
                seen: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
                readers = [asyncio.create_task(_drain(opened[-1], seen))]
                await asyncio.sleep(2)  # settle: first events, the feed running
                while not seen.empty():
                    seen.get_nowait()
                pids = [proc.pid, *descendants(proc.pid)]
                cpu0, t0 = cpu_seconds(pids), time.perf_counter()
                await asyncio.sleep(idle)
                cpu1, t1 = cpu_seconds(pids), time.perf_counter()
                share = (cpu1 - cpu0) / (t1 - t0)
                print(
                    f"{backend}: {streams} open streams, idle {t1 - t0:.0f} s: server CPU "
                    f"{cpu1 - cpu0:.2f} s = {share:.1%} of one core (target < 5%)"
                )
                delays = []
                for i in range(changes):
                    name = f"c{i + 1}"
                    started = time.perf_counter()
                    async with http.put(
                        f"{base}/campaigns/{campaign}", json={"name": name}, headers=auth
                    ) as r:
                        assert r.status == 200
                    while True:
                        at, got = await asyncio.wait_for(seen.get(), 5)
                        if got == name:
                            delays.append(at - started)
                            break
                    await asyncio.sleep(0.6)  # past the coalescing gap
                print(
                    f"{backend}: change -> event on an open stream, {changes} changes: "
                    f"median {statistics.median(delays) * 1000:.0f} ms, "
                    f"max {max(delays) * 1000:.0f} ms (target < 1000 ms)"
                )
                for task in readers:
                    task.cancel()
                for r in opened:
                    r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(bench(args.backend, args.streams, args.idle, args.changes))


if __name__ == "__main__":
    main()
