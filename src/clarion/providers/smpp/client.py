"""SMPP 3.4 client (ESME side): one transceiver bind, kept alive and re-bound with backoff.

The bind is owned by a background task: connect, bind_transceiver, then read PDUs until the
connection drops, then wait (exponential backoff with jitter) and bind again. Submits wait
for the bind (a bounded time), take a slot in the window of outstanding submit_sm, respect
the throughput limit, and are answered from submit_sm_resp by sequence number. When the
connection drops, every outstanding submit fails with `ConnectionLost` (the provider answers
RETRY: the SMSC may or may not have taken it; that is the only possible duplicate).
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from clarion.providers.smpp import pdu as p

log = logging.getLogger("clarion.smpp")


class SmppError(Exception):
    pass


class ConnectionLost(SmppError):
    pass


class BindRefused(SmppError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotBound(SmppError):
    pass


DeliverHandler = Callable[[p.DeliverSm], None]
ResponseHandler = Callable[[p.Pdu, p.Pdu], None]  # (request, its response)


class SmppClient:
    """A transceiver bind. `on_deliver(pdu)` is called for every deliver_sm; the handler (or
    whoever it hands the PDU to) must answer it with `respond_deliver(pdu, status)` once it
    has been stored, so that an unstored receipt is redelivered by the SMSC.
    `on_response(request, response)` is called as each answer is read, before anything read
    after it is handled."""

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        window: int = 100,
        throughput: float | None = None,
        enquire_interval: float = 30.0,
        response_timeout: float = 10.0,
        enquire_timeout: float | None = None,
        bind_wait: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        on_deliver: DeliverHandler | None = None,
        on_response: ResponseHandler | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.system_id, self.password, self.system_type = system_id, password, system_type
        self.window = asyncio.Semaphore(window)
        self.throughput = throughput
        self.enquire_interval = enquire_interval
        self.response_timeout = response_timeout
        self.enquire_timeout = enquire_timeout or response_timeout
        self.bind_wait = bind_wait
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.on_deliver = on_deliver
        self.on_response = on_response
        self.bound = asyncio.Event()
        self.last_error: str | None = None
        self.binds = 0  # successful binds so far (re-binds included)
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._generation = 0  # bumped at every new connection
        self._pending: dict[int, asyncio.Future[p.Pdu]] = {}
        self._requests: dict[int, p.Pdu] = {}  # what each pending sequence number asked
        self._seq = 0
        self._next_slot = 0.0
        self._out: list[bytes] = []
        self._flush_scheduled = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, wait: float | None = None) -> None:
        """Start the bind task; wait up to `wait` seconds for the first bind (no error if not)."""
        self._closing = False
        self._task = asyncio.create_task(self._run(), name=f"smpp-bind-{self.system_id}")
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.bound.wait(), wait)

    async def close(self) -> None:
        self._closing = True
        writer = self._writer
        if writer is not None and self.bound.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._request(p.Unbind()), 2)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._drop_connection()

    def drop(self) -> None:
        """Close the socket now (tests: simulate a network failure); the bind task re-binds."""
        self._drop_connection()

    # -- requests ----------------------------------------------------------------------------
    async def submit(self, pdu: p.SubmitSm) -> p.Pdu:
        """Send one submit_sm; answer its submit_sm_resp (or generic_nack). Raises NotBound
        when no bind comes within `bind_wait`, ConnectionLost when the connection drops
        before the answer, TimeoutError when the SMSC does not answer."""
        async with self.window:
            if not self.bound.is_set():
                try:
                    await asyncio.wait_for(self.bound.wait(), self.bind_wait)
                except TimeoutError:
                    raise NotBound(self.last_error or "not bound to the SMSC") from None
            if self.throughput:
                await self._pace()
            return await self._request(pdu)

    async def _pace(self) -> None:
        assert self.throughput
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self.throughput
        if slot > now:
            await asyncio.sleep(slot - now)

    def _next_sequence(self) -> int:
        self._seq = self._seq + 1 if self._seq < 0x7FFFFFFF else 1
        return self._seq

    async def _request(self, pdu: p.Pdu) -> p.Pdu:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ConnectionLost("no connection")
        pdu.sequence = self._next_sequence()
        future: asyncio.Future[p.Pdu] = asyncio.get_running_loop().create_future()
        self._pending[pdu.sequence] = future
        self._requests[pdu.sequence] = pdu
        try:
            self._write(pdu.encode())
            if writer.transport.get_write_buffer_size() > 256 * 1024:
                await writer.drain()
            return await asyncio.wait_for(future, self.response_timeout)
        finally:
            self._pending.pop(pdu.sequence, None)
            self._requests.pop(pdu.sequence, None)

    def respond_deliver(
        self, pdu: p.DeliverSm, status: int = 0, generation: int | None = None
    ) -> None:
        """Answer a deliver_sm (after its receipt or MO message has been stored)."""
        if generation is not None and generation != self._generation:
            return  # that connection is gone: the SMSC will deliver it again
        self._write(p.DeliverSmResp(sequence=pdu.sequence, status=status).encode())

    @property
    def generation(self) -> int:
        return self._generation

    # -- the bind task -----------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await self._session()
                attempt = 0  # the bind worked; it just ended
            except BindRefused as exc:
                self.last_error = str(exc)
                if self._closing:
                    break
                log.error("%s", exc)
            except (
                OSError,
                asyncio.IncompleteReadError,
                p.PduError,
                TimeoutError,
                SmppError,
            ) as exc:
                if self._closing:
                    break
                reason = str(exc) or "no answer in time"
                self.last_error = (
                    f"SMPP connection to {self.host}:{self.port} failed: "
                    f"{type(exc).__name__}: {reason}"
                )
                log.warning("%s", self.last_error)
            finally:
                self._drop_connection()
            if self._closing:
                break
            delay = min(self.backoff_max, self.backoff_initial * (2**attempt))
            attempt = min(attempt + 1, 20)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))

    async def _session(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.response_timeout
        )
        self._writer = writer
        self._generation += 1
        read_task = asyncio.create_task(self._read_loop(reader))
        try:
            bind = p.BindTransceiver(
                system_id=self.system_id, password=self.password, system_type=self.system_type
            )
            resp = await self._request(bind)
            if resp.status != p.Status.ESME_ROK:
                raise BindRefused(
                    f"SMPP bind_transceiver to {self.host}:{self.port} as {self.system_id!r} "
                    f"refused: {p.status_name(resp.status)}",
                    resp.status,
                )
            self.binds += 1
            self.last_error = None
            self.bound.set()
            log.info("SMPP bound to %s:%s as %s", self.host, self.port, self.system_id)
            await self._keep_alive(read_task)
        finally:
            self.bound.clear()
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read_task

    async def _keep_alive(self, read_task: asyncio.Task[None]) -> None:
        """enquire_link every `enquire_interval`; a link that does not answer is dropped."""
        while not read_task.done():
            done, _ = await asyncio.wait({read_task}, timeout=self.enquire_interval)
            if done:
                break
            try:
                await asyncio.wait_for(self._request(p.EnquireLink()), self.enquire_timeout)
            except TimeoutError:
                raise ConnectionLost("enquire_link not answered") from None
        exc = read_task.exception() if not read_task.cancelled() else None
        if exc is not None:
            raise exc
        raise ConnectionLost("the SMSC closed the connection")

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        generation = self._generation
        while True:
            frame = await p.read_frame(reader)
            _, command_id, _status, sequence = p.peek_header(frame)
            if command_id & 0x80000000:
                future = self._pending.get(sequence)
                if future is not None and not future.done():
                    try:
                        response = p.decode(frame)
                    except p.PduError as exc:
                        future.set_exception(exc)
                        continue
                    request = self._requests.get(sequence)
                    if self.on_response is not None and request is not None:
                        # Synchronously, before any PDU read after it (a receipt may follow
                        # its submit_sm_resp in the same segment).
                        self.on_response(request, response)
                    future.set_result(response)
                continue
            try:
                request = p.decode(frame)
            except p.PduError as exc:
                self._send(p.GenericNack(sequence=sequence, status=exc.status))
                continue
            if isinstance(request, p.DeliverSm):
                if self.on_deliver is None:
                    self._send(p.DeliverSmResp(sequence=sequence))
                else:
                    self._handle_deliver(request, generation)
            elif isinstance(request, p.EnquireLink):
                self._send(p.EnquireLinkResp(sequence=sequence))
            elif isinstance(request, p.Unbind):
                self._send(p.UnbindResp(sequence=sequence))
                raise ConnectionLost("the SMSC unbound")
            else:
                self._send(p.GenericNack(sequence=sequence, status=p.Status.ESME_RINVCMDID))

    def _handle_deliver(self, request: p.DeliverSm, generation: int) -> None:
        assert self.on_deliver is not None
        try:
            self.on_deliver(request)
        except Exception:
            log.exception("deliver_sm handler failed")
            self.respond_deliver(request, p.Status.ESME_RSYSERR, generation)

    def _send(self, pdu: p.Pdu) -> None:
        self._write(pdu.encode())

    def _write(self, data: bytes) -> None:
        """Queue bytes for the socket: whatever is queued in one event-loop turn goes out in
        one write, one system call rather than one per PDU (it doubles the submit rate)."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        writer = self._writer
        if out and writer is not None and not writer.is_closing():
            writer.write(b"".join(out))

    def _drop_connection(self) -> None:
        self.bound.clear()
        self._out = []  # never replay bytes meant for a dead connection on the next one
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        pending, self._pending = self._pending, {}
        self._requests = {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost("connection lost before the answer"))

    def stats(self) -> dict[str, Any]:
        return {"bound": self.bound.is_set(), "binds": self.binds, "last_error": self.last_error}
