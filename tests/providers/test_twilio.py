"""Twilio SMS: the adapter against a fake Twilio API, callbacks through the app."""

import base64
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from multidict import MultiDict
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from clarion.config import Settings
from clarion.delivery.models import ReceiptEvent
from clarion.providers.base import InboundMessage, OutboundMessage, Outcome, Receipt
from clarion.providers.twilio import TwilioProvider, compute_signature, valid_signature
from tests.conftest import AccountClient, Api, AppFactory
from tests.providers.conftest import (
    FakeServer,
    RecordingSink,
    add_contact,
    add_sent_message,
    message_state,
    opt_outs,
)

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token"
PUBLIC = "https://clarion.example.com"


def sms(i: int, to: str = "+33612345678", text: str = "Hi") -> OutboundMessage:
    return OutboundMessage(id=i, channel="sms", to=to, sender=None, text=text)


@pytest.fixture
async def twilio_api(http_server: Callable[..., Awaitable[FakeServer]]) -> FakeServer:
    """Answers by the recipient: ...0429 HTTP 429, ...9429 error 20429, ...1211 invalid
    number (400, 21211), ...0500 HTTP 500, ...0030 accepted but failed at once."""

    async def messages(request: web.Request) -> web.Response:
        form = await request.post()
        to = str(form["To"])
        if to.endswith("0429"):
            return web.json_response(
                {"code": 20429, "message": "Too Many Requests"},
                status=429,
                headers={"Retry-After": "2"},
            )
        if to.endswith("9429"):
            return web.json_response({"code": 20429, "message": "Too Many Requests"}, status=400)
        if to.endswith("1211"):
            return web.json_response(
                {
                    "code": 21211,
                    "message": f"The 'To' number {to} is not a valid phone number.",
                    "more_info": "https://www.twilio.com/docs/errors/21211",
                    "status": 400,
                },
                status=400,
            )
        if to.endswith("0500"):
            return web.Response(status=500)
        sid = "SM" + to[-8:].rjust(32, "0")
        status = "failed" if to.endswith("0030") else "queued"
        return web.json_response(
            {"sid": sid, "status": status, "to": to, "error_code": None}, status=201
        )

    return await http_server([("POST", f"/2010-04-01/Accounts/{SID}/Messages.json", messages)])


def settings_for(server: FakeServer, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "sms_provider": "twilio",
        "twilio_api_url": server.url,
        "twilio_account_sid": SID,
        "twilio_auth_token": TOKEN,
        "twilio_from": "+15005550006",
        "public_url": PUBLIC,
        **extra,
    }
    return Settings(**values)


async def run(settings: Settings, batch: list[OutboundMessage]) -> dict[int, Any]:
    provider = TwilioProvider(settings)
    await provider.start(RecordingSink())
    try:
        return {r.message_id: r for r in await provider.submit(batch)}
    finally:
        await provider.close()


class TestSend:
    async def test_form_encoded_request(self, twilio_api: FakeServer) -> None:
        results = await run(settings_for(twilio_api), [sms(1, text="Prix: 5€ & plus")])
        assert results[1].outcome == Outcome.ACCEPTED
        assert results[1].provider_message_id == "SM" + "12345678".rjust(32, "0")
        [request] = twilio_api.requests
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        auth = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
        assert auth == f"{SID}:{TOKEN}"
        assert dict(parse_qsl(request.body.decode())) == {
            "To": "+33612345678",
            "From": "+15005550006",
            "Body": "Prix: 5€ & plus",
            "StatusCallback": f"{PUBLIC}/webhooks/twilio",
        }

    async def test_messaging_service_instead_of_from(self, twilio_api: FakeServer) -> None:
        settings = settings_for(twilio_api, twilio_from=None, twilio_messaging_service_sid="MG1")
        await run(settings, [sms(1)])
        form = dict(parse_qsl(twilio_api.requests[0].body.decode()))
        assert form["MessagingServiceSid"] == "MG1" and "From" not in form

    async def test_messaging_service_keeps_the_campaign_sender(
        self, twilio_api: FakeServer
    ) -> None:
        """CreateMessage (twilio-oai, api_v2010) takes `From` with `MessagingServiceSid`."""
        settings = settings_for(twilio_api, twilio_from=None, twilio_messaging_service_sid="MG1")
        named = OutboundMessage(1, "sms", "+33612345678", "Acme", "Hi")
        await run(settings, [named, sms(2)])
        forms = {
            f["To"] + f.get("From", "-"): f
            for f in (dict(parse_qsl(r.body.decode())) for r in twilio_api.requests)
        }
        assert set(forms) == {"+33612345678Acme", "+33612345678-"}
        assert {f["MessagingServiceSid"] for f in forms.values()} == {"MG1"}

    def test_encoded_form_is_the_form(self) -> None:
        for sender in ({"twilio_from": "+15005550006"}, {"twilio_messaging_service_sid": "MG1"}):
            provider = TwilioProvider(
                Settings(twilio_account_sid=SID, twilio_auth_token=TOKEN, **sender)
            )
            for text in ("Hi", "a&b=c+d %€ 😀\n", ""):
                message = OutboundMessage(1, "sms", "+33612345678", "Acme", text)
                body = provider.encode_form(message).decode()
                assert dict(parse_qsl(body, keep_blank_values=True)) == provider.form(message)
        no_from = TwilioProvider(Settings(twilio_account_sid=SID, twilio_auth_token=TOKEN))
        message = OutboundMessage(1, "sms", "+33612345678", "Acme", "Hi")
        assert dict(parse_qsl(no_from.encode_form(message).decode()))["From"] == "Acme"

    def test_campaign_sender_wins_over_the_configured_from(self) -> None:
        provider = TwilioProvider(
            Settings(twilio_account_sid=SID, twilio_auth_token=TOKEN, twilio_from="+15005550006")
        )
        plain = OutboundMessage(1, "sms", "+33612345678", None, "Hi")
        named = OutboundMessage(2, "sms", "+33612345678", "Acme", "Hi")
        for message, expected in (
            (plain, "+15005550006"),
            (named, "Acme"),
            (plain, "+15005550006"),
        ):
            body = dict(parse_qsl(provider.encode_form(message).decode()))
            assert body["From"] == expected

    async def test_errors_are_mapped(self, twilio_api: FakeServer) -> None:
        results = await run(
            settings_for(twilio_api),
            [
                sms(1, "+330429"),
                sms(2, "+339429"),
                sms(3, "+331211"),
                sms(4, "+330500"),
                sms(5, "+330030"),
            ],
        )
        assert results[1].outcome == Outcome.THROTTLED and results[1].retry_after == 2
        assert results[2].outcome == Outcome.THROTTLED and results[2].error_code == "20429"
        assert results[3].outcome == Outcome.REFUSED and results[3].error_code == "21211"
        assert "not a valid phone number" in (results[3].error_message or "")
        assert results[4].outcome == Outcome.RETRY
        assert results[5].outcome == Outcome.REFUSED


class TestSignature:
    DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
    DOC_PARAMS = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }

    def test_twilio_documented_example(self) -> None:
        # The example of Twilio's "Webhooks security" page (auth token 12345).
        signature = compute_signature("12345", self.DOC_URL, self.DOC_PARAMS.items())
        assert signature == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

    @pytest.mark.parametrize(
        "params",
        [
            [("Body", "STOP"), ("From", "+33611111111"), ("AccountSid", SID)],
            [("MessageStatus", "delivered"), ("MessageSid", "SM1"), ("ErrorCode", "")],
            [("a", "2"), ("a", "1"), ("b", "é & ?"), ("A", "x")],
        ],
    )
    def test_matches_the_official_validator(self, params: list[tuple[str, str]]) -> None:
        url = f"{PUBLIC}/webhooks/twilio"
        ours = compute_signature(TOKEN, url, params)
        validator = RequestValidator(TOKEN)
        multi = MultiDict(params)  # the validator reads repeated names with getall()
        assert validator.validate(url, multi, ours)
        theirs = validator.compute_signature(url, multi)
        assert valid_signature(TOKEN, url, params, theirs)
        assert not valid_signature(TOKEN, url + "x", params, theirs)


def signed(params: dict[str, str], url: str = f"{PUBLIC}/webhooks/twilio") -> dict[str, str]:
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    return {"X-Twilio-Signature": signature}


@pytest.fixture
async def tw_api(make_api: AppFactory) -> Api:
    return await make_api(
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from="+15005550006",
        public_url=PUBLIC,
    )


class TestCallbacks:
    async def test_status_callbacks_become_receipts(self, tw_api: Api) -> None:
        for status, code in (("sent", ""), ("delivered", ""), ("undelivered", "30003")):
            form = {
                "MessageSid": "SM42",
                "MessageStatus": status,
                "AccountSid": SID,
                "To": "+33612345678",
                "ErrorCode": code,
            }
            if not code:
                del form["ErrorCode"]
            response = await tw_api.client.post("/webhooks/twilio", data=form, headers=signed(form))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/xml")
        async with tw_api.db.session(write=False) as session:
            events = list(
                (await session.execute(select(ReceiptEvent).order_by(ReceiptEvent.id))).scalars()
            )
        assert [(e.provider, e.provider_message_id, e.status, e.error_code) for e in events] == [
            ("twilio", "SM42", "sent", None),
            ("twilio", "SM42", "delivered", None),
            ("twilio", "SM42", "failed", "30003"),
        ]

    async def test_callbacks_move_the_message(self, tw_api: Api, account: AccountClient) -> None:
        delivered = await add_sent_message(tw_api.db, account.id, "twilio", "SM1")
        failed = await add_sent_message(tw_api.db, account.id, "twilio", "SM2")
        for form in (
            {"MessageSid": "SM1", "MessageStatus": "delivered"},
            {"MessageSid": "SM1", "MessageStatus": "sent"},  # late: never moves backwards
            {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30005"},
        ):
            response = await tw_api.client.post("/webhooks/twilio", data=form, headers=signed(form))
            assert response.status_code == 200
        assert await message_state(tw_api.db, delivered) == ("delivered", None)
        assert await message_state(tw_api.db, failed) == ("failed", "30005")

    async def test_canceled_and_partially_delivered_fail_with_their_code(
        self, tw_api: Api, account: AccountClient
    ) -> None:
        canceled = await add_sent_message(tw_api.db, account.id, "twilio", "SM7")
        partial = await add_sent_message(tw_api.db, account.id, "twilio", "SM8")
        for form in (
            {"MessageSid": "SM7", "MessageStatus": "canceled"},
            {"MessageSid": "SM8", "MessageStatus": "partially_delivered"},
        ):
            response = await tw_api.client.post("/webhooks/twilio", data=form, headers=signed(form))
            assert response.status_code == 200
        assert await message_state(tw_api.db, canceled) == ("failed", "canceled")
        assert await message_state(tw_api.db, partial) == ("failed", "partially_delivered")

    async def test_query_string_is_part_of_the_signed_url(self, tw_api: Api) -> None:
        form = {"MessageSid": "SM43", "MessageStatus": "delivered"}
        url = f"{PUBLIC}/webhooks/twilio?tenant=1"
        response = await tw_api.client.post(
            "/webhooks/twilio?tenant=1", data=form, headers=signed(form, url)
        )
        assert response.status_code == 200
        response = await tw_api.client.post(
            "/webhooks/twilio?tenant=2", data=form, headers=signed(form, url)
        )
        assert response.status_code == 401

    async def test_inbound_stop_then_start(self, tw_api: Api, account: AccountClient) -> None:
        other = await tw_api.new_account("other", credits=0)
        mine = await add_contact(tw_api.db, account.id, "+33611111111")
        theirs = await add_contact(tw_api.db, other.id, "+33611111111")
        bystander = await add_contact(tw_api.db, account.id, "+33622222222")
        stop = {
            "MessageSid": "SM9",
            "SmsStatus": "received",
            "From": "+33611111111",
            "To": "+15005550006",
            "Body": "Stop ",
        }
        response = await tw_api.client.post("/webhooks/twilio", data=stop, headers=signed(stop))
        assert response.status_code == 200
        assert await opt_outs(tw_api.db, mine) == ["sms"]
        assert await opt_outs(tw_api.db, theirs) == ["sms"]
        assert await opt_outs(tw_api.db, bystander) == []
        start = {**stop, "Body": "unstop", "MessageSid": "SM10"}  # each inbound has its own id
        response = await tw_api.client.post("/webhooks/twilio", data=start, headers=signed(start))
        assert response.status_code == 200
        assert await opt_outs(tw_api.db, mine) == []

    async def test_bad_signature_changes_nothing(self, tw_api: Api, account: AccountClient) -> None:
        contact = await add_contact(tw_api.db, account.id, "+33611111111")
        stop = {"MessageSid": "SM9", "From": "+33611111111", "Body": "STOP"}
        headers = signed({**stop, "Body": "HELLO"})
        response = await tw_api.client.post("/webhooks/twilio", data=stop, headers=headers)
        assert response.status_code == 401
        response = await tw_api.client.post("/webhooks/twilio", data=stop)
        assert response.status_code == 401
        status = {"MessageSid": "SM1", "MessageStatus": "delivered"}
        response = await tw_api.client.post(
            "/webhooks/twilio", data=status, headers={"X-Twilio-Signature": "AAAA"}
        )
        assert response.status_code == 401
        assert await opt_outs(tw_api.db, contact) == []
        async with tw_api.db.session(write=False) as session:
            assert (await session.execute(select(ReceiptEvent))).first() is None


class TestStrayNul:
    async def test_a_nul_from_the_provider_is_dropped_not_fatal(
        self, tw_api: Api, account: AccountClient
    ) -> None:
        message = await add_sent_message(tw_api.db, account.id, "twilio", "SM7")
        form = {
            "MessageSid": "SM7\x00",
            "MessageStatus": "undelivered",
            "ErrorCode": "300\x0005",
        }
        response = await tw_api.client.post("/webhooks/twilio", data=form, headers=signed(form))
        assert response.status_code == 200, response.text
        assert await message_state(tw_api.db, message) == ("failed", "30005")

    def test_receipts_and_inbound_messages_keep_only_storable_text(self) -> None:
        receipt = Receipt("p", "id\x00", "failed", "E\x00", "bad \ud800 news", raw="{}\x00")
        assert (receipt.provider_message_id, receipt.error_code) == ("id", "E")
        assert (receipt.error_message, receipt.raw) == ("bad ? news", "{}")
        inbound = InboundMessage("p", "sms", "+336\x00", "STOP \udfff")
        assert (inbound.from_phone, inbound.text) == ("+336", "STOP ?")
        assert Receipt("p", "é", "sent").provider_message_id == "é"
