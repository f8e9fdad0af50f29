"""An SMSC simulator that speaks SMPP 3.4 over TCP (for tests, benchmarks and local runs).

It binds ESMEs by system_id/password, answers submit_sm with a message id (hex, zero-padded),
and when a receipt is requested sends a delivery receipt deliver_sm (esm_class 0x04) after a
configurable delay (with jitter, so receipts come out of order), with the TLVs
receipted_message_id/message_state and/or the text form (whose id may be written in decimal).
It can throttle (ESME_RTHROTTLED / ESME_RMSGQFUL for the next N submits, or whenever submits
on a bind come closer than a minimum gap, as a gateway's rate limit does), drop connections,
hold receipts and release them in reverse order, and send MO messages on demand. An MO
whose deliver_sm_resp it has not read when the connection ends is delivered again on the
next bind, as an SMSC does; it can lose the next MO resps (cut the connection as they
arrive) to make that happen.

Magic destinations, like the built-in simulator's: a number ending in 0000 is refused at
submit (ESME_RINVDSTADR), 0001 is accepted then reported UNDELIV (err:001).
"""

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from clarion.providers.smpp import pdu as p
from clarion.providers.smpp.encoding import encode_text

log = logging.getLogger("clarion.smsc")


@dataclass
class Submitted:
    system_id: str
    message_id: str
    pdu: p.SubmitSm


@dataclass
class _Receipt:
    session: "_Session"
    message_id: int
    pdu: p.SubmitSm
    delivered: bool
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _Session:
    smsc: "Smsc"
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    system_id: str | None = None
    seq: int = 0
    acks: dict[int, int] = field(default_factory=dict)  # our deliver_sm seq -> resp status
    mo: dict[int, p.DeliverSm] = field(default_factory=dict)  # MO sent, resp not yet read
    last_accepted: float = float("-inf")  # loop time of the last submit_sm accepted

    out: list[bytes] = field(default_factory=list)

    def send(self, pdu: p.Pdu) -> None:
        """Queue a PDU; one write per event-loop turn (see SmppClient._write)."""
        if self.writer.is_closing():
            return
        if not self.out:
            asyncio.get_running_loop().call_soon(self.flush)
        self.out.append(pdu.encode())

    def flush(self) -> None:
        out, self.out = self.out, []
        if out and not self.writer.is_closing():
            self.writer.write(b"".join(out))

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class Smsc:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: dict[str, str] | None = None,
        receipt_delay: float = 0.0,
        receipt_jitter: float = 0.0,
        receipt_format: Literal["tlv", "text", "both"] = "both",
        receipt_id_decimal: bool = False,
        keep: bool = True,
        seed: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.credentials = credentials if credentials is not None else {"clarion": "secret"}
        self.receipt_delay = receipt_delay
        self.receipt_jitter = receipt_jitter
        self.receipt_format = receipt_format
        self.receipt_id_decimal = receipt_id_decimal
        self.keep = keep
        self.random = random.Random(seed)
        self.throttle_next = 0  # answer the next N submit_sm with ESME_RTHROTTLED
        # Like a gateway's per-bind rate limit: a submit_sm that comes less than `min_gap`
        # seconds after the last one accepted on its bind is answered ESME_RTHROTTLED.
        self.min_gap = 0.0
        self.throttled = 0  # submit_sm answered ESME_RTHROTTLED so far
        self.queue_full_next = 0  # ... with ESME_RMSGQFUL
        self.hold_receipts = False  # keep receipts until release_receipts()
        self.answer_enquire_link = True  # False: a dead link that the ESME must detect
        self.enquire_count = 0
        # Cut the connection when the next N MO deliver_sm_resp arrive, unread: the ESME has
        # handled those MO, this SMSC believes it has not and delivers them again.
        self.lose_mo_resps = 0
        self.redelivered = 0  # MO delivered again after a connection ended without its resp
        self._unanswered_mo: list[p.DeliverSm] = []
        self.submitted: list[Submitted] = []
        self.submit_count = 0
        self.bind_count = 0
        self.bind_failures = 0
        self.receipts_sent = 0
        self._held: list[_Receipt] = []
        self._sessions: set[_Session] = set()
        self._server: asyncio.Server | None = None
        self._next_id = 0x1000
        self._timers: set[asyncio.TimerHandle] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> "Smsc":
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def drop_connections(self) -> int:
        """Close every ESME connection at once (a network failure)."""
        sessions = list(self._sessions)
        for session in sessions:
            session.writer.close()
        return len(sessions)

    @property
    def bound_sessions(self) -> list[_Session]:
        return [s for s in self._sessions if s.system_id is not None]

    async def wait_bound(self, count: int = 1, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.bound_sessions) < count:
                await asyncio.sleep(0.01)

    # -- on demand ---------------------------------------------------------------------------
    def send_mo(self, source: str, text: str, destination: str = "12345") -> None:
        """Send a mobile-originated message (esm_class 0) to the first bound ESME."""
        encoded = encode_text(text)
        self._deliver_mo(
            self._any_bound(),
            p.DeliverSm(
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr=source.lstrip("+"),
                destination_addr=destination,
                data_coding=encoded.data_coding,
                short_message=encoded.whole,
            ),
        )

    def _deliver_mo(self, session: _Session, pdu: p.DeliverSm) -> None:
        pdu.sequence = session.next_seq()
        session.mo[pdu.sequence] = pdu
        session.send(pdu)

    def release_receipts(self, reverse: bool = True) -> int:
        """Send the held receipts now (in reverse submit order by default)."""
        held, self._held = self._held, []
        for receipt in reversed(held) if reverse else held:
            self._send_receipt(receipt)
        return len(held)

    def _any_bound(self) -> _Session:
        sessions = self.bound_sessions
        if not sessions:
            raise RuntimeError("no ESME is bound")
        return sessions[0]

    # -- the protocol ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        self._sessions.add(session)
        try:
            while True:
                frame = await p.read_frame(reader)
                self._handle(session, frame)
        except (asyncio.IncompleteReadError, ConnectionError, p.PduError):
            pass
        finally:
            self._sessions.discard(session)
            self._unanswered_mo.extend(session.mo.values())
            session.mo.clear()
            writer.close()

    def _handle(self, session: _Session, frame: bytes) -> None:
        _, command_id, status, sequence = p.peek_header(frame)
        if command_id & 0x80000000:
            if sequence in session.mo and self.lose_mo_resps > 0:
                self.lose_mo_resps -= 1
                session.writer.close()
                return
            session.mo.pop(sequence, None)
            session.acks[sequence] = status
            return
        try:
            request = p.decode(frame)
        except p.PduError as exc:
            session.send(p.GenericNack(sequence=sequence, status=exc.status))
            return
        if isinstance(request, p.BindTransceiver):
            self._bind(session, request)
        elif session.system_id is None:
            session.send(p.GenericNack(sequence=sequence, status=p.Status.ESME_RINVBNDSTS))
        elif isinstance(request, p.SubmitSm) and not isinstance(request, p.DeliverSm):
            self._submit(session, request)
        elif isinstance(request, p.EnquireLink):
            self.enquire_count += 1
            if self.answer_enquire_link:
                session.send(p.EnquireLinkResp(sequence=sequence))
        elif isinstance(request, p.Unbind):
            session.send(p.UnbindResp(sequence=sequence))
            session.writer.close()
        else:
            session.send(p.GenericNack(sequence=sequence, status=p.Status.ESME_RINVCMDID))

    def _bind(self, session: _Session, request: p.BindTransceiver) -> None:
        resp = p.BindTransceiverResp(sequence=request.sequence)
        if session.system_id is not None:
            resp.status = p.Status.ESME_RALYBND
        elif request.system_id not in self.credentials:
            resp.status = p.Status.ESME_RINVSYSID
        elif self.credentials[request.system_id] != request.password:
            resp.status = p.Status.ESME_RINVPASWD
        else:
            session.system_id = request.system_id
            resp.system_id = "clarion-smsc"
            resp.tlvs = {p.Tag.SC_INTERFACE_VERSION: p.tlv_u8(0x34)}
            self.bind_count += 1
        if resp.status:
            self.bind_failures += 1
        session.send(resp)
        if not resp.status:
            unanswered, self._unanswered_mo = self._unanswered_mo, []
            for pdu in unanswered:
                self._deliver_mo(session, pdu)
            self.redelivered += len(unanswered)

    def _submit(self, session: _Session, request: p.SubmitSm) -> None:
        resp = p.SubmitSmResp(sequence=request.sequence)
        now = asyncio.get_running_loop().time()
        if self.throttle_next > 0:
            self.throttle_next -= 1
            resp.status = p.Status.ESME_RTHROTTLED
        elif now - session.last_accepted < self.min_gap:
            resp.status = p.Status.ESME_RTHROTTLED
        elif self.queue_full_next > 0:
            self.queue_full_next -= 1
            resp.status = p.Status.ESME_RMSGQFUL
        elif request.destination_addr.endswith("0000") or not request.destination_addr:
            resp.status = p.Status.ESME_RINVDSTADR
        if resp.status:
            self.throttled += resp.status == p.Status.ESME_RTHROTTLED
            session.send(resp)
            return
        session.last_accepted = now
        self._next_id += 1
        message_id = self._next_id
        resp.message_id = f"{message_id:010X}"  # hex, zero-padded: receipts may say decimal
        session.send(resp)
        self.submit_count += 1
        if self.keep:
            assert session.system_id is not None
            self.submitted.append(Submitted(session.system_id, resp.message_id, request))
        if request.registered_delivery & 0x01:
            receipt = _Receipt(
                session, message_id, request, not request.destination_addr.endswith("0001")
            )
            if self.hold_receipts:
                self._held.append(receipt)
            else:
                delay = self.receipt_delay + self.random.random() * self.receipt_jitter
                loop = asyncio.get_running_loop()
                receipt.timer = loop.call_later(delay, self._timer_fired, receipt)
                self._timers.add(receipt.timer)

    def _timer_fired(self, receipt: _Receipt) -> None:
        if receipt.timer is not None:
            self._timers.discard(receipt.timer)
        self._send_receipt(receipt)

    def _send_receipt(self, receipt: _Receipt) -> None:
        """A delivery receipt on the session that submitted (or any bound one if it is gone)."""
        session = receipt.session
        if session not in self._sessions:
            bound = self.bound_sessions
            if not bound:
                return  # nobody to tell; a real SMSC would retry later
            session = bound[0]
        stat = "DELIVRD" if receipt.delivered else "UNDELIV"
        err = "000" if receipt.delivered else "001"
        hex_id = f"{receipt.message_id:010X}"
        text_id = str(receipt.message_id) if self.receipt_id_decimal else hex_id
        now = datetime.now(UTC).strftime("%y%m%d%H%M")
        tlvs: dict[int, bytes] = {}
        text = b""
        if self.receipt_format in ("tlv", "both"):
            tlvs[p.Tag.RECEIPTED_MESSAGE_ID] = p.tlv_cstr(hex_id)
            state = p.MessageState.DELIVERED if receipt.delivered else p.MessageState.UNDELIVERABLE
            tlvs[p.Tag.MESSAGE_STATE] = p.tlv_u8(state)
        if self.receipt_format in ("text", "both"):
            text = (
                f"id:{text_id} sub:001 dlvrd:{'001' if receipt.delivered else '000'} "
                f"submit date:{now} done date:{now} stat:{stat} err:{err} text:"
            ).encode("latin-1")
        session.send(
            p.DeliverSm(
                sequence=session.next_seq(),
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr=receipt.pdu.destination_addr,
                destination_addr=receipt.pdu.source_addr,
                esm_class=p.ESM_DELIVERY_RECEIPT,
                short_message=text,
                tlvs=tlvs,
            )
        )
        self.receipts_sent += 1
