"""Provider adapters' throughput against their peers over real sockets.

- SMPP: submit_sm/s over one transceiver bind (window 100) against the in-repo SMSC running
  in its own process, and the SMSC's own ceiling measured in the same run by a raw PDU
  blaster (pre-encoded submit_sm, same window, receipts answered at header level), so the
  ratio says how much of the SMSC's capacity our client uses.
- WhatsApp Cloud API and Twilio adapters: messages/s through `provider.submit` against fake
  HTTP servers running in another process (canned answers).

    .venv/bin/python bench/providers.py [--smpp-messages 20000] [--http-messages 20000]
        [--window 100] [--concurrency 64] [--quick]

Targets (issue 5): SMPP >= 1,000 submit_sm/s; WhatsApp and Twilio >= 3,000 messages/s each.
"""

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import struct
import time
from collections.abc import Sequence
from typing import Any

from clarion.config import Settings
from clarion.providers.base import InboundMessage, OutboundMessage, Receipt, TemplateRef
from clarion.providers.smpp import pdu as p

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


def _run(coro: Any) -> Any:
    if uvloop is not None:
        return uvloop.run(coro)
    return asyncio.run(coro)


# -- peers, each in its own process ----------------------------------------------------------
def smsc_process(port_out: Any, stop: Any) -> None:
    from clarion.providers.smpp.smsc import Smsc

    async def main() -> None:
        smsc = Smsc(credentials={"bench": "bench"}, keep=False)
        port_out.put(await smsc.start())
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await smsc.stop()

    _run(main())


def http_process(port_out: Any, stop: Any) -> None:
    from aiohttp import web

    wamid = (
        b'{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],'
        b'"messages":[{"id":"wamid.HBgLMzM2MTIzNDU2NzgVAgARGBI"}]}'
    )
    twilio = b'{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}'

    async def wa(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=wamid, content_type="application/json")

    async def tw(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=twilio, status=201, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v21.0/{phone}/messages", wa)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", tw)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_out.put(runner.addresses[0][1])
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await runner.cleanup()

    _run(main())


class Peer:
    def __init__(self, target: Any) -> None:
        ctx = mp.get_context("spawn")
        self.ports = ctx.Queue()
        self.stop = ctx.Event()
        self.process = ctx.Process(target=target, args=(self.ports, self.stop), daemon=True)

    def __enter__(self) -> int:
        self.process.start()
        return int(self.ports.get(timeout=30))

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# -- SMPP ------------------------------------------------------------------------------------
async def blast(port: int, count: int, window: int) -> float:
    """The SMSC's ceiling: pre-encoded submit_sm, `window` outstanding, minimal client work."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(p.BindTransceiver(sequence=1, system_id="bench", password="bench").encode())
    frame = await p.read_frame(reader)
    assert p.peek_header(frame)[2] == 0, "bind refused"
    template = p.SubmitSm(
        source_addr="Bench",
        destination_addr="33612345678",
        registered_delivery=1,
        short_message=b"Hello from the bench",
    )
    body = template.encode()[16:]
    length = 16 + len(body)
    free = asyncio.Semaphore(window)
    done = asyncio.Event()
    answered = 0

    async def read() -> None:
        nonlocal answered
        while answered < count:
            head = await reader.readexactly(16)
            length_, command, _, seq = struct.unpack(">IIII", head)
            if length_ > 16:
                await reader.readexactly(length_ - 16)
            if command == p.Cmd.SUBMIT_SM_RESP:
                answered += 1
                free.release()
            elif command == p.Cmd.DELIVER_SM:
                writer.write(struct.pack(">IIII", 17, p.Cmd.DELIVER_SM_RESP, 0, seq) + b"\0")
        done.set()

    reader_task = asyncio.create_task(read())
    start = time.perf_counter()
    for seq in range(2, count + 2):
        await free.acquire()
        writer.write(struct.pack(">IIII", length, p.Cmd.SUBMIT_SM, 0, seq) + body)
    await done.wait()
    elapsed = time.perf_counter() - start
    reader_task.cancel()
    writer.close()
    return count / elapsed


class CountingSink:
    def __init__(self) -> None:
        self.receipts_ = 0

    async def receipts(self, items: Sequence[Receipt]) -> None:
        self.receipts_ += len(items)

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        pass


async def smpp_client(port: int, count: int, window: int) -> tuple[float, int]:
    from clarion.providers.smpp.provider import SmppProvider

    settings = Settings(
        smpp_host="127.0.0.1",
        smpp_port=port,
        smpp_system_id="bench",
        smpp_password="bench",
        smpp_source_addr="Bench",
        smpp_window=window,
        smpp_throughput=1e9,
    )
    provider = SmppProvider(settings)
    sink = CountingSink()
    await provider.start(sink)
    try:
        batch = 1000
        start = time.perf_counter()
        accepted = 0
        for first in range(0, count, batch):
            messages = [
                OutboundMessage(
                    id=i, channel="sms", to="+33612345678", sender=None, text="Hello from the bench"
                )
                for i in range(first, min(count, first + batch))
            ]
            results = await provider.submit(messages)
            accepted += sum(r.outcome == "accepted" for r in results)
        elapsed = time.perf_counter() - start
    finally:
        await provider.close()
    return count / elapsed, accepted


# -- HTTP adapters ---------------------------------------------------------------------------
async def http_adapter(kind: str, port: int, count: int, concurrency: int) -> tuple[float, int]:
    from clarion.providers.twilio import TwilioProvider
    from clarion.providers.whatsapp_cloud import WhatsAppCloudProvider

    base = f"http://127.0.0.1:{port}"
    provider: Any
    if kind == "whatsapp":
        provider = WhatsAppCloudProvider(
            Settings(
                whatsapp_api_url=f"{base}/v21.0",
                whatsapp_token="t",
                whatsapp_phone_number_id="1055",
            ),
            concurrency=concurrency,
        )
    else:
        provider = TwilioProvider(
            Settings(
                twilio_api_url=base,
                twilio_account_sid="AC1",
                twilio_auth_token="t",
                twilio_from="+15005550006",
            ),
            concurrency=concurrency,
        )
    await provider.start(CountingSink())
    template = TemplateRef("black_friday", "en_US", "marketing", ["Ada", "BF20"])
    try:
        # warm the pool (connections) before timing
        await provider.submit([OutboundMessage(-1, kind, "+33612345678", None, "hi", template)])
        batch = 1000
        accepted = 0
        start = time.perf_counter()
        for first in range(0, count, batch):
            messages = [
                OutboundMessage(
                    i,
                    "sms" if kind == "twilio" else "whatsapp",
                    "+33612345678",
                    None,
                    "Hi Ada, 20% off today",
                    template if kind == "whatsapp" else None,
                )
                for i in range(first, min(count, first + batch))
            ]
            results = await provider.submit(messages)
            accepted += sum(r.outcome == "accepted" for r in results)
        elapsed = time.perf_counter() - start
    finally:
        await provider.close()
    return count / elapsed, accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smpp-messages", type=int, default=20_000)
    parser.add_argument("--http-messages", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=100, help="outstanding submit_sm")
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP requests in flight")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.smpp_messages = args.http_messages = 2_000
    print(
        f"load: {os.getloadavg()[0]:.2f} (1 min), cpus: {os.cpu_count()}, "
        f"event loop: {'uvloop' if uvloop else 'asyncio'}"
    )

    with Peer(smsc_process) as port:
        ceiling = _run(blast(port, args.smpp_messages, args.window))
        rate, accepted = _run(smpp_client(port, args.smpp_messages, args.window))
    print(f"SMPP  SMSC ceiling (raw blaster)      {ceiling:>10,.0f} submit_sm/s")
    print(
        f"SMPP  SmppProvider, window {args.window:<4}      {rate:>10,.0f} submit_sm/s  "
        f"({rate / ceiling:.0%} of the ceiling; {accepted}/{args.smpp_messages} accepted; "
        f"target >= 1,000/s: {'ok' if rate >= 1000 else 'MISSED'})"
    )

    with Peer(http_process) as port:
        for kind in ("whatsapp", "twilio"):
            rate, accepted = _run(http_adapter(kind, port, args.http_messages, args.concurrency))
            print(
                f"HTTP  {kind:<8} adapter, {args.concurrency} in flight  {rate:>10,.0f} msg/s  "
                f"({accepted}/{args.http_messages} accepted; target >= 3,000/s: "
                f"{'ok' if rate >= 3000 else 'MISSED'})"
            )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
