"""`clarion smsc` as a process: an ESME binds to it over TCP, MO messages on demand."""

import asyncio
import re
import sys
from collections.abc import AsyncIterator

import pytest

from clarion.config import Settings
from clarion.providers.base import OutboundMessage, Outcome
from clarion.providers.smpp.provider import SmppProvider
from tests.providers.conftest import RecordingSink


@pytest.fixture
async def smsc_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clarion",
        "smsc",
        "--port",
        "0",
        "--system-id",
        "esme",
        "--password",
        "pw",
        "--receipt-delay",
        "0",
        "--receipt-jitter",
        "0",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        yield process, int(match.group(1))
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


class TestSmscCommand:
    async def test_bind_submit_receipt_and_mo(
        self, smsc_process: tuple[asyncio.subprocess.Process, int]
    ) -> None:
        process, port = smsc_process
        sink = RecordingSink()
        provider = SmppProvider(
            Settings(
                smpp_host="127.0.0.1",
                smpp_port=port,
                smpp_system_id="esme",
                smpp_password="pw",
                smpp_source_addr="Clarion",
            )
        )
        await provider.start(sink)
        try:
            [result] = await provider.submit(
                [OutboundMessage(id=1, channel="sms", to="+33612345678", sender=None, text="hi")]
            )
            assert result.outcome == Outcome.ACCEPTED
            await sink.wait_for(receipts=1)
            assert sink.receipts_[0].provider_message_id == result.provider_message_id
            assert process.stdin is not None
            process.stdin.write(b"mo +33611111111 STOP\n")
            await process.stdin.drain()
            await sink.wait_for(inbound=1)
            assert sink.inbound_[0].from_phone == "+33611111111"
            assert sink.inbound_[0].text == "STOP"
        finally:
            await provider.close()
