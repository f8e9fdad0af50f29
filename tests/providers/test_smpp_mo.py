"""SMPP MO messages, which carry no id: a redelivered deliver_sm (its resp lost) is handled and
answered once; the same text sent again after another message or after the redelivery window
is a new message. Over real sockets with the in-repo SMSC, and on the inbound path alone with
the time injected."""

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from clarion.audience.models import OptOutEvent
from clarion.config import Settings
from clarion.db.session import Database
from clarion.delivery.inbound import REDELIVERY_WINDOW, handle_inbound
from clarion.delivery.models import InboundEvent
from clarion.providers.base import InboundMessage, Receipt
from clarion.providers.smpp import pdu as p
from clarion.providers.smpp.encoding import encode_text
from clarion.providers.smpp.provider import SmppProvider, mo_fingerprint, parse_deliver
from clarion.providers.smpp.smsc import Smsc
from tests.compliance.test_keywords import RATES, messaged, replies
from tests.conftest import AccountClient, Api
from tests.providers.conftest import add_contact, opt_outs

PHONE = "+33611111111"
T0 = datetime(2026, 3, 6, 14, 59, 50, tzinfo=UTC)  # 10 s before a 15-minute slice ends


def deliver(text: str, source: str = PHONE, destination: str = "12345", **kw: Any) -> p.DeliverSm:
    encoded = encode_text(text)
    return p.DeliverSm(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=source.lstrip("+"),
        destination_addr=destination,
        data_coding=encoded.data_coding,
        short_message=encoded.whole,
        **kw,
    )


def mo(text: str, at: datetime, **kw: Any) -> InboundMessage:
    item = parse_deliver(deliver(text, **kw), now=at)
    assert isinstance(item, InboundMessage)
    return item


async def handle(db: Database, items: Sequence[InboundMessage]) -> dict[str, int]:
    async with db.transaction() as session:
        return await handle_inbound(session, items)


async def opt_out_events(db: Database, contact_id: int) -> list[str]:
    async with db.session(write=False) as session:
        rows = await session.execute(
            select(OptOutEvent.action)
            .where(OptOutEvent.contact_id == contact_id)
            .order_by(OptOutEvent.id)
        )
        return list(rows.scalars())


async def inbound_events(db: Database) -> int:
    async with db.session(write=False) as session:
        return int((await session.execute(select(func.count(InboundEvent.id)))).scalar_one())


class TestFingerprint:
    def test_a_redelivery_under_another_sequence_number_is_the_same(self) -> None:
        assert mo_fingerprint(deliver("STOP", sequence=7)) == mo_fingerprint(
            deliver("STOP", sequence=8)
        )
        assert mo_fingerprint(deliver("STOP", source="33611111111")) == mo_fingerprint(
            deliver("STOP", source="+33611111111")
        )

    def test_addresses_coding_and_payload_tell_messages_apart(self) -> None:
        base = mo_fingerprint(deliver("STOP"))
        assert mo_fingerprint(deliver("STOP", source="+33622222222")) != base
        assert mo_fingerprint(deliver("STOP", destination="12346")) != base
        assert mo_fingerprint(deliver("STOP ")) != base
        ucs2 = deliver("STOP")
        ucs2.data_coding = 0x08
        assert mo_fingerprint(ucs2) != base

    def test_concatenation_reference_and_part_are_part_of_it(self) -> None:
        def udh(ref: int, part: int) -> str:
            pdu = deliver("x", esm_class=p.ESM_UDHI)
            pdu.short_message = bytes((5, 0, 3, ref, 2, part)) + b"STOP"
            return mo_fingerprint(pdu)

        assert udh(1, 1) == udh(1, 1)
        assert len({udh(1, 1), udh(1, 2), udh(2, 1)}) == 3

        def sar(ref: int, part: int) -> str:
            tlvs = {
                p.Tag.SAR_MSG_REF_NUM: p.tlv_u16(ref),
                p.Tag.SAR_TOTAL_SEGMENTS: p.tlv_u8(2),
                p.Tag.SAR_SEGMENT_SEQNUM: p.tlv_u8(part),
            }
            return mo_fingerprint(deliver("STOP", tlvs=tlvs))

        assert len({sar(1, 1), sar(1, 2), sar(2, 1), mo_fingerprint(deliver("STOP"))}) == 4

    def test_no_field_bleeds_into_the_next(self) -> None:
        assert mo_fingerprint(deliver("2STOP", destination="1234")) != mo_fingerprint(
            deliver("STOP", destination="12342")
        )


class TestRedeliveryWindow:
    async def test_a_redelivery_across_a_slice_boundary_is_handled_once(
        self, api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(api.db, account.id, PHONE)
        first = await handle(api.db, [mo("STOP", T0)])
        again = await handle(api.db, [mo("STOP", T0 + timedelta(seconds=20))])
        assert (first["optedOut"], first["duplicates"]) == (1, 0)
        assert (again["optedOut"], again["duplicates"]) == (0, 1)
        assert await opt_out_events(api.db, contact) == ["out"]

    async def test_the_same_stop_after_the_window_is_heard(
        self, api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(api.db, account.id, PHONE)
        await handle(api.db, [mo("STOP", T0)])
        await handle(api.db, [mo("START", T0 + timedelta(hours=1))])
        last = await handle(api.db, [mo("STOP", T0 + timedelta(days=1))])
        assert last == {"optedOut": 1, "optedIn": 0, "replies": 0, "duplicates": 0}
        assert await opt_out_events(api.db, contact) == ["out", "in", "out"]
        at_the_edge = await handle(api.db, [mo("STOP", T0 + timedelta(days=1) + REDELIVERY_WINDOW)])
        assert at_the_edge["duplicates"] == 0  # stored and handled (already opted out)
        assert await inbound_events(api.db) == 4

    async def test_stop_start_stop_within_the_window_ends_opted_out(
        self, api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(api.db, account.id, PHONE)
        for i, text in enumerate(["STOP", "START", "STOP"]):
            counts = await handle(api.db, [mo(text, T0 + timedelta(minutes=i))])
            assert counts["duplicates"] == 0
        assert await opt_outs(api.db, contact) == ["sms"]
        assert await opt_out_events(api.db, contact) == ["out", "in", "out"]

    async def test_other_phones_and_destinations_are_other_messages(
        self, api: Api, account: AccountClient
    ) -> None:
        await add_contact(api.db, account.id, PHONE)
        counts = await handle(
            api.db,
            [
                mo("STOP", T0),
                mo("STOP", T0, source="+33622222222"),
                mo("STOP", T0, destination="12346"),
            ],
        )
        assert counts["duplicates"] == 0
        assert await inbound_events(api.db) == 3

    async def test_copies_racing_in_two_transactions_are_one(
        self, api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(api.db, account.id, PHONE)
        async with api.db.transaction() as session:
            assert (await handle_inbound(session, [mo("STOP", T0)]))["optedOut"] == 1
            # The copy another worker got waits on this row (PostgreSQL: the unique key; it
            # did not see the row) or on the writer lock (SQLite) until this commits.
            other = asyncio.create_task(handle(api.db, [mo("STOP", T0)]))
            await asyncio.sleep(0.5)
            assert not other.done()
        assert (await other)["duplicates"] == 1
        assert await opt_out_events(api.db, contact) == ["out"]


class CountingSink:
    """Stores inbound messages as the delivery domain's sink does, adding up the counts."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.totals: dict[str, int] = {}
        self.batches = 0

    async def receipts(self, items: Sequence[Receipt]) -> None:
        pass

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        async with self.db.transaction() as session:
            counts = await handle_inbound(session, items)
        for key, value in counts.items():
            self.totals[key] = self.totals.get(key, 0) + value
        self.batches += 1

    async def wait_for(self, **counts: int) -> None:
        async with asyncio.timeout(10):
            while any(self.totals.get(k, 0) < v for k, v in counts.items()):
                await asyncio.sleep(0.02)


@pytest.fixture
async def replying(api: Api) -> AccountClient:
    """An account with credits that messaged PHONE, which has a contact there: a STOP is
    answered (charged) and opts the contact out."""
    r = await api.admin("PUT", "/admin/rates", json={"rates": RATES})
    assert r.status_code == 200, r.text
    account = await api.new_account("acme", credits=10)
    r = await account.post("/contacts", json={"phone": PHONE})
    assert r.status_code == 201, r.text
    await messaged(api.db, account)
    return account


def provider_for(smsc: Smsc, clock: Callable[[], datetime] | None = None) -> SmppProvider:
    settings = Settings(
        smpp_host="127.0.0.1",
        smpp_port=smsc.port,
        smpp_system_id="clarion",
        smpp_password="secret",
        smpp_source_addr="Clarion",
    )
    provider = SmppProvider(settings, clock=clock) if clock else SmppProvider(settings)
    provider.client.backoff_initial = 0.05
    return provider


async def history(account: AccountClient) -> list[tuple[str, str]]:
    [contact] = (await account.get("/contacts")).json()["items"]
    items = (await account.get(f"/contacts/{contact['id']}/history")).json()["items"]
    return [(h["kind"], h["source"]) for h in items]


class TestOverTheWire:
    async def test_an_mo_whose_resp_is_lost_is_redelivered_and_handled_once(
        self, api: Api, replying: AccountClient
    ) -> None:
        sink = CountingSink(api.db)
        async with Smsc() as smsc:
            provider = provider_for(smsc)
            await provider.start(sink)
            try:
                smsc.lose_mo_resps = 1  # the connection is cut as the resp arrives
                smsc.send_mo(PHONE, "STOP")
                await sink.wait_for(duplicates=1)
                async with asyncio.timeout(10):
                    while not (smsc.bound_sessions and smsc.bound_sessions[0].acks):
                        await asyncio.sleep(0.02)
                assert smsc.redelivered == 1 and smsc.bind_count == 2
                assert list(smsc.bound_sessions[0].acks.values()) == [p.Status.ESME_ROK]
            finally:
                await provider.close()
        assert sink.totals == {"optedOut": 1, "optedIn": 0, "replies": 1, "duplicates": 1}
        assert await history(replying) == [("opt_out", "inbound")]
        assert len(await replies(api.db)) == 1

    async def test_two_stops_a_day_apart_are_both_handled(
        self, api: Api, replying: AccountClient
    ) -> None:
        now = [T0]
        sink = CountingSink(api.db)
        async with Smsc() as smsc:
            provider = provider_for(smsc, clock=lambda: now[0])
            await provider.start(sink)
            try:
                smsc.send_mo(PHONE, "STOP")
                await sink.wait_for(replies=1)
                now[0] = T0 + timedelta(days=1)
                smsc.send_mo(PHONE, "STOP")
                await sink.wait_for(replies=2)
            finally:
                await provider.close()
        assert sink.totals == {"optedOut": 1, "optedIn": 0, "replies": 2, "duplicates": 0}
        assert len(await replies(api.db)) == 2
        async with api.db.session(write=False) as session:
            stamps = (
                await session.execute(select(InboundEvent.received_at).order_by(InboundEvent.id))
            ).scalars()
            assert list(stamps) == [T0, T0 + timedelta(days=1)]
