"""At least once through `kill -9`: a `clarion worker` killed while its batch is on the wire
leaves the delivery pending; once the hook's lease runs out, another worker sends the same
batch (same `webhook-id`) and it is recorded as delivered."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.hooks import outbox
from tests.conftest import AccountClient, Api
from tests.hooks.conftest import Receiver, add_hook

pytestmark = pytest.mark.slow

CLARION = str(Path(sys.executable).parent / "clarion")


class Workers:
    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.settings = settings
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "CLARION_DATABASE_URL": self.settings.database_url,
            "CLARION_HOOKS_ALLOW_HTTP_HOSTS": "127.0.0.1",
            "CLARION_HOOKS_LEASE_SECONDS": "2",
            "CLARION_ENGINE_IDLE_SECONDS": "0.2",
            "CLARION_SCHEDULER_INTERVAL": "0.2",
        }
        with open(self.tmp / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [CLARION, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(settings, tmp_path)
    try:
        yield w
    finally:
        w.stop()


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_batch_in_flight_when_its_worker_is_killed_is_delivered_again(
    hook_api: Api,
    acme: AccountClient,
    receiver: Receiver,
    db: Database,
    workers: Workers,
) -> None:
    hook = await add_hook(acme, receiver)
    async with db.transaction() as s:
        for i in range(5):
            await outbox.record_event(s, acme.id, "message.clicked", {"messageId": i}, utcnow())
    receiver.hang = True
    first = workers.start("worker1")

    async def hung() -> bool:
        assert first.poll() is None, "worker1 exited"
        return receiver.hung.is_set()

    await _until(hung, 60, "the first worker's request")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    [delivery] = (await acme.get(f"/hooks/{hook['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "pending" and delivery["attempts"] == 0
    assert receiver.batches == []

    workers.start("worker2")

    async def delivered() -> bool:
        items = (await acme.get(f"/hooks/{hook['id']}/deliveries")).json()["items"]
        return bool(items) and items[0]["status"] == "succeeded"

    await _until(delivered, 60, "the batch to be delivered by the second worker")
    assert [e["data"]["messageId"] for e in receiver.events] == list(range(5))
    # the same batch, under the same webhook-id, arrived twice: once to the killed worker
    assert receiver.seen_ids == [f"msg_{delivery['id']}"] * 2
    [done] = (await acme.get(f"/hooks/{hook['id']}/deliveries")).json()["items"]
    assert done["id"] == delivery["id"] and done["attempts"] == 1
