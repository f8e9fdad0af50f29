"""The SMPP provider against the in-repo SMSC simulator over TCP."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from clarion.config import Settings
from clarion.providers.base import OutboundMessage, Outcome, Receipt
from clarion.providers.smpp import pdu as p
from clarion.providers.smpp.provider import (
    IdBook,
    SmppProvider,
    normalize_id,
    parse_deliver,
    source_address,
)
from clarion.providers.smpp.smsc import Smsc
from tests.conftest import AccountClient, Api
from tests.providers.conftest import RecordingSink

ProviderFactory = Callable[..., Any]


def sms(i: int, to: str = "+33612340010", text: str = "Hello") -> OutboundMessage:
    return OutboundMessage(id=i, channel="sms", to=to, sender=None, text=text)


@pytest.fixture
async def make_provider(smsc: Smsc, sink: RecordingSink) -> AsyncIterator[ProviderFactory]:
    providers: list[SmppProvider] = []

    async def factory(
        start: bool = True,
        enquire_interval: float = 30.0,
        enquire_timeout: float = 10.0,
        **overrides: Any,
    ) -> SmppProvider:
        values: dict[str, Any] = {
            "smpp_host": "127.0.0.1",
            "smpp_port": smsc.port,
            "smpp_system_id": "clarion",
            "smpp_password": "secret",
            "smpp_source_addr": "Clarion",
            "smpp_throughput": 10_000,
            **overrides,
        }
        provider = SmppProvider(
            Settings(**values),
            enquire_interval=enquire_interval,
            enquire_timeout=enquire_timeout,
        )
        provider.client.backoff_initial = 0.05
        provider.client.bind_wait = 3
        providers.append(provider)
        if start:
            await provider.start(sink)
        return provider

    yield factory
    for provider in providers:
        await provider.close()


class TestBind:
    async def test_binds_as_transceiver_and_submits(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider()
        results = await provider.submit([sms(1), sms(2, to="+33612340011")])
        assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
        assert smsc.bind_count == 1
        sent = {s.pdu.destination_addr: s for s in smsc.submitted}
        assert set(sent) == {"33612340010", "33612340011"}
        first = sent["33612340010"].pdu
        assert first.source_addr == "Clarion" and first.source_addr_ton == 5
        assert first.registered_delivery == 1 and first.short_message == b"Hello"
        # the provider id is the submit_sm_resp id, normalized (zero-padded hex -> trimmed)
        ids = {r.message_id: r.provider_message_id for r in results}
        assert ids[1] == normalize_id(sent["33612340010"].message_id)

    async def test_wrong_password_is_reported_clearly_and_submits_retry(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider(smpp_password="wrong")
        assert not provider.client.bound.is_set()
        assert "ESME_RINVPASWD" in (provider.client.last_error or "")
        assert "clarion" in (provider.client.last_error or "")
        provider.client.bind_wait = 0.2
        [result] = await provider.submit([sms(1)])
        assert result.outcome == Outcome.RETRY
        assert "ESME_RINVPASWD" in (result.error_message or "")
        assert smsc.submit_count == 0

    async def test_unknown_system_id(self, make_provider: ProviderFactory) -> None:
        provider = await make_provider(smpp_system_id="nobody")
        assert "ESME_RINVSYSID" in (provider.client.last_error or "")

    async def test_rebinds_after_the_connection_drops(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider()
        assert (await provider.submit([sms(1)]))[0].outcome == Outcome.ACCEPTED
        assert smsc.drop_connections() == 1
        await smsc.wait_bound(1)
        async with asyncio.timeout(10):
            while smsc.bind_count < 2:
                await asyncio.sleep(0.02)
        [result] = await provider.submit([sms(2)])
        assert result.outcome == Outcome.ACCEPTED
        assert provider.client.binds == 2

    async def test_submits_in_flight_when_the_link_drops_are_retried(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider()
        # An SMSC that never answers: the submit is outstanding when the link goes down.
        smsc._submit = lambda session, request: None  # type: ignore[method-assign]
        task = asyncio.create_task(provider.submit([sms(1)]))
        async with asyncio.timeout(5):
            while not provider.client._pending:
                await asyncio.sleep(0.01)
        smsc.drop_connections()
        [result] = await task
        assert result.outcome == Outcome.RETRY

    async def test_enquire_link_keeps_the_bind_alive(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider(enquire_interval=0.05)
        async with asyncio.timeout(10):
            while smsc.enquire_count < 3:
                await asyncio.sleep(0.02)
        assert provider.client.bound.is_set() and smsc.bind_count == 1

    async def test_an_unanswered_enquire_link_drops_and_rebinds(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        smsc.answer_enquire_link = False
        provider = await make_provider(enquire_interval=0.05, enquire_timeout=0.2)
        async with asyncio.timeout(10):
            while smsc.bind_count < 2:
                await asyncio.sleep(0.02)
        smsc.answer_enquire_link = True
        await smsc.wait_bound(1)
        async with asyncio.timeout(10):
            while not provider.client.bound.is_set():
                await asyncio.sleep(0.02)
        assert (await provider.submit([sms(1)]))[0].outcome == Outcome.ACCEPTED


class TestConcatenation:
    LONG_GSM = "Hello € world " * 20  # 280 characters, 300 septets with the escapes

    async def test_udh_parts_share_a_reference(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider(smpp_concat="udh")
        [result] = await provider.submit([sms(1, text=self.LONG_GSM)])
        assert result.outcome == Outcome.ACCEPTED
        pdus = [s.pdu for s in smsc.submitted]
        assert len(pdus) == 2
        refs = set()
        for seq, pdu in enumerate(pdus, 1):
            assert pdu.esm_class & p.ESM_UDHI and pdu.data_coding == 0
            udh = pdu.short_message[:6]
            assert udh[:3] == b"\x05\x00\x03" and udh[4:] == bytes((2, seq))
            refs.add(udh[3])
            assert len(pdu.short_message) - 6 <= 153
            assert not pdu.short_message.endswith(b"\x1b")
        assert len(refs) == 1
        text = b"".join(pdu.short_message[6:] for pdu in pdus)
        from clarion.providers.smpp.encoding import gsm7_decode

        assert gsm7_decode(text) == self.LONG_GSM

    async def test_sar_tlvs(self, make_provider: ProviderFactory, smsc: Smsc) -> None:
        provider = await make_provider(smpp_concat="sar")
        text = "ж" * 100
        await provider.submit([sms(1, text=text)])
        pdus = [s.pdu for s in smsc.submitted]
        assert [pdu.tlvs[p.Tag.SAR_SEGMENT_SEQNUM] for pdu in pdus] == [b"\x01", b"\x02"]
        assert {pdu.tlvs[p.Tag.SAR_TOTAL_SEGMENTS] for pdu in pdus} == {b"\x02"}
        assert len({pdu.tlvs[p.Tag.SAR_MSG_REF_NUM] for pdu in pdus}) == 1
        assert all(pdu.data_coding == p.DC_UCS2 and not pdu.esm_class for pdu in pdus)
        assert b"".join(pdu.short_message for pdu in pdus).decode("utf-16-be") == text

    async def test_message_payload_carries_the_whole_text(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider(smpp_concat="payload")
        text = "😀 party " * 40
        await provider.submit([sms(1, text=text)])
        [submitted] = smsc.submitted
        assert submitted.pdu.short_message == b""
        assert submitted.pdu.tlvs[p.Tag.MESSAGE_PAYLOAD].decode("utf-16-be") == text

    async def test_two_long_messages_get_different_references(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider(smpp_concat="udh")
        await provider.submit([sms(1, text="a" * 200)])
        await provider.submit([sms(2, text="b" * 200)])
        refs = {s.pdu.short_message[3] for s in smsc.submitted}
        assert len(refs) == 2


class TestRefusals:
    async def test_throttled_and_queue_full_are_throttles(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        provider = await make_provider()
        smsc.throttle_next = 1
        [first] = await provider.submit([sms(1)])
        smsc.queue_full_next = 1
        [second] = await provider.submit([sms(2)])
        [third] = await provider.submit([sms(3)])
        assert first.outcome == Outcome.THROTTLED and first.error_code == "0x00000058"
        assert second.outcome == Outcome.THROTTLED and second.error_code == "0x00000014"
        assert third.outcome == Outcome.ACCEPTED

    async def test_invalid_destination_is_permanent_with_the_code(
        self, make_provider: ProviderFactory
    ) -> None:
        provider = await make_provider()
        [result] = await provider.submit([sms(1, to="+33612340000")])
        assert result.outcome == Outcome.REFUSED
        assert result.error_code == "0x0000000B"
        assert "ESME_RINVDSTADR" in (result.error_message or "")


class TestReceipts:
    async def test_receipts_out_of_order_match_submit_ids(
        self, make_provider: ProviderFactory, smsc: Smsc, sink: RecordingSink
    ) -> None:
        smsc.hold_receipts = True
        provider = await make_provider()
        results = await provider.submit(
            [sms(1), sms(2, to="+33612340001"), sms(3, to="+33612340012")]
        )
        assert smsc.release_receipts(reverse=True) == 3
        await sink.wait_for(receipts=3)
        by_id = {r.provider_message_id: r for r in sink.receipts_}
        assert [r.provider_message_id for r in sink.receipts_] == [
            results[2].provider_message_id,
            results[1].provider_message_id,
            results[0].provider_message_id,
        ]
        assert by_id[results[0].provider_message_id].status == "delivered"
        failed = by_id[results[1].provider_message_id]
        assert failed.status == "failed" and failed.error_code == "001"

    @pytest.mark.parametrize("receipt_format", ["text", "tlv"])
    async def test_decimal_text_ids_match_hex_submit_ids(
        self,
        make_provider: ProviderFactory,
        smsc: Smsc,
        sink: RecordingSink,
        receipt_format: str,
    ) -> None:
        smsc.receipt_format = receipt_format  # type: ignore[assignment]
        smsc.receipt_id_decimal = True
        provider = await make_provider()
        [result] = await provider.submit([sms(1)])
        await sink.wait_for(receipts=1)
        assert sink.receipts_[0].provider_message_id == result.provider_message_id
        assert sink.receipts_[0].status == "delivered"

    async def test_every_part_receipt_maps_to_the_message(
        self, make_provider: ProviderFactory, smsc: Smsc, sink: RecordingSink
    ) -> None:
        provider = await make_provider()
        [result] = await provider.submit([sms(1, text="x" * 400)])
        await sink.wait_for(receipts=3)
        assert {r.provider_message_id for r in sink.receipts_} == {result.provider_message_id}

    async def test_a_receipt_is_acknowledged_only_once_stored(
        self, make_provider: ProviderFactory, smsc: Smsc, sink: RecordingSink
    ) -> None:
        sink.fail = 1
        provider = await make_provider()
        await provider.submit([sms(1)])
        async with asyncio.timeout(5):
            while not smsc.bound_sessions or not smsc.bound_sessions[0].acks:
                await asyncio.sleep(0.01)
        assert list(smsc.bound_sessions[0].acks.values()) == [p.Status.ESME_RSYSERR]
        assert sink.receipts_ == []

    async def test_a_receipt_being_stored_at_close_is_stored(
        self, make_provider: ProviderFactory, smsc: Smsc, sink: RecordingSink
    ) -> None:
        # Storing is a database transaction: close lets it finish rather than cut it.
        storing = asyncio.Event()
        store = sink.receipts

        async def slow_store(items: Sequence[Receipt]) -> None:
            storing.set()
            await asyncio.sleep(0.3)
            await store(items)

        sink.receipts = slow_store  # type: ignore[method-assign]
        provider = await make_provider()
        [result] = await provider.submit([sms(1)])
        await asyncio.wait_for(storing.wait(), 5)
        await provider.close()
        assert [r.provider_message_id for r in sink.receipts_] == [result.provider_message_id]

    async def test_mo_message_is_inbound(
        self, make_provider: ProviderFactory, smsc: Smsc, sink: RecordingSink
    ) -> None:
        await make_provider()
        smsc.send_mo("+33699999999", "Stop")
        smsc.send_mo("+33699999998", "Стоп")
        await sink.wait_for(inbound=2)
        first, second = sink.inbound_
        assert (first.from_phone, first.text, first.channel) == ("+33699999999", "Stop", "sms")
        assert second.text == "Стоп" and first.provider == "smpp"


class TestReceiptParsing:
    def test_text_receipt_without_tlvs(self) -> None:
        pdu = p.DeliverSm(
            esm_class=p.ESM_DELIVERY_RECEIPT,
            short_message=b"id:0000012345 sub:001 dlvrd:000 submit date:2611270600 "
            b"done date:2611270601 stat:EXPIRED err:027 text:hello",
        )
        receipt = parse_deliver(pdu)
        assert receipt is not None and not isinstance(receipt, type(None))
        assert receipt.provider_message_id == "12345"  # type: ignore[union-attr]
        assert receipt.status == "failed" and receipt.error_code == "027"  # type: ignore[union-attr]

    def test_tlvs_win_over_text(self) -> None:
        pdu = p.DeliverSm(
            esm_class=p.ESM_DELIVERY_RECEIPT,
            short_message=b"id:999 stat:UNDELIV err:001",
            tlvs={p.Tag.RECEIPTED_MESSAGE_ID: p.tlv_cstr("ABC"), p.Tag.MESSAGE_STATE: b"\x02"},
        )
        receipt = parse_deliver(pdu)
        assert receipt is not None
        assert (receipt.provider_message_id, receipt.status) == ("abc", "delivered")  # type: ignore[union-attr]

    def test_id_book_resolves_both_spellings(self) -> None:
        book = IdBook()
        book.add(normalize_id("000000FF"))
        book.add(normalize_id("100"))
        assert book.resolve("255") == "ff"
        assert book.resolve("00ff") == "ff"
        assert book.resolve("64") == "100"  # decimal id answered, hex in the receipt
        assert book.resolve("unknown-ID") == "unknown-id"
        assert book.resolve("4096") == "4096"  # unknown, no conversion configured

    def test_unknown_ids_converted_as_configured(self) -> None:
        # after a restart the book is empty: the configured conversion still matches
        assert IdBook(conversion="hex-to-dec").resolve("4096") == "1000"
        assert IdBook(conversion="dec-to-hex").resolve("0x1000".removeprefix("0x")) == "4096"


class TestReceiptsIntoTheDatabase:
    async def test_out_of_order_receipts_end_in_the_final_state(
        self, api: Api, account: AccountClient, smsc: Smsc
    ) -> None:
        from clarion.delivery.service import DbReceiptSink
        from tests.providers.conftest import add_sent_message, message_state

        smsc.hold_receipts = True
        smsc.receipt_id_decimal = True
        smsc.receipt_format = "text"
        sink = DbReceiptSink(api.db)
        provider = SmppProvider(
            Settings(
                smpp_host="127.0.0.1",
                smpp_port=smsc.port,
                smpp_system_id="clarion",
                smpp_password="secret",
                smpp_source_addr="Clarion",
                smpp_throughput=1000,
            )
        )
        await provider.start(sink)
        try:
            ok, bad = await provider.submit([sms(1), sms(2, to="+33612340001")])
            ids = [
                await add_sent_message(api.db, account.id, "smpp", r.provider_message_id or "")
                for r in (ok, bad)
            ]
            smsc.release_receipts(reverse=True)
            async with asyncio.timeout(10):
                while (await message_state(api.db, ids[0]))[0] == "sent":
                    await asyncio.sleep(0.02)
                while (await message_state(api.db, ids[1]))[0] == "sent":
                    await asyncio.sleep(0.02)
        finally:
            await provider.close()
        assert await message_state(api.db, ids[0]) == ("delivered", None)
        assert await message_state(api.db, ids[1]) == ("failed", "001")

    async def test_a_later_part_receipt_maps_after_a_restart(
        self, api: Api, account: AccountClient, smsc: Smsc
    ) -> None:
        from clarion.delivery.service import DbReceiptSink
        from tests.providers.conftest import add_sent_message, message_state

        smsc.hold_receipts = True
        smsc.receipt_format = "text"
        settings = Settings(
            smpp_host="127.0.0.1",
            smpp_port=smsc.port,
            smpp_system_id="clarion",
            smpp_password="secret",
            smpp_source_addr="Clarion",
            smpp_throughput=1000,
        )
        first = SmppProvider(settings)
        await first.start(DbReceiptSink(api.db))
        try:
            [result] = await first.submit([sms(1, text="x" * 300)])  # two parts
        finally:
            await first.close()
        mid = await add_sent_message(api.db, account.id, "smpp", result.provider_message_id or "")
        assert len(smsc._held) == 2
        del smsc._held[0]  # only the second part's receipt comes back

        restarted = SmppProvider(settings)  # a new process: nothing in memory
        await restarted.start(DbReceiptSink(api.db))
        try:
            await smsc.wait_bound()
            smsc.release_receipts()
            async with asyncio.timeout(10):
                while (await message_state(api.db, mid))[0] == "sent":
                    await asyncio.sleep(0.02)
        finally:
            await restarted.close()
        assert await message_state(api.db, mid) == ("delivered", None)


class TestRawPeers:
    """The SMSC simulator and the client answer protocol errors as SMPP says."""

    async def test_smsc_refuses_unbound_submits_and_unknown_commands(self, smsc: Smsc) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
        try:
            writer.write(p.SubmitSm(sequence=5, destination_addr="336").encode())
            writer.write(bytes.fromhex("00000010000000ff0000000000000006"))
            first = p.decode(await p.read_frame(reader))
            second = p.decode(await p.read_frame(reader))
        finally:
            writer.close()
        assert isinstance(first, p.GenericNack) and first.sequence == 5
        assert first.status == p.Status.ESME_RINVBNDSTS
        assert isinstance(second, p.GenericNack) and second.sequence == 6
        assert second.status == p.Status.ESME_RINVCMDID

    async def test_client_nacks_what_it_does_not_know(
        self, make_provider: ProviderFactory, smsc: Smsc
    ) -> None:
        await make_provider()
        [session] = smsc.bound_sessions
        session.writer.write(bytes.fromhex("000000100000ffff0000000000000077"))
        session.writer.write(p.EnquireLink(sequence=0x78).encode())
        async with asyncio.timeout(5):
            while 0x78 not in session.acks:
                await asyncio.sleep(0.01)
        assert session.acks[0x77] == p.Status.ESME_RINVCMDID  # generic_nack
        assert session.acks[0x78] == p.Status.ESME_ROK  # enquire_link_resp

    async def test_throughput_paces_submits(self, make_provider: ProviderFactory) -> None:
        provider = await make_provider(smpp_throughput=20)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await provider.submit([sms(i) for i in range(5)])
        # five slots 1/20 s apart: the last one was scheduled at least 4/20 s after the first
        assert provider.client._next_slot - start >= 5 / 20 - 0.01


class TestSourceAddress:
    def test_campaign_sender_wins_with_its_type_of_number(self) -> None:
        settings = Settings(smpp_source_addr="Default", smpp_source_ton=5, smpp_source_npi=0)
        assert source_address(None, settings) == ("Default", 5, 0)
        assert source_address("Clarion", settings) == ("Clarion", 5, 0)
        assert source_address("+33612345678", settings) == ("33612345678", 1, 1)
        assert source_address("36000", settings) == ("36000", 3, 0)
