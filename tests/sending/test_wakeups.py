"""Wake-ups instead of polling: a confirmed campaign reaches the provider at once, and a
scheduled one starts on time, while every engine loop would otherwise rest for a minute.

The engines here are configured to rest 60 s between rounds when idle and 30 s between
scheduler rounds: only a wake-up (in-process on SQLite, LISTEN/NOTIFY across processes on
PostgreSQL) or the scheduler's own timing of the next start can make them act sooner."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from tests.sending.conftest import seed_contacts, set_rates
from tests.sending.test_fault_tolerance import Cluster

RESTING = {"CLARION_SCHEDULER_INTERVAL": "30", "CLARION_ENGINE_IDLE_SECONDS": "60"}


async def _campaign(api, db, n: int) -> tuple[object, int]:
    account = await api.new_account("acme", credits=100)
    await set_rates(db, [("sms", "*", "", 700)])
    lst = await seed_contacts(db, account.id, [f"+3361{i:06d}5" for i in range(n)])
    r = await account.post(
        "/campaigns",
        json={"name": "w", "channel": "sms", "message": {"text": "Hi"}, "listIds": [lst]},
    )
    assert r.status_code == 201, r.text
    return account, r.json()["id"]


async def _until(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time a wake-up allows")


def _wait_for_worker(log: Path, timeout: float = 60) -> None:
    """The worker is up and its loops are about to rest (a loaded machine may take seconds to
    start a process: the wake-up is measured from then, not from the spawn)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and b" running" in log.read_bytes():
            return
        time.sleep(0.1)
    raise AssertionError(f"the worker did not start: {log.read_text(errors='replace')}")


class TestAcrossProcesses:
    @pytest.fixture
    def resting_cluster(self, settings: Settings, tmp_path: Path, db: Database):  # type: ignore[no-untyped-def]
        # `db` first: its tables are emptied before the processes start querying them
        # (TRUNCATE beside a running worker's reads can deadlock).
        if not settings.database_url.startswith("postgresql"):
            pytest.skip("other processes hear of work through PostgreSQL NOTIFY")
        cluster = Cluster(settings.database_url, tmp_path, extra_env=RESTING)
        try:
            cluster.start()
            cluster.start_worker(0)
            _wait_for_worker(tmp_path / "worker0.log")
            yield cluster
        finally:
            cluster.stop()

    async def test_a_confirm_wakes_a_resting_worker(self, resting_cluster, db, api):
        account, cid = await _campaign(api, db, 20)
        await asyncio.sleep(3)  # the worker's loops are resting by now
        r = await account.put(f"/campaigns/{cid}/confirm", json={})
        assert r.status_code == 200, r.text

        async def handed_over() -> bool:
            return (await resting_cluster.sim("GET", "/stats"))["accepted"] == 20

        await _until(handed_over, 15)

    async def test_a_scheduled_campaign_starts_on_time(self, resting_cluster, db, api):
        account, cid = await _campaign(api, db, 5)
        await asyncio.sleep(3)
        at = utcnow() + timedelta(seconds=4)
        r = await account.put(f"/campaigns/{cid}/confirm", json={"scheduledAt": at.isoformat()})
        assert r.status_code == 200, r.text

        async def handed_over() -> bool:
            return (await resting_cluster.sim("GET", "/stats"))["accepted"] == 5

        await _until(handed_over, 15)
        assert utcnow() >= at  # not early either


class TestEmbedded:
    async def test_a_confirm_wakes_the_resting_embedded_engine(self, db, make_api):
        api = await make_api(
            sender_enabled=True,
            scheduler_interval=30,
            engine_idle_seconds=60,
            simulator_receipt_delay=0.05,
        )
        account, cid = await _campaign(api, db, 10)
        await asyncio.sleep(1)
        r = await account.put(f"/campaigns/{cid}/confirm", json={})
        assert r.status_code == 200, r.text

        async def handed_over() -> bool:
            body = (await account.get(f"/campaigns/{cid}")).json()
            return body["stats"]["queued"] + body["stats"]["sending"] == 0 and (
                body["stats"]["recipients"] == 10
            )

        await _until(handed_over, 10)
