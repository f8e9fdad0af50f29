"""Slow and greedy clients against a real `clarion serve` over real sockets: connections
that dribble their headers are closed, the connection cap evicts idle connections first,
and /healthz keeps answering throughout."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.app.server import Served, serving

HEADER_TIMEOUT = 2.0
MAX_CONNECTIONS = 40


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> "AsyncIterator[Served]":
    tmp = tmp_path_factory.mktemp("slow")
    with serving(
        f"sqlite:///{tmp / 'slow.db'}",
        tmp,
        CLARION_HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        CLARION_HTTP_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        CLARION_IMPORT_WORKERS="0",
    ) as s:
        yield s  # type: ignore[misc]


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the connection within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(1024):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def dribble(served: Served, stop: asyncio.Event) -> float:
    """Open a connection and send one header line every 0.5 s; seconds until the server
    closed it (inf if it never did before `stop`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    started = time.monotonic()
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        n = 0
        while not stop.is_set():
            if await closed_by_server(reader, 0.5):
                return time.monotonic() - started
            n += 1
            writer.write(b"X-Slow-%d: %d\r\n" % (n, n))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        return float("inf")
    except ConnectionError:
        return time.monotonic() - started
    finally:
        writer.close()


async def healthz_times(served: Served, until: asyncio.Event) -> list[float]:
    """Seconds each /healthz took, on a new connection every 0.2 s, until `until`."""
    times = []
    while not until.is_set():
        async with httpx.AsyncClient(base_url=served.base, timeout=5) as client:
            t0 = time.monotonic()
            r = await client.get("/healthz")
            assert r.status_code == 200
            times.append(time.monotonic() - t0)
        await asyncio.sleep(0.2)
    return times


async def test_dribbling_headers_are_cut_off_and_healthz_answers(served: Served) -> None:
    stop = asyncio.Event()
    slow = [asyncio.create_task(dribble(served, stop)) for _ in range(MAX_CONNECTIONS // 2)]
    health = asyncio.create_task(healthz_times(served, stop))
    async with asyncio.timeout(HEADER_TIMEOUT + 10):
        closed_after = await asyncio.gather(*slow)
    stop.set()
    times = await health
    assert all(HEADER_TIMEOUT - 0.5 <= t <= HEADER_TIMEOUT + 3 for t in closed_after), closed_after
    assert len(times) >= 5 and max(times) < 1.0, times


async def test_past_the_cap_the_longest_waiting_connection_makes_room(served: Served) -> None:
    opened = []
    for _ in range(MAX_CONNECTIONS + 10):  # silent connections, more than the cap
        opened.append(await asyncio.open_connection("127.0.0.1", served.port))
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=served.base, timeout=5) as client:
            for _ in range(5):
                assert (await client.get("/healthz")).status_code == 200
        # The first ones opened were evicted at once; the newest are still open.
        first = await asyncio.gather(*(closed_by_server(r, 0.5) for r, _ in opened[:10]))
        assert all(first), first
        last = await asyncio.gather(*(closed_by_server(r, 0.2) for r, _ in opened[-10:]))
        assert not any(last), last
    finally:
        for _, writer in opened:
            writer.close()


async def test_oversized_headers_get_431(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for i in range(100):
            writer.write(b"X-Big-%d: %s\r\n" % (i, b"a" * 1000))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read(200)
        assert answer.startswith(b"HTTP/1.1 431"), answer
    finally:
        writer.close()


async def test_a_normal_keep_alive_client_is_served(served: Served, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=5) as client:
        for _ in range(20):
            assert (await client.get("/healthz")).status_code == 200
