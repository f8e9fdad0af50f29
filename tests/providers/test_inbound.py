"""Inbound opt-out keywords: matching, the database change, and SMPP MO end to end."""

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest
from sqlalchemy import select

from clarion.audience.models import OptOutEvent
from clarion.compliance.settings import DEFAULTS
from clarion.config import Settings
from clarion.db.session import Database
from clarion.delivery.inbound import action_of, handle_inbound
from clarion.providers.base import InboundMessage, Receipt
from clarion.providers.rbm import RbmUnsubscribe
from clarion.providers.smpp.provider import SmppProvider
from clarion.providers.smpp.smsc import Smsc
from tests.conftest import AccountClient, Api
from tests.providers.conftest import add_contact, opt_outs


def msg(text: str, channel: str = "sms", provider: str = "twilio") -> InboundMessage:
    return InboundMessage(provider=provider, channel=channel, from_phone="+33611111111", text=text)


class TestKeywords:
    @pytest.mark.parametrize(
        "text",
        ["STOP", "stop", "  Stop\n", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "STOP."],
    )
    def test_opt_out_words(self, text: str) -> None:
        assert action_of(msg(text), DEFAULTS) == "out"

    @pytest.mark.parametrize("text", ["START", " unstop "])
    def test_opt_in_words(self, text: str) -> None:
        assert action_of(msg(text), DEFAULTS) == "in"

    @pytest.mark.parametrize("text", ["please stop", "STOPP", "", "stop it", "STARTED"])
    def test_other_texts_are_not_keywords(self, text: str) -> None:
        assert action_of(msg(text), DEFAULTS) is None

    def test_the_list_is_configurable(self) -> None:
        settings = replace(DEFAULTS, opt_out_keywords=("ARRET",), opt_in_keywords=("REPRISE",))
        assert action_of(msg("arret"), settings) == "out"
        assert action_of(msg("stop"), settings) is None
        assert action_of(msg("Reprise"), settings) == "in"

    def test_rbm_unsubscribe_event_whatever_the_list(self) -> None:
        event = RbmUnsubscribe(provider="rbm", channel="rcs", from_phone="+1", text="UNSUBSCRIBE")
        assert action_of(event, replace(DEFAULTS, opt_out_keywords=("ARRET",))) == "out"


class TestHandleInbound:
    async def test_opt_out_records_channel_source_and_text(
        self, api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(api.db, account.id, "+33611111111")
        async with api.db.transaction() as session:
            counts = await handle_inbound(
                session, [msg(" Stop ", channel="whatsapp", provider="cloud")]
            )
        assert counts == {"optedOut": 1, "optedIn": 0, "replies": 0, "duplicates": 0}
        assert await opt_outs(api.db, contact) == ["whatsapp"]
        async with api.db.session(write=False) as session:
            [event] = (await session.execute(select(OptOutEvent))).scalars()
        assert (event.action, event.channel, event.source, event.detail) == (
            "out",
            "whatsapp",
            "inbound",
            " Stop ",
        )
        assert (event.actor_type, event.actor_name) == ("provider", "cloud")
        assert event.created_at is not None

    async def test_stop_then_start_in_one_batch_ends_opted_in(
        self, api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(api.db, account.id, "+33611111111")
        async with api.db.transaction() as session:
            await handle_inbound(session, [msg("STOP"), msg("hello"), msg("START")])
        assert await opt_outs(api.db, contact) == []

    async def test_unknown_phone_and_other_channels_are_untouched(
        self, api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(api.db, account.id, "+33611111111")
        async with api.db.transaction() as session:
            await handle_inbound(session, [msg("STOP", channel="rcs")])
            unknown = InboundMessage(
                provider="twilio", channel="sms", from_phone="+1999", text="STOP"
            )
            counts = await handle_inbound(session, [unknown])
            assert counts == {"optedOut": 0, "optedIn": 0, "replies": 0, "duplicates": 0}
        assert await opt_outs(api.db, contact) == ["rcs"]


class DbSink:
    """Stores inbound messages the way the delivery domain's sink does."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.stored = 0

    async def receipts(self, items: Sequence[Receipt]) -> None:
        pass

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        async with self.db.transaction() as session:
            await handle_inbound(session, items)
        self.stored += len(items)


class TestSmppMo:
    async def test_mo_stop_opts_out_of_sms(self, api: Api, account: AccountClient) -> None:
        contact = await add_contact(api.db, account.id, "+33611111111")
        sink = DbSink(api.db)
        async with Smsc() as smsc:
            provider = SmppProvider(
                Settings(
                    smpp_host="127.0.0.1",
                    smpp_port=smsc.port,
                    smpp_system_id="clarion",
                    smpp_password="secret",
                    smpp_source_addr="Clarion",
                )
            )
            await provider.start(sink)
            try:
                smsc.send_mo("+33611111111", "STOP")
                async with asyncio.timeout(10):
                    while sink.stored < 1:
                        await asyncio.sleep(0.02)
            finally:
                await provider.close()
        assert await opt_outs(api.db, contact) == ["sms"]
