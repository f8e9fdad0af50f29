"""The standalone HTTP simulator (`clarion simulator`): a provider peer for tests and benches.

Endpoints (JSON):

- `POST /messages`: one message `{"id", "channel", "to", "from"?, "text"?, ...}` or a batch
  (a JSON array of them, the fast path). A batch answers 200
  `{"results": [{"id", "status": "accepted"|"refused"|"no_capability", "providerMessageId",
  "errorCode", "errorMessage"}]}`; a single message answers 202 when accepted and 422 when
  refused, with the same item as body. Submits are deduplicated by `id`: a second submit
  answers the same `providerMessageId` (`sim-<id>`), schedules no new receipt and is counted
  in `duplicates`. Magic numbers as the in-process simulator (`simulator.py`).
- `POST /capabilities` `{"phones": [...]}` -> `{"capabilities": {phone: bool}}` (RCS).
- `POST /inbound` `{"from", "channel", "text"}`: pushes an inbound message to Clarion.
- `GET /stats`: unique accepted ids, duplicates, refusals, receipts by status, faults served.
  `GET /accepted`: the accepted ids. `POST /reset`: forget all of it (faults stay).
- `GET /faults`, `POST /faults` `{"errorRate", "throttleRate", "dropRate", "timeoutRate",
  "failRate", "latencyMs", "receiptDelay"}` (any subset): change behaviour at run time.

Faults are drawn per request: `errorRate` answers 500 and `throttleRate` 429 (Retry-After: 1)
without processing; `dropRate` processes the batch then closes the connection without an
answer, and `timeoutRate` processes it then hangs for `hang_seconds` (past the client's
timeout): the answer is lost but the messages were taken, as with a real provider, so the
client's retry shows up in `duplicates`. `failRate` is the share of accepted messages later
reported `failed` (`SIM_FAILED`).

Receipts go in batches (up to 1,000 per POST) to `--receipt-url`, or else to the
`X-Receipt-Url` header of the submit, as `{"receipts": [{"providerMessageId", "status",
"errorCode", "errorMessage", "timestamp"}], "inbound": [...]}`, signed with
`X-Simulator-Signature: sha256=<hex HMAC-SHA256 of the body>` when a secret is set. A batch
Clarion does not take (non-2xx or unreachable) is retried a second later.
"""

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import signal
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web

from clarion.providers import simulator as sim

log = logging.getLogger(__name__)

RECEIPT_BATCH = 1000
RECEIPT_CONCURRENCY = 4
MAX_PENDING_RECEIPTS = 2_000_000


@dataclass
class Faults:
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    drop_rate: float = 0.0
    timeout_rate: float = 0.0
    fail_rate: float = 0.0
    latency_ms: float = 0.0
    receipt_delay: float = 1.0

    _CAMEL = {
        "errorRate": "error_rate",
        "throttleRate": "throttle_rate",
        "dropRate": "drop_rate",
        "timeoutRate": "timeout_rate",
        "failRate": "fail_rate",
        "latencyMs": "latency_ms",
        "receiptDelay": "receipt_delay",
    }

    def update(self, body: Any) -> None:
        """Apply a partial camelCase update; raises ValueError on a bad field or value."""
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        changes = {}
        for key, value in body.items():
            name = self._CAMEL.get(key)
            if name is None:
                raise ValueError(f"unknown field {key!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
            if name.endswith("_rate") and value > 1:
                raise ValueError(f"{key} must be between 0 and 1")
            changes[name] = float(value)
        for name, value in changes.items():
            setattr(self, name, value)

    def as_json(self) -> dict[str, float]:
        values = asdict(self)
        return {camel: values[name] for camel, name in self._CAMEL.items()}


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    receipt_url: str | None = None
    secret: str | None = None
    hang_seconds: float = 30.0
    faults: Faults = field(default_factory=Faults)


@dataclass(slots=True)
class _Due:
    at: float
    url: str | None
    item: dict[str, Any]
    then: str | None = None  # the status to report one more delay later (read)


class AcceptedIds:
    """Client ids taken: numeric ids (ours) in a compact bitmap, any others in a set."""

    def __init__(self) -> None:
        self.numeric = sim.IdSet()
        self.other: set[str] = set()

    def add(self, client_id: str) -> bool:
        if client_id.isdigit() and client_id.isascii() and len(client_id) < 19:
            return self.numeric.add(int(client_id))
        if client_id in self.other:
            return False
        self.other.add(client_id)
        return True

    def __len__(self) -> int:
        return len(self.numeric) + len(self.other)

    def ids(self) -> list[str]:
        return [str(i) for i in self.numeric] + sorted(self.other)


class SimulatorState:
    """Everything the simulator remembers; `POST /reset` starts it afresh."""

    def __init__(self) -> None:
        self.accepted = AcceptedIds()
        self.counts: Counter[str] = Counter()
        self.pending: deque[_Due] = deque()
        self.retry: deque[_Due] = deque()


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Simulator:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.faults = config.faults
        self.state = SimulatorState()
        self._client: aiohttp.ClientSession | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    # --- submit ---------------------------------------------------------------------------

    def _process(self, item: Any, callback: str | None) -> dict[str, Any]:
        counts = self.state.counts
        counts["messages"] += 1
        if not isinstance(item, dict):
            counts["invalid"] += 1
            return {"id": None, "status": "refused", "errorCode": "SIM_INVALID",
                    "errorMessage": "a message must be a JSON object"}  # fmt: skip
        client_id, to, channel = item.get("id"), item.get("to"), item.get("channel", "sms")
        if not isinstance(client_id, str | int) or not isinstance(to, str) or not to:
            counts["invalid"] += 1
            return {"id": client_id, "status": "refused", "errorCode": "SIM_INVALID",
                    "errorMessage": "`id` and `to` are required"}  # fmt: skip
        client_id = str(client_id)
        pmid = sim.provider_message_id(client_id)
        refusal = sim.submit_refusal(channel, to)
        if refusal is not None:
            outcome, code, text = refusal
            counts[outcome.value] += 1
            return {"id": client_id, "status": outcome.value, "providerMessageId": None,
                    "errorCode": code, "errorMessage": text}  # fmt: skip
        if not self.state.accepted.add(client_id):
            counts["duplicates"] += 1
            return {"id": client_id, "status": "accepted", "providerMessageId": pmid}
        counts["accepted"] += 1
        self._schedule(pmid, channel, to, callback)
        return {"id": client_id, "status": "accepted", "providerMessageId": pmid}

    def _schedule(self, pmid: str, channel: str, to: str, url: str | None) -> None:
        statuses = sim.receipt_statuses(channel, to)
        fail = self.faults.fail_rate
        if statuses[0] == "delivered" and fail and random.random() < fail:
            statuses = ["failed"]
        first = statuses[0]
        item: dict[str, Any] = {"providerMessageId": pmid, "status": first}
        if first == "failed":
            item["errorCode"] = (
                sim.UNDELIVERABLE_CODE if to.endswith(sim.UNDELIVERABLE_SUFFIX) else "SIM_FAILED"
            )
            item["errorMessage"] = "The simulator reports this message undeliverable."
        then = statuses[1] if len(statuses) > 1 else None
        if len(self.state.pending) < MAX_PENDING_RECEIPTS:
            at = time.monotonic() + self.faults.receipt_delay
            self.state.pending.append(_Due(at, url, item, then))
        else:
            self.state.counts["receiptsDropped"] += 1

    async def messages(self, request: web.Request) -> web.StreamResponse:
        counts = self.state.counts
        counts["requests"] += 1
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        fault = self._draw_fault()
        if fault == "error":
            counts["faults.error"] += 1
            return web.json_response({"error": "simulated server error"}, status=500)
        if fault == "throttle":
            counts["faults.throttle"] += 1
            return web.json_response(
                {"error": "simulated throttle"}, status=429, headers={"Retry-After": "1"}
            )
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        callback = self.config.receipt_url or request.headers.get("X-Receipt-Url")
        if isinstance(body, list):
            answer: Any = {"results": [self._process(item, callback) for item in body]}
            status = 200
        else:
            answer = self._process(body, callback)
            status = 202 if answer["status"] == "accepted" else 422
        self._wake.set()
        if fault == "drop":
            counts["faults.drop"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("simulated dropped connection")
        if fault == "timeout":
            counts["faults.timeout"] += 1
            await asyncio.sleep(self.config.hang_seconds)
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("simulated timeout")
        return web.Response(
            body=orjson.dumps(answer), status=status, content_type="application/json"
        )

    def _draw_fault(self) -> str | None:
        f = self.faults
        if not (f.error_rate or f.throttle_rate or f.drop_rate or f.timeout_rate):
            return None
        x = random.random()
        for name, rate in (
            ("error", f.error_rate),
            ("throttle", f.throttle_rate),
            ("drop", f.drop_rate),
            ("timeout", f.timeout_rate),
        ):
            if x < rate:
                return name
            x -= rate
        return None

    # --- other endpoints ------------------------------------------------------------------

    async def capabilities(self, request: web.Request) -> web.Response:
        try:
            phones = orjson.loads(await request.read())["phones"]
            answer = {str(p): sim.can_take_rcs(str(p)) for p in phones}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.json_response({"error": 'expected {"phones": [...]}'}, status=400)
        return web.json_response({"capabilities": answer})

    async def inbound(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            item = {"from": str(body["from"]), "channel": str(body.get("channel", "sms")),
                    "text": str(body["text"]), "timestamp": _now_iso(),
                    "id": uuid.uuid4().hex}  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.json_response({"error": 'expected {"from", "text"}'}, status=400)
        url = self.config.receipt_url or request.headers.get("X-Receipt-Url")
        self.state.pending.appendleft(_Due(0.0, url, {"inbound": item}))
        self._wake.set()
        return web.json_response({"queued": True}, status=202)

    async def stats(self, request: web.Request) -> web.Response:
        c = self.state.counts
        return web.json_response(
            {
                "accepted": len(self.state.accepted),
                "duplicates": c["duplicates"],
                "messages": c["messages"],
                "requests": c["requests"],
                "refused": c["refused"],
                "noCapability": c["no_capability"],
                "invalid": c["invalid"],
                "receipts": {s: c[f"receipts.{s}"] for s in ("delivered", "read", "failed")},
                "receiptsPending": len(self.state.pending) + len(self.state.retry),
                "receiptsPosted": c["receiptsPosted"],
                "receiptPostErrors": c["receiptPostErrors"],
                "receiptsDropped": c["receiptsDropped"],
                "inboundPosted": c["inboundPosted"],
                "faults": {k: c[f"faults.{k}"] for k in ("error", "throttle", "drop", "timeout")},
            }
        )

    async def accepted_ids(self, request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps({"ids": self.state.accepted.ids()}), content_type="application/json"
        )

    async def reset(self, request: web.Request) -> web.Response:
        self.state = SimulatorState()
        return web.json_response({"reset": True})

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.as_json())

    async def set_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults.update(orjson.loads(await request.read()))
        except (orjson.JSONDecodeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.faults.as_json())

    # --- receipts -------------------------------------------------------------------------

    def _take_due(self, now: float) -> list[_Due]:
        taken: list[_Due] = []
        for queue in (self.state.retry, self.state.pending):
            while queue and queue[0].at <= now and len(taken) < RECEIPT_BATCH * 8:
                taken.append(queue.popleft())
        return taken

    async def _push_loop(self) -> None:
        slots = asyncio.Semaphore(RECEIPT_CONCURRENCY)
        inflight = self._inflight
        while True:
            now = time.monotonic()
            due = self._take_due(now)
            if not due:
                self._wake.clear()
                nxt = [q[0].at for q in (self.state.retry, self.state.pending) if q]
                timeout = min(max(min(nxt) - now, 0.005), 0.5) if nxt else 0.5
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            by_url: dict[str | None, list[_Due]] = {}
            for d in due:
                by_url.setdefault(d.url, []).append(d)
            for url, items in by_url.items():
                for start in range(0, len(items), RECEIPT_BATCH):
                    await slots.acquire()
                    task = asyncio.create_task(
                        self._post(url, items[start : start + RECEIPT_BATCH])
                    )
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                    task.add_done_callback(lambda _: slots.release())

    async def _post(self, url: str | None, items: list[_Due]) -> None:
        state = self.state
        receipts = []
        inbound = []
        stamp = _now_iso()
        for d in items:
            if "inbound" in d.item:
                inbound.append(d.item["inbound"])
            else:
                d.item["timestamp"] = stamp
                receipts.append(d.item)
        ok = url is None  # nowhere to send: count them as reported
        if url is not None:
            body = orjson.dumps({"receipts": receipts, "inbound": inbound})
            headers = {"Content-Type": "application/json"}
            if self.config.secret:
                digest = hmac.new(self.config.secret.encode(), body, hashlib.sha256).hexdigest()
                headers["X-Simulator-Signature"] = "sha256=" + digest
            try:
                assert self._client is not None
                async with self._client.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = 200 <= response.status < 300
                    if not ok:
                        log.warning("receipt webhook answered %s", response.status)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.warning("receipt webhook failed: %s", exc)
        if state is not self.state:
            return  # reset meanwhile
        counts = state.counts
        if not ok:
            counts["receiptPostErrors"] += 1
            retry_at = time.monotonic() + 1.0
            for d in items:
                d.at = retry_at
                state.retry.append(d)
            return
        counts["receiptsPosted"] += len(receipts)
        counts["inboundPosted"] += len(inbound)
        later = time.monotonic() + self.faults.receipt_delay
        for d in items:
            if "inbound" in d.item:
                continue
            counts[f"receipts.{d.item['status']}"] += 1
            if d.then is not None:
                state.pending.append(
                    _Due(
                        later,
                        d.url,
                        {"providerMessageId": d.item["providerMessageId"], "status": d.then},
                    )
                )
        if any(d.then for d in items):
            self._wake.set()

    # --- lifecycle ------------------------------------------------------------------------

    async def on_startup(self, app: web.Application) -> None:
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=RECEIPT_CONCURRENCY * 2),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self._pusher = asyncio.create_task(self._push_loop())

    async def on_cleanup(self, app: web.Application) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._client is not None:
            await self._client.close()


SIMULATOR = web.AppKey("simulator", Simulator)


def create_app(config: ServerConfig) -> web.Application:
    simulator = Simulator(config)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SIMULATOR] = simulator
    app.router.add_post("/messages", simulator.messages)
    app.router.add_post("/capabilities", simulator.capabilities)
    app.router.add_post("/inbound", simulator.inbound)
    app.router.add_get("/stats", simulator.stats)
    app.router.add_get("/accepted", simulator.accepted_ids)
    app.router.add_post("/reset", simulator.reset)
    app.router.add_get("/faults", simulator.get_faults)
    app.router.add_post("/faults", simulator.set_faults)
    app.on_startup.append(simulator.on_startup)
    app.on_cleanup.append(simulator.on_cleanup)
    return app


async def start(config: ServerConfig) -> web.AppRunner:
    """Start the simulator on `config.host:config.port` (port 0: any free port; read it back
    with `bound_port(runner)`). Stop it with `await runner.cleanup()`."""
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=1024)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the simulator is not listening")


async def serve(config: ServerConfig) -> None:
    """Run until SIGINT/SIGTERM."""
    runner = await start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"simulator listening on http://{config.host}:{bound_port(runner)}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(config: ServerConfig) -> None:
    """Run the server on uvloop (it ships with uvicorn[standard])."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(config))
