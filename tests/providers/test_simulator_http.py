"""The HTTP simulator (`clarion simulator`) and its client provider, over real sockets."""

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import uvicorn
from sqlalchemy import update

from clarion.app import create_app
from clarion.config import Settings
from clarion.db.session import Database
from clarion.delivery.service import apply_parked
from clarion.messages.models import Message
from clarion.messages.tally import move
from clarion.providers.base import OutboundMessage, Outcome
from clarion.providers.simulator_http import HttpSimulatorProvider
from clarion.providers.simulator_server import Faults, ServerConfig, bound_port, start
from tests.delivery.conftest import assert_partition, message_statuses, seed_campaign


class Sim:
    """A running simulator: its URL and a small admin client."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def get(self, path: str) -> Any:
        async with self.session.get(self.url + path) as response:
            assert response.status == 200
            return await response.json()

    async def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.post(self.url + path, json=body, **kwargs) as response:
            return response.status, await response.json(content_type=None)

    async def faults(self, **values: float) -> None:
        status, _ = await self.post("/faults", values)
        assert status == 200


async def running_simulator(**config: Any) -> AsyncIterator[Sim]:
    runner = await start(ServerConfig(port=0, **config))
    try:
        async with aiohttp.ClientSession() as session:
            yield Sim(f"http://127.0.0.1:{bound_port(runner)}", session)
    finally:
        await runner.cleanup()


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async for s in running_simulator(faults=Faults(receipt_delay=0.01), hang_seconds=5):
        yield s


@pytest.fixture
async def client(sim: Sim) -> AsyncIterator[HttpSimulatorProvider]:
    provider = HttpSimulatorProvider("sms", sim.url, timeout=0.5, batch_size=3, concurrency=2)
    await provider.start(None)  # type: ignore[arg-type]  # receipts go by webhook
    yield provider
    await provider.close()


def msg(i: int, to: str, channel: str = "sms") -> OutboundMessage:
    return OutboundMessage(id=i, channel=channel, to=to, sender="Clarion", text="hi")


def batch(n: int, start: int = 1) -> list[OutboundMessage]:
    return [msg(i, f"+3361{i:06d}5") for i in range(start, start + n)]  # no magic numbers


class TestSubmit:
    async def test_batch_outcomes_with_magic_numbers(
        self, sim: Sim, client: HttpSimulatorProvider
    ) -> None:
        messages = [
            msg(1, "+33612345678"),
            msg(2, "+33612340000"),
            msg(3, "+33612340001"),
            msg(4, "+33612340002"),
            msg(5, "+33612345679"),
        ]
        results = {r.message_id: r for r in await client.submit(messages)}
        assert len(results) == 5
        assert results[1].outcome is Outcome.ACCEPTED and results[1].provider_message_id == "sim-1"
        assert (results[2].outcome, results[2].error_code) == (Outcome.REFUSED, "SIM_REFUSED")
        assert results[3].outcome is Outcome.ACCEPTED  # reported failed later
        assert results[4].outcome is Outcome.ACCEPTED  # SMS to a no-RCS phone is fine
        stats = await sim.get("/stats")
        assert (stats["accepted"], stats["refused"], stats["requests"]) == (4, 1, 2)

    async def test_rcs_capability(self, sim: Sim) -> None:
        rcs = HttpSimulatorProvider("rcs", sim.url)
        await rcs.start(None)  # type: ignore[arg-type]
        try:
            caps = await rcs.check_capability(["+33612340002", "+33612345678"])
            assert caps == {"+33612340002": False, "+33612345678": True}
            [result] = await rcs.submit([msg(9, "+33612340002", "rcs")])
            assert (result.outcome, result.error_code) == (Outcome.NO_CAPABILITY, "SIM_NO_RCS")
        finally:
            await rcs.close()

    async def test_resubmitted_ids_are_deduplicated(
        self, sim: Sim, client: HttpSimulatorProvider
    ) -> None:
        await client.submit(batch(4))
        again = await client.submit(batch(6))  # 4 known, 2 new
        assert {r.outcome for r in again} == {Outcome.ACCEPTED}
        assert {r.provider_message_id for r in again} == {f"sim-{i}" for i in range(1, 7)}
        stats = await sim.get("/stats")
        assert (stats["accepted"], stats["duplicates"], stats["messages"]) == (6, 4, 10)
        assert sorted(int(i) for i in (await sim.get("/accepted"))["ids"]) == list(range(1, 7))

    async def test_single_message_form(self, sim: Sim) -> None:
        status, body = await sim.post("/messages", {"id": "1", "to": "+33612345678"})
        assert (status, body["providerMessageId"]) == (202, "sim-1")
        status, body = await sim.post("/messages", {"id": "2", "to": "+33612340000"})
        assert (status, body["errorCode"]) == (422, "SIM_REFUSED")
        status, body = await sim.post("/messages", [{"to": "+33612345678"}, 5])
        assert status == 200
        assert [r["errorCode"] for r in body["results"]] == ["SIM_INVALID", "SIM_INVALID"]

    async def test_reset_forgets_everything(self, sim: Sim, client: HttpSimulatorProvider) -> None:
        await client.submit(batch(2))
        assert (await sim.post("/reset", {}))[0] == 200
        stats = await sim.get("/stats")
        assert (stats["accepted"], stats["messages"]) == (0, 0)


class TestFaults:
    async def test_500s_are_retry(self, sim: Sim, client: HttpSimulatorProvider) -> None:
        await sim.faults(errorRate=1)
        results = await client.submit(batch(4))
        assert {(r.outcome, r.error_code) for r in results} == {(Outcome.RETRY, "HTTP_500")}
        assert (await sim.get("/stats"))["accepted"] == 0  # nothing was taken
        await sim.faults(errorRate=0)
        assert {r.outcome for r in await client.submit(batch(4))} == {Outcome.ACCEPTED}

    async def test_429_is_throttled_with_retry_after(
        self, sim: Sim, client: HttpSimulatorProvider
    ) -> None:
        await sim.faults(throttleRate=1)
        results = await client.submit(batch(2))
        assert {(r.outcome, r.retry_after) for r in results} == {(Outcome.THROTTLED, 1.0)}
        assert (await sim.get("/stats"))["faults"]["throttle"] == 1

    async def test_dropped_connection_is_retry_and_the_retry_is_deduplicated(
        self, sim: Sim, client: HttpSimulatorProvider
    ) -> None:
        await sim.faults(dropRate=1)
        results = await client.submit(batch(3))
        assert {r.outcome for r in results} == {Outcome.RETRY}
        assert {r.error_code for r in results} == {"SIM_CONNECTION"}
        await sim.faults(dropRate=0)
        results = await client.submit(batch(3))
        assert {r.outcome for r in results} == {Outcome.ACCEPTED}
        stats = await sim.get("/stats")
        # The lost answer's messages were taken: the retry is a duplicate, not a second send.
        assert (stats["accepted"], stats["duplicates"], stats["faults"]["drop"]) == (3, 3, 1)

    async def test_timeout_is_retry(self, sim: Sim, client: HttpSimulatorProvider) -> None:
        await sim.faults(timeoutRate=1)
        results = await client.submit(batch(2))
        assert {(r.outcome, r.error_code) for r in results} == {(Outcome.RETRY, "SIM_TIMEOUT")}
        await sim.faults(timeoutRate=0)
        assert {r.outcome for r in await client.submit(batch(2))} == {Outcome.ACCEPTED}
        assert (await sim.get("/stats"))["duplicates"] == 2

    async def test_unreachable_simulator_is_retry(self) -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        provider = HttpSimulatorProvider("sms", f"http://127.0.0.1:{port}", timeout=1)
        await provider.start(None)  # type: ignore[arg-type]
        try:
            results = await provider.submit(batch(2))
            assert {r.outcome for r in results} == {Outcome.RETRY}
        finally:
            await provider.close()

    async def test_fail_rate_reports_accepted_messages_failed(
        self, sim: Sim, client: HttpSimulatorProvider
    ) -> None:
        await sim.faults(failRate=1)
        results = await client.submit(batch(3))
        assert {r.outcome for r in results} == {Outcome.ACCEPTED}  # failed later, by receipt
        async with asyncio.timeout(10):
            while (await sim.get("/stats"))["receipts"]["failed"] < 3:
                await asyncio.sleep(0.02)
        assert (await sim.get("/stats"))["receipts"]["delivered"] == 0

    async def test_bad_fault_values_are_400(self, sim: Sim) -> None:
        for body in ({"errorRate": 2}, {"nope": 1}, {"dropRate": "x"}, [1]):
            status, _ = await sim.post("/faults", body)
            assert status == 400, body
        assert (await sim.get("/faults"))["errorRate"] == 0


async def serve_clarion(settings: Settings, db: Database) -> tuple[uvicorn.Server, str]:
    """Clarion's API on a real socket, in this event loop."""
    app = create_app(settings, db=db)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    server_task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    server.task = server_task  # type: ignore[attr-defined]
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def stop_clarion(server: uvicorn.Server) -> None:
    server.should_exit = True
    await server.task  # type: ignore[attr-defined]


class TestReceiptsToClarion:
    """The simulator POSTs signed receipt batches to a real Clarion over HTTP."""

    async def test_receipts_reach_clarion_signed_and_counters_partition(
        self, db: Database, settings: Settings
    ) -> None:
        secret = "s3cret"
        server, base = await serve_clarion(
            settings.model_copy(update={"simulator_secret": secret}), db
        )
        try:
            async for sim in running_simulator(
                faults=Faults(receipt_delay=0.05),
                receipt_url=f"{base}/webhooks/simulator",
                secret=secret,
            ):
                s = await seed_campaign(db, count=4, status="sending", channel="whatsapp",
                                        record_provider_ids=False)  # fmt: skip
                provider = HttpSimulatorProvider("whatsapp", sim.url)
                await provider.start(None)  # type: ignore[arg-type]
                phones = ["+33612345678", "+33612340001", "+33612340000", "+33612345677"]
                results = await provider.submit(
                    [msg(i, p, "whatsapp") for i, p in zip(s.message_ids, phones, strict=True)]
                )
                await provider.close()
                async with db.transaction() as session:
                    deltas = {"sending": -4, "sent": 0, "failed": 0}
                    for r in results:
                        ok = r.outcome is Outcome.ACCEPTED
                        await session.execute(
                            update(Message)
                            .where(Message.id == r.message_id)
                            .values(
                                status="sent" if ok else "failed",
                                provider_message_id=r.provider_message_id,
                            )
                        )
                        deltas["sent" if ok else "failed"] += 1
                    await move(session, s.campaign_id, deltas)
                    await apply_parked(
                        session,
                        "simulator",
                        [r.provider_message_id for r in results if r.provider_message_id],
                    )
                async with asyncio.timeout(15):  # delivered, then read, for 2 numbers
                    while (await sim.get("/stats"))["receipts"]["read"] < 2:
                        await asyncio.sleep(0.05)
                    while (await sim.get("/stats"))["receiptsPending"]:
                        await asyncio.sleep(0.05)
                stats = await sim.get("/stats")
                assert stats["receipts"] == {"delivered": 2, "read": 2, "failed": 1}
                assert stats["receiptPostErrors"] == 0
                statuses = await message_statuses(db, s.campaign_id)
                assert [statuses[i] for i in s.message_ids] == ["read", "failed", "failed", "read"]
                await assert_partition(db, s.campaign_id)
        finally:
            await stop_clarion(server)

    async def test_a_wrong_secret_is_refused_and_retried(
        self, db: Database, settings: Settings
    ) -> None:
        server, base = await serve_clarion(
            settings.model_copy(update={"simulator_secret": "right"}), db
        )
        try:
            async for sim in running_simulator(
                faults=Faults(receipt_delay=0.0),
                receipt_url=f"{base}/webhooks/simulator",
                secret="wrong",
            ):
                await sim.post("/messages", [{"id": "1", "to": "+33612345678"}])
                async with asyncio.timeout(10):
                    while not (await sim.get("/stats"))["receiptPostErrors"]:
                        await asyncio.sleep(0.05)
                stats = await sim.get("/stats")
                assert stats["receiptsPosted"] == 0 and stats["receiptsPending"] == 1
        finally:
            await stop_clarion(server)

    async def test_inbound_reaches_the_inbound_hook(
        self, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from clarion.delivery import inbound

        seen: list[Any] = []

        async def hook(session: Any, items: Any, *args: Any) -> None:
            seen.extend(items)

        monkeypatch.setattr(inbound, "handle_inbound", hook)
        server, base = await serve_clarion(settings, db)
        try:
            async for sim in running_simulator(receipt_url=f"{base}/webhooks/simulator"):
                status, _ = await sim.post(
                    "/inbound", {"from": "+33612345678", "channel": "sms", "text": "STOP"}
                )
                assert status == 202
                async with asyncio.timeout(10):
                    while not (await sim.get("/stats"))["inboundPosted"]:
                        await asyncio.sleep(0.02)
                assert [(m.from_phone, m.channel, m.text) for m in seen] == [
                    ("+33612345678", "sms", "STOP")
                ]
        finally:
            await stop_clarion(server)


class TestCommand:
    def test_clarion_simulator_serves_and_stops(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clarion",
                "simulator",
                "--port",
                str(port),
                "--error-rate",
                "1",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert f"127.0.0.1:{port}" in line

            async def check() -> dict[str, Any]:
                async with aiohttp.ClientSession() as session:
                    async with session.post(f"http://127.0.0.1:{port}/messages", json=[]) as r:
                        assert r.status == 500
                    async with session.get(f"http://127.0.0.1:{port}/faults") as r:
                        return await r.json()

            assert asyncio.run(check())["errorRate"] == 1
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0
            if process.stdout is not None:
                process.stdout.close()
