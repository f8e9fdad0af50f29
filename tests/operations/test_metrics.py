"""GET /metrics and the workers' metrics port: who may read them, and that the series say
what happened (values, not just names)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import select, update

from clarion import metrics
from clarion.db.base import utcnow
from clarion.delivery.service import ingest_receipts
from clarion.messages.models import Message
from clarion.operations.server import serve_metrics
from clarion.providers.base import Receipt
from clarion.sending import scheduler
from tests.operations.helpers import samples, value
from tests.sending.conftest import campaign, seed_campaign, seed_contacts, set_rates

CLARION = str(Path(sys.executable).with_name("clarion"))
TOKEN = "metrics-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENGINE = {"sender_enabled": True, "scheduler_interval": 0.05, "simulator_receipt_delay": 0.05}


async def _scrape(api) -> str:
    r = await api.client.get("/metrics", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def _wait(db, cid: int, done) -> None:
    for _ in range(600):
        c = await campaign(db, cid)
        if done(c):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"campaign {cid} did not get there: {c.status}")


class TestAccess:
    async def test_absent_while_the_token_is_unset(self, make_api):
        api = await make_api()
        r = await api.client.get("/metrics", headers=AUTH)
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"

    async def test_missing_or_wrong_token_is_401(self, make_api):
        api = await make_api(metrics_token=TOKEN)
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            r = await api.client.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"].startswith("Bearer")

    async def test_the_token_opens_it_with_every_series(self, make_api):
        api = await make_api(metrics_token=TOKEN)
        text = await _scrape(api)
        names = {name for name, _labels in samples(text)}
        for series in (
            "clarion_queue_depth",
            "clarion_campaigns",
            "clarion_credits_reserved",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        ):
            assert series in names, series
        for family in (
            "clarion_messages_total",
            "clarion_provider_request_seconds",
            "clarion_leases_expired_total",
            "clarion_receipts_total",
            "clarion_hook_deliveries_total",
        ):
            assert f"# TYPE {family.removesuffix('_total')}" in text, family
        assert value(text, "clarion_campaigns", status="sending") == 0


class TestSeriesMove:
    async def test_a_campaign_through_the_simulator(self, db, make_api):
        api = await make_api(metrics_token=TOKEN, **ENGINE)
        before = await _scrape(api)
        account = await api.new_account("acme", credits=100)
        await set_rates(db, [("sms", "*", "", 700)])
        nums = [f"+336123{i:05d}" for i in range(3, 43)] + ["+33612340000", "+33612340001"]
        lst = await seed_contacts(db, account.id, nums)
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=42 * 700)
        await _wait(db, cid, lambda c: c.status == "completed" and c.delivered + c.failed == 42)
        after = await _scrape(api)

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        sms = {"channel": "sms", "provider": "simulator"}
        # 41 accepted (one of them undeliverable later), 1 refused at submit
        assert delta("clarion_messages_total", status="sent", **sms) == 41
        assert delta("clarion_messages_total", status="failed", **sms) == 1
        # every accepted message got its final receipt, applied once: at once, or parked
        # (it beat the recording of its submit) and applied when the message was recorded
        receipts = {
            result: delta("clarion_receipts_total", provider="simulator", result=result)
            for result in ("applied", "unchanged", "parked", "unparked")
        }
        assert receipts["applied"] + receipts["unparked"] == 41, receipts
        assert receipts["parked"] == receipts["unparked"], receipts
        calls = delta("clarion_provider_request_seconds_count", provider="simulator", outcome="ok")
        assert calls >= 1
        assert delta("clarion_provider_request_seconds_sum", provider="simulator", outcome="ok")
        assert value(after, "clarion_campaigns", status="completed") == 1
        assert value(after, "clarion_credits_reserved") == 0
        assert value(after, "clarion_queue_depth", channel="sms") == 0

    async def test_queue_depth_and_reserved_credits(self, db, make_api):
        api = await make_api(metrics_token=TOKEN)  # no sender: the messages stay queued
        account = await api.new_account("acme", credits=10)
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, [f"+336123{i:05d}" for i in range(7)])
        cid = await seed_campaign(db, account.id, [lst], reserve=7 * 700)
        await scheduler.tick(db, 1000)  # materialize: 7 queued, due now
        text = await _scrape(api)
        assert value(text, "clarion_queue_depth", channel="sms") == 7
        assert value(text, "clarion_queue_depth", channel="whatsapp") == 0
        assert value(text, "clarion_credits_reserved") == 0.49
        assert value(text, "clarion_campaigns", status="sending") == 1
        async with db.transaction() as s:  # two wait for a retry: queued, not due
            ids = (await s.execute(select(Message.id).where(Message.campaign_id == cid))).scalars()
            later = list(ids)[:2]
            await s.execute(
                update(Message)
                .where(Message.id.in_(later))
                .values(next_attempt_at=utcnow() + timedelta(hours=1))
            )
        assert value(await _scrape(api), "clarion_queue_depth", channel="sms") == 5
        capped = await make_api(metrics_token=TOKEN, metrics_queue_cap=3)
        assert value(await _scrape(capped), "clarion_queue_depth", channel="sms") == 3

    async def test_expired_leases_are_counted(self, db, make_api):
        api = await make_api(metrics_token=TOKEN)
        account = await api.new_account("acme", credits=10)
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, [f"+336123{i:05d}" for i in range(3)])
        cid = await seed_campaign(db, account.id, [lst], reserve=3 * 700)
        await scheduler.tick(db, 1000)
        before = value(await _scrape(api), "clarion_leases_expired_total")
        async with db.transaction() as s:  # a worker claimed two and died
            await s.execute(
                update(Message)
                .where(Message.campaign_id == cid, Message.phone != "+33612300000")
                .values(status="sending", lease_owner="dead", lease_until=utcnow() - timedelta(1))
            )
        assert await scheduler.sweep_leases(db) == 2
        assert value(await _scrape(api), "clarion_leases_expired_total") - before == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestWorkerPort:
    async def test_serves_with_the_token_only(self, settings, db):
        port = _free_port()
        configured = settings.model_copy(update={"metrics_token": TOKEN})
        runner = await serve_metrics(configured, db, port, host="127.0.0.1")
        unset = await serve_metrics(settings, db, _free_port(), host="127.0.0.1")
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            async with aiohttp.ClientSession() as http:
                async with http.get(url) as r:
                    assert r.status == 401
                async with http.get(url, headers={"Authorization": "Bearer nope"}) as r:
                    assert r.status == 401
                async with http.get(url, headers=AUTH) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("text/plain")
                    text = await r.text()
                unset_url = f"http://127.0.0.1:{unset.addresses[0][1]}/metrics"
                async with http.get(unset_url, headers=AUTH) as r:
                    assert r.status == 404
        finally:
            await runner.cleanup()
            await unset.cleanup()
        names = {name for name, _ in samples(text)}
        assert {"clarion_queue_depth", "clarion_campaigns", "process_cpu_seconds_total"} <= names

    async def test_clarion_worker_serves_its_port(self, database_url, db, tmp_path):
        port = _free_port()
        env = {
            **os.environ,
            "CLARION_DATABASE_URL": database_url,
            "CLARION_METRICS_TOKEN": TOKEN,
            "CLARION_LOG_FORMAT": "json",
        }
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                CLARION,
                "worker",
                "--metrics-port",
                str(port),
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=out,
            )
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            deadline = time.monotonic() + 30
            async with aiohttp.ClientSession() as http:
                while True:
                    assert proc.returncode is None, log.read_text()
                    try:
                        async with http.get(url, headers=AUTH) as r:
                            assert r.status == 200
                            text = await r.text()
                            break
                    except aiohttp.ClientConnectionError:
                        assert time.monotonic() < deadline, log.read_text()
                        await asyncio.sleep(0.2)
                async with http.get(url) as r:
                    assert r.status == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)
        assert value(text, "clarion_campaigns", status="sending") == 0
        assert "process_cpu_seconds_total" in text
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        assert any(x["logger"] == "clarion.sending.engine" for x in lines), log.read_text()


class TestDocumented:
    async def test_openapi_names_the_endpoint_and_the_request_id(self, api):
        spec = (await api.client.get("/openapi.json")).json()
        op = spec["paths"]["/metrics"]["get"]
        assert list(op["responses"]["200"]["content"]) == ["text/plain"]
        assert op["security"] == [{"metricsToken": []}]
        assert {"401", "404"} <= set(op["responses"])
        assert spec["components"]["securitySchemes"]["metricsToken"]["scheme"] == "bearer"
        header = spec["components"]["headers"]["RequestId"]
        assert header["schema"]["pattern"]
        assert spec["components"]["parameters"]["RequestId"]["name"] == "X-Request-ID"
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                refs = [p.get("$ref") for p in operation["parameters"]]
                assert "#/components/parameters/RequestId" in refs, (method, path)
                for response in operation["responses"].values():
                    assert "X-Request-ID" in response["headers"], (method, path)


class TestCountedOnCommit:
    async def test_receipts_count_only_once_their_transaction_commits(self, db):
        def parked() -> float:
            return value(
                metrics_text(), "clarion_receipts_total", provider="nobody", result="parked"
            )

        before = parked()
        receipts = [Receipt("nobody", "x-1", "delivered"), Receipt("nobody", "x-2", "failed")]
        async with db.session() as session:
            await ingest_receipts(session, receipts)
            await session.rollback()
        assert parked() == before  # rolled back: nothing happened, nothing counted
        async with db.transaction() as session:
            await ingest_receipts(session, receipts)
            assert parked() == before  # not committed yet
        assert parked() == before + 2


def metrics_text() -> str:
    return metrics.render(None).decode()
