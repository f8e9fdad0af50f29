"""The SMPP provider: OutboundMessage -> submit_sm (with concatenation), deliver_sm -> receipts
and inbound messages pushed into the ReceiptSink."""

import asyncio
import hashlib
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from clarion.config import Settings
from clarion.db.transactions import stop_tasks
from clarion.providers.base import (
    AliasSink,
    Capabilities,
    InboundMessage,
    OutboundMessage,
    Outcome,
    Pacer,
    Receipt,
    ReceiptSink,
    SubmitResult,
)
from clarion.providers.smpp import pdu as p
from clarion.providers.smpp.client import ConnectionLost, NotBound, SmppClient
from clarion.providers.smpp.encoding import decode_text, encode_text

log = logging.getLogger("clarion.smpp")

Sent = p.Pdu | NotBound | ConnectionLost | TimeoutError  # a submit_sm's answer, or what stood in

# A later part's retries wait for the pacer (the engine's adaptive rate) and at least this
# growing pause, at most this long: an SMSC without a rate of its own is not hammered.
PART_RETRY_MAX_PAUSE = 0.5
CLOSE_GRACE = 5.0  # seconds the receipts received before a close get to be stored
THROTTLED_TRACKED = 200_000  # messages whose first throttle time is remembered (LRU)

THROTTLE_STATUSES = {p.Status.ESME_RTHROTTLED, p.Status.ESME_RMSGQFUL}
TRANSIENT_STATUSES = {p.Status.ESME_RSYSERR, p.Status.ESME_RUNKNOWNERR}

# Text receipt states (SMPP 3.4 appendix B) and message_state TLV values -> our statuses.
_STAT_TEXT = {
    "DELIVRD": "delivered",
    "ACCEPTD": "sent",
    "ENROUTE": "sent",
    "EXPIRED": "failed",
    "DELETED": "failed",
    "UNDELIV": "failed",
    "REJECTD": "failed",
}
_STATE_TLV = {
    p.MessageState.DELIVERED: "delivered",
    p.MessageState.ACCEPTED: "sent",
    p.MessageState.ENROUTE: "sent",
    p.MessageState.EXPIRED: "failed",
    p.MessageState.DELETED: "failed",
    p.MessageState.UNDELIVERABLE: "failed",
    p.MessageState.REJECTED: "failed",
}
_STATE_NAME = {
    p.MessageState.DELIVERED: "DELIVRD",
    p.MessageState.ACCEPTED: "ACCEPTD",
    p.MessageState.ENROUTE: "ENROUTE",
    p.MessageState.EXPIRED: "EXPIRED",
    p.MessageState.DELETED: "DELETED",
    p.MessageState.UNDELIVERABLE: "UNDELIV",
    p.MessageState.REJECTED: "REJECTD",
}
_RE_ID = re.compile(r"\bid:(\S+)", re.IGNORECASE)
_RE_STAT = re.compile(r"\bstat:(\w+)", re.IGNORECASE)
_RE_ERR = re.compile(r"\berr:(\w+)", re.IGNORECASE)
_HEX = re.compile(r"^[0-9a-f]+$")
_DEC = re.compile(r"^[0-9]+$")


def normalize_id(raw: str) -> str:
    """One spelling per SMSC message id: trimmed, lower case, leading zeros dropped from ids
    that are numbers (hex or decimal). Applied to submit_sm_resp ids and receipt ids alike."""
    value = raw.strip().strip("\x00").lower()
    if _HEX.match(value):
        value = value.lstrip("0") or "0"
    return value


def id_aliases(canonical: str) -> list[str]:
    """Other spellings an SMSC may use for the same id in its receipts: many send the
    submit_sm_resp id in hex and the receipt id in decimal, or the reverse."""
    aliases = []
    if _HEX.match(canonical) and len(canonical) <= 16:
        aliases.append(str(int(canonical, 16)))
        if _DEC.match(canonical):
            aliases.append(format(int(canonical), "x"))
    return [a for a in aliases if a != canonical]


class IdBook:
    """Maps receipt ids (any spelling, any part of a concatenated message) to the id stored on
    the message: the normalized id of the first part's submit_sm_resp. Bounded (LRU).

    An id it does not know (a receipt after a restart) is converted by `conversion`: with
    "hex-to-dec" the SMSC answered hex ids and writes receipts in decimal, so a decimal
    receipt id is turned back into hex ("dec-to-hex": the reverse)."""

    def __init__(self, size: int = 500_000, conversion: str = "same") -> None:
        self.size = size
        self.conversion = conversion
        self._ids: OrderedDict[str, str] = OrderedDict()

    def add(self, canonical: str, *others: str) -> None:
        for key in (canonical, *others):
            for spelling in (key, *id_aliases(key)):
                self._ids.setdefault(spelling, canonical)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def resolve(self, raw: str) -> str:
        key = normalize_id(raw)
        known = self._ids.get(key)
        if known is not None:
            return known
        if self.conversion == "hex-to-dec" and _DEC.match(key):
            return format(int(key), "x")
        if self.conversion == "dec-to-hex" and _HEX.match(key):
            return str(int(key, 16))
        return key


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_deliver(
    pdu: p.DeliverSm, book: IdBook | None = None, now: datetime | None = None
) -> Receipt | InboundMessage | None:
    """A deliver_sm is a delivery receipt (esm_class message type 0x04) or an MO message,
    received at `now` (the clock's time; the current time by default)."""
    if pdu.esm_class & 0x3C == p.ESM_DELIVERY_RECEIPT:
        return parse_receipt(pdu, book)
    if pdu.esm_class & 0x3C:
        return None  # intermediate notifications, manual acks: not used
    data = pdu.short_message or pdu.tlvs.get(p.Tag.MESSAGE_PAYLOAD, b"")
    if pdu.esm_class & p.ESM_UDHI and data:
        data = data[1 + data[0] :]  # skip the user data header
    source = pdu.source_addr.strip()
    phone = source if source.startswith("+") else f"+{source}"
    return InboundMessage(
        provider="smpp",
        channel="sms",
        from_phone=phone,
        text=decode_text(data, pdu.data_coding),
        raw=f"deliver_sm from {pdu.source_addr} to {pdu.destination_addr}",
        received_at=now or utc_now(),
        fingerprint=mo_fingerprint(pdu),
    )


_FINGERPRINT_TLVS = (
    p.Tag.MESSAGE_PAYLOAD,
    p.Tag.SAR_MSG_REF_NUM,
    p.Tag.SAR_TOTAL_SEGMENTS,
    p.Tag.SAR_SEGMENT_SEQNUM,
)


def mo_fingerprint(pdu: p.DeliverSm) -> str:
    """The identity of an MO deliver_sm, which SMPP 3.4 gives no id: a digest of its source
    and destination addresses, data coding, UDH indicator, short_message (with its user data
    header: the concatenation reference and part numbers) and the payload and sar_* TLVs. An
    SMSC that redelivers a deliver_sm whose resp it did not get sends the same fields under a
    new sequence number, which is left out, as are the TON/NPI an SMSC may rewrite between
    binds. Each field is length-prefixed, so no two field lists digest alike by shifting
    bytes from one field to the next."""
    digest = hashlib.blake2b(digest_size=16)
    fields = (
        pdu.source_addr.strip().lstrip("+").encode(),
        pdu.destination_addr.strip().lstrip("+").encode(),
        bytes((pdu.data_coding, pdu.esm_class & p.ESM_UDHI)),
        pdu.short_message,
        *(pdu.tlvs.get(tag, b"") for tag in _FINGERPRINT_TLVS),
    )
    for value in fields:
        digest.update(len(value).to_bytes(4, "big"))
        digest.update(value)
    return digest.hexdigest()


def parse_receipt(pdu: p.DeliverSm, book: IdBook | None = None) -> Receipt | None:
    text = pdu.short_message.decode("latin-1", errors="replace")
    raw_id: str | None = None
    if p.Tag.RECEIPTED_MESSAGE_ID in pdu.tlvs:
        raw_id = p.tlv_text(pdu.tlvs[p.Tag.RECEIPTED_MESSAGE_ID])
    elif m := _RE_ID.search(text):
        raw_id = m.group(1)
    status: str | None = None
    stat_name: str | None = None
    if pdu.tlvs.get(p.Tag.MESSAGE_STATE):
        state = pdu.tlvs[p.Tag.MESSAGE_STATE][0]
        status = _STATE_TLV.get(state)  # type: ignore[call-overload]
        stat_name = _STATE_NAME.get(state)  # type: ignore[call-overload]
    elif m := _RE_STAT.search(text):
        stat_name = m.group(1).upper()
        status = _STAT_TEXT.get(stat_name)
    if not raw_id or status is None:
        log.warning("unusable SMPP receipt: %r tlvs=%s", text, sorted(pdu.tlvs))
        return None
    error_code: str | None = None
    if status == "failed":
        if (m := _RE_ERR.search(text)) and m.group(1).strip("0"):
            error_code = m.group(1)
        elif (nec := pdu.tlvs.get(p.Tag.NETWORK_ERROR_CODE)) and len(nec) == 3:
            error_code = str(int.from_bytes(nec[1:], "big"))
    return Receipt(
        provider="smpp",
        provider_message_id=book.resolve(raw_id) if book else normalize_id(raw_id),
        status=status,
        error_code=error_code,
        error_message=stat_name if status == "failed" else None,
        occurred_at=datetime.now(UTC),
        raw=text or None,
    )


class SmppProvider:
    """SMS over one SMPP transceiver bind."""

    name = "smpp"
    channel = "sms"

    def __init__(
        self,
        settings: Settings,
        *,
        enquire_interval: float = 30.0,
        enquire_timeout: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.clock = clock  # stamps MO messages (their redelivery window is counted from it)
        self.capabilities = Capabilities(max_batch=settings.smpp_window)
        # The engine's token bucket reads this (messages/s); the client also paces submit_sm
        # at this rate, as the SMSC contract binds per connection.
        self.rate_limit: float | None = settings.smpp_throughput
        self.concat = settings.smpp_concat
        self.book = IdBook(conversion=settings.smpp_receipt_id)
        self._ref = random.randrange(256)
        self._sink: ReceiptSink | None = None
        # deliver_sm waiting to be stored; None tells the drain to stop (see `close`)
        self._queue: asyncio.Queue[
            tuple[p.DeliverSm, int, Receipt | InboundMessage | None] | None
        ] = asyncio.Queue()
        self._drain_task: asyncio.Task[None] | None = None
        self._groups: dict[int, list[str]] = {}  # id(submit_sm) -> its message's part ids
        self._pacer: Pacer | None = None
        self._aliases: list[tuple[str, str]] = []  # (later part's id, first part's id)
        self._throttled_since: OrderedDict[int, float] = OrderedDict()  # message id -> when
        assert settings.smpp_host and settings.smpp_system_id is not None
        self.client = SmppClient(
            settings.smpp_host,
            settings.smpp_port,
            settings.smpp_system_id,
            settings.smpp_password or "",
            window=settings.smpp_window,
            throughput=settings.smpp_throughput,
            enquire_interval=enquire_interval,
            enquire_timeout=enquire_timeout,
            on_deliver=self._on_deliver,
            on_response=self._on_response,
        )

    async def start(self, sink: ReceiptSink) -> None:
        self._sink = sink
        self._drain_task = asyncio.create_task(self._drain(), name="smpp-receipts")
        await self.client.start(wait=5.0)
        if not self.client.bound.is_set():
            log.error("SMPP not bound yet: %s", self.client.last_error or "no answer")

    async def close(self) -> None:
        """Unbind, then store what was received: the drain stops after the batch under way
        (see `stop_tasks`)."""
        await self.client.close()
        if self._drain_task is not None:
            self._queue.put_nowait(None)
            await stop_tasks([self._drain_task], CLOSE_GRACE)
            self._drain_task = None

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        return dict.fromkeys(phones, True)

    # -- outbound ----------------------------------------------------------------------------
    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        results = list(await asyncio.gather(*(self._submit_one(m) for m in batch)))
        await self._store_aliases()
        return results

    async def _store_aliases(self) -> None:
        """Store the later parts' ids of the long messages just accepted (one transaction
        per batch), so that their receipts map after a restart. Should it fail, receipts
        still map while this process runs (the in-memory book)."""
        pairs, self._aliases = self._aliases, []
        if pairs and isinstance(self._sink, AliasSink):
            try:
                await self._sink.aliases(self.name, pairs)
            except Exception:
                log.warning("storing %d SMPP part ids failed", len(pairs), exc_info=True)

    def build_pdus(self, message: OutboundMessage) -> list[p.SubmitSm]:
        """The submit_sm PDUs for one message (one per part, or one with message_payload)."""
        s = self.settings
        encoded = encode_text(message.text or "")
        destination = message.to.lstrip("+")
        source, ton, npi = source_address(message.sender, s)

        def make(short: bytes, esm: int = 0, tlvs: dict[int, bytes] | None = None) -> p.SubmitSm:
            return p.SubmitSm(
                source_addr_ton=ton,
                source_addr_npi=npi,
                source_addr=source,
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=destination,
                esm_class=esm,
                registered_delivery=1,
                data_coding=encoded.data_coding,
                short_message=short,
                tlvs=tlvs or {},
            )

        parts = encoded.parts
        if len(parts) == 1:
            return [make(parts[0])]
        if self.concat == "payload":
            return [make(b"", tlvs={p.Tag.MESSAGE_PAYLOAD: encoded.whole})]
        self._ref = (self._ref + 1) % 256
        total = len(parts)
        if self.concat == "sar":
            return [
                make(
                    part,
                    tlvs={
                        p.Tag.SAR_MSG_REF_NUM: p.tlv_u16(self._ref),
                        p.Tag.SAR_TOTAL_SEGMENTS: p.tlv_u8(total),
                        p.Tag.SAR_SEGMENT_SEQNUM: p.tlv_u8(i),
                    },
                )
                for i, part in enumerate(parts, 1)
            ]
        # UDH: IE 0x00 (concatenated short messages, 8-bit reference), 5 octets + its length.
        return [
            make(bytes((0x05, 0x00, 0x03, self._ref, total, i)) + part, esm=p.ESM_UDHI)
            for i, part in enumerate(parts, 1)
        ]

    def use_pacer(self, pacer: Pacer) -> None:
        """Pace every submit_sm (each part) through the engine's adaptive rate."""
        self._pacer = pacer

    async def _send_part(self, pdu: p.SubmitSm, sender: str | None, group: list[str]) -> Sent:
        """One submit_sm, paced: its answer, or the exception that stood for one."""
        if self._pacer is not None:
            await self._pacer.acquire(sender)
        self._groups[id(pdu)] = group
        try:
            return await self.client.submit(pdu)
        except (NotBound, ConnectionLost, TimeoutError) as exc:
            return exc
        finally:
            self._groups.pop(id(pdu), None)

    async def _submit_one(self, message: OutboundMessage) -> SubmitResult:
        """Submit a message's parts in order. Until its first part is accepted, a refusal is
        the message's outcome (the engine retries the whole message: nothing was sent). Once
        a part is accepted, no part is ever submitted twice: a later part that is throttled
        (or meets a transient error) is retried alone, paced, for up to
        `smpp_part_retry_seconds`; then the message fails with `throttled_too_long`."""
        try:
            pdus = self.build_pdus(message)
        except (KeyError, ValueError) as exc:
            return SubmitResult(
                message.id, Outcome.REFUSED, error_code="encoding", error_message=str(exc)
            )
        ids: list[str] = []
        group: list[str] = []  # the first part's id, once answered (see _on_response)
        for index, pdu in enumerate(pdus):
            give_up_at: float | None = None
            tries = 0
            while True:
                answer = await self._send_part(pdu, message.sender, group)
                outcome, code, text = _classify(answer)
                if outcome == Outcome.ACCEPTED:
                    assert isinstance(answer, p.SubmitSmResp)
                    ids.append(normalize_id(answer.message_id))
                    break
                if outcome == Outcome.THROTTLED and self._pacer is not None:
                    self._pacer.on_throttle(message.sender)
                if not ids and outcome == Outcome.THROTTLED:
                    return self._throttled_whole(message.id, code, text)
                if not ids or outcome == Outcome.REFUSED:
                    if ids:
                        text = f"part {index + 1} of {len(pdus)} refused: {text}"
                    return SubmitResult(message.id, outcome, error_code=code, error_message=text)
                now = time.monotonic()
                give_up_at = give_up_at or now + self.settings.smpp_part_retry_seconds
                if now >= give_up_at:
                    return SubmitResult(
                        message.id,
                        Outcome.REFUSED,
                        provider_message_id=ids[0],
                        error_code="throttled_too_long",
                        error_message=(
                            f"The SMSC kept refusing part {index + 1} of {len(pdus)} "
                            f"({text}) for {self.settings.smpp_part_retry_seconds:g} s after "
                            f"the first {index} part(s) were accepted; the message is "
                            "incomplete."
                        ),
                    )
                tries += 1
                await asyncio.sleep(min(PART_RETRY_MAX_PAUSE, 0.01 * 2**tries))
        self._aliases.extend((alias, ids[0]) for alias in ids[1:])
        self._throttled_since.pop(message.id, None)
        return SubmitResult(message.id, Outcome.ACCEPTED, provider_message_id=ids[0])

    def _throttled_whole(self, message_id: int, code: str | None, text: str | None) -> SubmitResult:
        """A message refused whole (its first part) with a throttle goes back to the engine,
        which slows down and retries it; one that has been throttled for longer than
        `smpp_throttle_give_up_seconds` since this process first saw it throttled fails with
        `throttled_too_long` instead of looping for ever."""
        now = time.monotonic()
        since = self._throttled_since.setdefault(message_id, now)
        self._throttled_since.move_to_end(message_id)
        while len(self._throttled_since) > THROTTLED_TRACKED:
            self._throttled_since.popitem(last=False)
        limit = self.settings.smpp_throttle_give_up_seconds
        if now - since < limit:
            return SubmitResult(message_id, Outcome.THROTTLED, error_code=code, error_message=text)
        self._throttled_since.pop(message_id, None)
        return SubmitResult(
            message_id,
            Outcome.REFUSED,
            error_code="throttled_too_long",
            error_message=f"The SMSC kept throttling this message for {limit:g} s ({text}).",
        )

    def _on_response(self, request: p.Pdu, response: p.Pdu) -> None:
        """Record an accepted part's SMSC id the moment its submit_sm_resp is read, so that a
        receipt right behind it on the wire resolves; later parts map to the first part."""
        if response.status or not isinstance(response, p.SubmitSmResp):
            return
        group = self._groups.get(id(request))
        ident = normalize_id(response.message_id)
        if group:
            self.book.add(group[0], ident)
        else:
            self.book.add(ident)
            if group is not None:
                group.append(ident)

    # -- inbound (receipts and MO) -----------------------------------------------------------
    def _on_deliver(self, pdu: p.DeliverSm) -> None:
        # Ids are resolved in _drain; the submit_sm_resp of every id was read (and recorded
        # by _on_response) before this deliver_sm.
        item = parse_deliver(pdu, now=self.clock())
        self._queue.put_nowait((pdu, self.client.generation, item))

    async def _drain(self) -> None:
        """Hand receipts and MO messages to the sink in batches; answer each deliver_sm only
        once stored (ESME_RSYSERR if storing failed, so the SMSC delivers it again)."""
        stopping = False
        while not stopping:
            items: list[tuple[p.DeliverSm, int, Receipt | InboundMessage | None]] = []
            while len(items) < 1000 and (not items or not self._queue.empty()):
                item = await self._queue.get()
                if item is None:
                    stopping = True
                    break
                items.append(item)
            if not items:
                return
            receipts = [x for _, _, x in items if isinstance(x, Receipt)]
            for receipt in receipts:
                receipt.provider_message_id = self.book.resolve(receipt.provider_message_id)
            inbound = [x for _, _, x in items if isinstance(x, InboundMessage)]
            status = p.Status.ESME_ROK
            try:
                if self._sink is not None:
                    if receipts:
                        await self._sink.receipts(receipts)
                    if inbound:
                        await self._sink.inbound(inbound)
            except Exception:
                log.exception("storing %d SMPP receipts failed", len(receipts))
                status = p.Status.ESME_RSYSERR
            for pdu, generation, _ in items:
                self.client.respond_deliver(pdu, status, generation)


def _classify(answer: "Sent") -> tuple[Outcome, str | None, str | None]:
    """(outcome, error code, error message) of one submit_sm's answer."""
    if isinstance(answer, NotBound):
        return Outcome.RETRY, None, str(answer)
    if isinstance(answer, ConnectionLost | TimeoutError):
        return Outcome.RETRY, None, f"SMPP: {answer or 'timeout'}"
    if answer.status == p.Status.ESME_ROK and isinstance(answer, p.SubmitSmResp):
        return Outcome.ACCEPTED, None, None
    outcome = (
        Outcome.THROTTLED
        if answer.status in THROTTLE_STATUSES
        else Outcome.RETRY
        if answer.status in TRANSIENT_STATUSES
        else Outcome.REFUSED
    )
    return (
        outcome,
        f"0x{answer.status:08X}",
        f"SMPP submit_sm refused: {p.status_name(answer.status)}",
    )


def source_address(sender: str | None, settings: Settings) -> tuple[str, int, int]:
    """(source_addr, TON, NPI): the campaign's sender when it has one, else the configured
    CLARION_SMPP_SOURCE_ADDR with its configured TON/NPI. An alphanumeric sender goes out as
    TON 5 (alphanumeric), "+digits" as TON 1/NPI 1 (international, E.164), digits alone as
    TON 3 (network-specific short code)."""
    if not sender:
        return settings.smpp_source_addr or "", settings.smpp_source_ton, settings.smpp_source_npi
    if sender.startswith("+") and sender[1:].isdigit():
        return sender[1:], 1, 1
    if sender.isdigit():
        return sender, 3, 0
    return sender, 5, 0
