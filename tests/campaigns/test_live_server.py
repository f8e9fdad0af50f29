"""Two API server processes on one database: confirms racing for the last credits through
real sockets, so the guard is the database's, not the event loop's."""

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from clarion.config import Settings
from tests.campaigns.conftest import World, create, sms_body
from tests.conftest import ADMIN_TOKEN, Api, assert_ledger_consistent

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def servers(settings: Settings, db: object) -> AsyncIterator[list[str]]:
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": settings.database_url,
        "CLARION_ADMIN_TOKEN": ADMIN_TOKEN,
        "CLARION_SENDER_ENABLED": "false",
    }
    ports = [free_port(), free_port()]
    procs = [
        await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "clarion", "serve", "--no-sender", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with httpx.AsyncClient() as client:
            for url in urls:
                for _ in range(150):  # up to 30 s
                    try:
                        if (await client.get(f"{url}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
                else:
                    pytest.fail(f"server at {url} did not start")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


class TestRacingConfirmsAcrossProcesses:
    async def test_exactly_one_wins(self, api: Api, world: World, servers: list[str]) -> None:
        acct = await api.new_account("race", credits=1)
        ids = []
        for _ in range(2):
            lst = await world.new_list(acct)
            await world.people(acct, [lst], 10)  # 0.7 each: only one fits
            ids.append((await create(acct, sms_body([lst])))["id"])
        headers = {"Authorization": f"Bearer {acct.key}"}
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            results = await asyncio.gather(
                *(
                    client.put(f"{url}/campaigns/{cid}/confirm", json={})
                    for url, cid in zip(servers, ids, strict=True)
                )
            )
        assert sorted(r.status_code for r in results) == [200, 402], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 402).json()
        assert loser["required"] == 0.7 and loser["available"] == pytest.approx(0.3)
        me = (await acct.get("/account")).json()
        assert me["reserved"] == 0.7
        await assert_ledger_consistent(world.db, acct.id)
