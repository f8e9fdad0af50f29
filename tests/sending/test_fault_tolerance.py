"""Fault tolerance with real processes on PostgreSQL: `clarion worker` processes killed with
SIGKILL mid-run, and a provider (`clarion simulator`) that fails in every way for stretches.

Receipts flow back through a `clarion serve --no-sender` API process, as in a cluster.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from clarion.accounts.models import Account, CreditLedger
from clarion.config import Settings
from clarion.db.session import Database
from clarion.messages.models import Message
from tests.conftest import ADMIN_TOKEN, assert_ledger_consistent
from tests.sending.conftest import (
    assert_partition,
    campaign,
    seed_campaign,
    seed_contacts,
    set_rates,
)

pytestmark = pytest.mark.slow
# The fault stretches and the shutdown budget time real processes on a shared 2-core machine:
# those two are retried once and reported as a rerun. The kill -9 drill is never retried: its
# random choices come from a printed seed, so a failure is replayed, not rerun away.
timed = pytest.mark.flaky(reruns=1, reruns_delay=2)

CLARION = str(Path(sys.executable).parent / "clarion")
PRICE = 700


def seeded_random() -> random.Random:
    """A random source whose seed is printed (shown with a failure): CLARION_TEST_SEED replays
    a run's choices."""
    seed = int(os.environ.get("CLARION_TEST_SEED") or time.time_ns() % 2**32)
    print(f"random seed {seed} (replay with CLARION_TEST_SEED={seed})")
    return random.Random(seed)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@dataclass
class Cluster:
    """A simulator, an API process (receives receipts) and workers, all on loopback."""

    database_url: str
    tmp: Path
    sim_port: int = field(default_factory=_free_port)
    api_port: int = field(default_factory=_free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CLARION_DATABASE_URL": self.database_url,
            "CLARION_ADMIN_TOKEN": ADMIN_TOKEN,
            "CLARION_PUBLIC_URL": f"http://127.0.0.1:{self.api_port}",
            "CLARION_SIMULATOR_URL": self.sim_url,
            "CLARION_SIMULATOR_SECRET": "fault-tolerance-secret",  # signs its receipts
            "CLARION_SIMULATOR_TIMEOUT": "1",
            "CLARION_LEASE_SECONDS": "5",
            "CLARION_SCHEDULER_INTERVAL": "0.2",
            "CLARION_WORKER_BATCH_SIZE": "500",
            "CLARION_RETRY_BASE_SECONDS": "0.1",
            "CLARION_RETRY_MAX_SECONDS": "1",
            "CLARION_WORKER_MAX_ATTEMPTS": "30",
            **self.extra_env,
        }

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [CLARION, *args], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        sim = self._spawn(
            [
                "simulator",
                "--port",
                str(self.sim_port),
                "--receipt-delay",
                "0.2",
                "--hang-seconds",
                "2",
            ],
            "simulator",
        )
        _wait_port(self.sim_port, sim)
        api = self._spawn(["serve", "--no-sender", "--port", str(self.api_port)], "api")
        _wait_port(self.api_port, api)

    def start_worker(self, index: int) -> subprocess.Popen[bytes]:
        proc = self._spawn(["worker"], f"worker{index}")
        if index < len(self.workers):
            self.workers[index] = proc
        else:
            self.workers.append(proc)
        return proc

    def kill9(self, index: int) -> None:
        proc = self.workers[index]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    async def sim(self, method: str, path: str, body: object | None = None) -> dict:
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.sim_url + path, json=body) as r,
        ):
            assert r.status < 300, await r.text()
            return await r.json()


@pytest.fixture
def cluster(settings: Settings, tmp_path: Path, db: Database) -> Iterator[Cluster]:
    # `db` first: its tables are emptied before the processes start querying them.
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("many workers need PostgreSQL (SKIP LOCKED); SQLite runs one embedded sender")
    c = Cluster(settings.database_url, tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


async def _campaign_of(db, api, n: int) -> tuple[int, int]:
    account = await api.new_account("acme", credits=n * PRICE / 10_000 + 10)
    await set_rates(db, [("sms", "*", "", PRICE)])
    # national numbers ending in 5: never one of the simulator's magic numbers
    phones = [f"+3361{i:06d}5" for i in range(n)]
    lst = await seed_contacts(db, account.id, phones)
    cid = await seed_campaign(db, account.id, [lst], text="Hi {{firstName}}", reserve=n * PRICE)
    return account.id, cid


async def _wait_final(db, cid: int, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = await campaign(db, cid)
        if c.status == "completed" and c.delivered + c.failed == n:
            return
        await asyncio.sleep(0.5)
    c = await campaign(db, cid)
    raise AssertionError(
        f"not final: {c.status} queued={c.queued} sending={c.sending} sent={c.sent} "
        f"delivered={c.delivered} failed={c.failed}"
    )


async def _wait_progress(db, cid: int, done: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = await campaign(db, cid)
        if c.recipients and c.recipients - c.queued - c.sending >= done:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no progress")


async def _assert_exactly_once(cluster: Cluster, db, account_id: int, cid: int, n: int) -> None:
    c = await assert_partition(db, cid)
    assert (c.status, c.recipients, c.delivered, c.reserved) == ("completed", n, n, 0)
    async with db.session(write=False) as s:
        ours = set(
            (
                await s.execute(
                    select(Message.id).where(
                        Message.campaign_id == cid, Message.provider_message_id.is_not(None)
                    )
                )
            ).scalars()
        )
        charged = (
            await s.execute(
                select(func.sum(CreditLedger.balance_delta)).where(
                    CreditLedger.campaign_id == cid, CreditLedger.kind == "charge"
                )
            )
        ).scalar_one()
        priced = (
            await s.execute(select(func.sum(Message.price)).where(Message.campaign_id == cid))
        ).scalar_one()
        balance = (await s.get(Account, account_id)).balance
    accepted = (await cluster.sim("GET", "/accepted"))["ids"]
    assert len(accepted) == len(set(accepted))
    assert {int(i) for i in accepted} == ours
    assert len(ours) == n  # each message id accepted exactly once by the provider
    assert -charged == priced == c.spent == n * PRICE  # nothing double-charged
    assert balance == n * PRICE + 10 * 10_000 - c.spent
    await assert_ledger_consistent(db, account_id)


class TestWorkersKilled:
    async def test_kill_9_three_times_loses_and_duplicates_nothing(self, cluster, db, api):
        n = 20_000
        account_id, cid = await _campaign_of(db, api, n)
        cluster.start_worker(0)
        cluster.start_worker(1)
        rng = seeded_random()
        # three random moments of the run, by progress, so that every kill lands mid-batch
        for threshold in sorted(rng.uniform(0.05, 0.85) for _ in range(3)):
            await _wait_progress(db, cid, int(threshold * n))
            victim = rng.randrange(2)
            cluster.kill9(victim)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            cluster.start_worker(victim)
        await _wait_final(db, cid, n, timeout=150)
        stats = await cluster.sim("GET", "/stats")
        assert stats["accepted"] == n
        await _assert_exactly_once(cluster, db, account_id, cid, n)


@timed
class TestProviderFaults:
    async def test_errors_timeouts_drops_and_throttles_for_stretches(self, cluster, db, api):
        n = 12_000
        account_id, cid = await _campaign_of(db, api, n)
        cluster.start_worker(0)
        cluster.start_worker(1)
        await _wait_progress(db, cid, 1)
        stretches = [
            ("error", {"errorRate": 0.6}),
            ("timeout", {"errorRate": 0.0, "timeoutRate": 0.5}),
            ("drop", {"timeoutRate": 0.0, "dropRate": 0.6}),
            ("throttle", {"dropRate": 0.0, "throttleRate": 0.8}),
        ]
        for kind, faults in stretches:
            await cluster.sim("POST", "/faults", faults)
            # hold each stretch until the simulator has served that fault a few times
            for _ in range(300):
                if (await cluster.sim("GET", "/stats"))["faults"][kind] >= 3:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"no {kind} fault was served")
            await asyncio.sleep(0.5)
        await cluster.sim(
            "POST",
            "/faults",
            {"errorRate": 0.2, "timeoutRate": 0.1, "dropRate": 0.2, "throttleRate": 0.2},
        )
        await asyncio.sleep(1.5)
        await cluster.sim(
            "POST", "/faults", {"errorRate": 0, "timeoutRate": 0, "dropRate": 0, "throttleRate": 0}
        )
        assert (await campaign(db, cid)).queued > 0  # the faults hit a campaign in progress
        await _wait_final(db, cid, n, timeout=120)
        await _assert_exactly_once(cluster, db, account_id, cid, n)


@timed
class TestGracefulShutdown:
    async def test_sigterm_finishes_or_releases_in_flight_work_within_10_s(self, cluster, db, api):
        n = 4_000
        account_id, cid = await _campaign_of(db, api, n)
        await cluster.sim("POST", "/faults", {"latencyMs": 400})  # batches stay in flight
        worker = cluster.start_worker(0)
        await _wait_progress(db, cid, n // 10)
        worker.send_signal(signal.SIGTERM)
        # it exits by itself, cleanly, within the shutdown budget (10 s, plus process exit)
        assert await asyncio.to_thread(worker.wait, 12) == 0
        c = await assert_partition(db, cid)
        assert c.sending == 0 and c.queued > 0  # nothing left leased to the dead process
        await cluster.sim("POST", "/faults", {"latencyMs": 0})
        cluster.start_worker(0)
        await _wait_final(db, cid, n, timeout=90)
        await _assert_exactly_once(cluster, db, account_id, cid, n)
