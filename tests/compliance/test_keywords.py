"""Inbound keywords on the providers' webhooks: matching, opt-out and opt-in per account,
the reply (once per inbound message, charged to the account that last messaged the phone,
sent by the engine as a message of no campaign) and WhatsApp's 131050."""

import hashlib
import hmac
from dataclasses import replace
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from clarion.accounts.models import CreditLedger
from clarion.audience.models import Contact
from clarion.compliance.settings import DEFAULTS
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.delivery.inbound import action_of, normalize
from clarion.messages.models import Message
from clarion.providers.base import InboundMessage
from clarion.sending.dispatcher import Dispatcher
from tests.conftest import AccountClient, Api, AppFactory, assert_ledger_consistent
from tests.sending.conftest import FakeProvider, seed_campaign

PHONE = "+33611111111"
TWILIO_NUMBER = "+15005550006"
TOKEN = "twilio-auth-token"
PUBLIC = "https://clarion.example.com"
META_SECRET = "meta-app-secret"
RATES = [
    {"channel": "sms", "country": "FR", "price": 0.07},
    {"channel": "whatsapp", "country": "FR", "category": "utility", "price": 0.02},
]


def msg(text: str) -> InboundMessage:
    return InboundMessage(provider="twilio", channel="sms", from_phone=PHONE, text=text)


class TestMatching:
    @pytest.mark.parametrize(
        ("text", "action"),
        [
            ("STOP", "out"),
            ("stop", "out"),
            ("  Stop \n", "out"),
            ("stop!", "out"),
            ("Stop.", "out"),
            ("STOP !!", "out"),
            ("ARRÊT", "out"),
            ("arrêt ?", "out"),
            ("Baja", "out"),
            ("\uff33\uff34\uff2f\uff30", "out"),  # fullwidth STOP (NFKD)
            ("start", "in"),
            ("Yes!", "in"),
            ("help?", "help"),
            ("INFO", "help"),
            ("stop please", None),
            ("please stop", None),
            ("s t o p", None),
            ("stopp", None),
            ("!stop", None),
            ("", None),
            ("   ", None),
            ("!!!", None),
        ],
    )
    def test_whole_message_trimmed_case_accents_punctuation(
        self, text: str, action: str | None
    ) -> None:
        assert action_of(msg(text), DEFAULTS) == action

    def test_keywords_are_the_accounts(self) -> None:
        settings = replace(DEFAULTS, opt_out_keywords=("Désinscrire",), help_keywords=())
        assert action_of(msg("desinscrire"), settings) == "out"
        assert action_of(msg("STOP"), settings) is None
        assert action_of(msg("help"), settings) is None

    def test_normalize(self) -> None:
        assert normalize("  Crème   Brûlée!? ") == "creme brulee"


def twilio_form(sid: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "From": PHONE,
        "To": TWILIO_NUMBER,
        "AccountSid": "AC1",
    }


async def post_twilio(api: Api, form: dict[str, str]) -> Any:
    url = f"{PUBLIC}/webhooks/twilio"
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    r = await api.client.post(
        "/webhooks/twilio", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert r.status_code == 200, r.text
    return r


@pytest.fixture
async def tw_api(make_api: AppFactory) -> Api:
    api = await make_api(
        sms_provider="twilio",
        twilio_account_sid="AC1",
        twilio_auth_token=TOKEN,
        twilio_from=TWILIO_NUMBER,
        public_url=PUBLIC,
        whatsapp_provider="cloud",
        whatsapp_app_secret=META_SECRET,
    )
    r = await api.admin("PUT", "/admin/rates", json={"rates": RATES})
    assert r.status_code == 200, r.text
    return api


async def contact_of(account: AccountClient) -> dict[str, Any]:
    r = await account.post("/contacts", json={"phone": PHONE})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def messaged(db: Database, account: AccountClient, channel: str = "sms") -> None:
    """The account messaged the phone (a message handed to a provider)."""
    async with db.transaction() as s:
        now = utcnow()
        s.add(
            Message(
                campaign_id=None,
                account_id=account.id,
                contact_id=None,
                phone=PHONE,
                country="FR",
                channel=channel,
                status="delivered",
                sender="Clarion",
                text="Hello",
                sent_at=now,
                next_attempt_at=now,
            )
        )


async def replies(db: Database) -> list[Message]:
    async with db.session(write=False) as s:
        rows = await s.execute(
            select(Message).where(Message.campaign_id.is_(None), Message.status != "delivered")
        )
        return list(rows.scalars())


async def charges(db: Database, account_id: int) -> list[int]:
    async with db.session(write=False) as s:
        rows = await s.execute(
            select(CreditLedger.balance_delta).where(
                CreditLedger.account_id == account_id, CreditLedger.kind == "charge"
            )
        )
        return list(rows.scalars())


async def send_all(db: Database, settings: Settings, sms: FakeProvider) -> None:
    dispatcher = Dispatcher(settings, db, {"sms": sms}, "test-worker")
    batch = await dispatcher.claim()
    assert batch, "nothing claimed"
    await dispatcher.run_batch(batch)


class TestReplies:
    async def test_stop_opts_out_and_is_answered_once_when_the_webhook_is_retried(
        self, tw_api: Api, settings: Settings
    ) -> None:
        account = await tw_api.new_account("acme", credits=10)
        other = await tw_api.new_account("other", credits=10)
        contact = await contact_of(account)
        elsewhere = await contact_of(other)
        await messaged(tw_api.db, account)
        for _ in range(2):  # Twilio retries the webhook: the same MessageSid
            await post_twilio(tw_api, twilio_form("SM100", "Arrêt!"))
        assert (await account.get(f"/contacts/{contact['id']}")).json()["optOuts"] == ["sms"]
        assert (await other.get(f"/contacts/{elsewhere['id']}")).json()["optOuts"] == ["sms"]
        history = (await account.get(f"/contacts/{contact['id']}/history")).json()["items"]
        assert [(h["kind"], h["source"], h["detail"]) for h in history] == [
            ("opt_out", "inbound", "Arrêt!")
        ]
        assert history[0]["actor"] == {"type": "provider", "id": None, "name": "twilio"}
        [reply] = await replies(tw_api.db)
        assert (reply.account_id, reply.channel, reply.status) == (account.id, "sms", "queued")
        assert reply.text == DEFAULTS.opt_out_reply
        assert reply.sender == TWILIO_NUMBER
        assert reply.contact_id is None

        sms = FakeProvider("sms")
        await send_all(tw_api.db, settings, sms)
        [sent] = sms.sent
        assert (sent.to, sent.sender, sent.text) == (PHONE, TWILIO_NUMBER, DEFAULTS.opt_out_reply)
        [reply] = await replies(tw_api.db)
        assert (reply.status, reply.units, reply.price) == ("sent", 1, 700)
        assert await charges(tw_api.db, account.id) == [-700]
        assert await charges(tw_api.db, other.id) == []
        await assert_ledger_consistent(tw_api.db, account.id)

    async def test_start_and_help_replies_and_a_null_reply_sends_nothing(self, tw_api: Api) -> None:
        account = await tw_api.new_account("acme", credits=10)
        contact = await contact_of(account)
        await messaged(tw_api.db, account)
        r = await account.put(
            "/account/compliance", json={"helpReply": "Acme: call 0800.", "optInReply": None}
        )
        assert r.status_code == 200, r.text
        await post_twilio(tw_api, twilio_form("SM1", "STOP"))
        await post_twilio(tw_api, twilio_form("SM2", "start"))
        await post_twilio(tw_api, twilio_form("SM3", "Help"))
        await post_twilio(tw_api, twilio_form("SM4", "stop please"))
        assert (await account.get(f"/contacts/{contact['id']}")).json()["optOuts"] == []
        texts = sorted(m.text or "" for m in await replies(tw_api.db))
        assert texts == sorted(["Acme: call 0800.", DEFAULTS.opt_out_reply or ""])

    async def test_no_reply_without_credits_or_without_an_account_that_messaged(
        self, tw_api: Api
    ) -> None:
        poor = await tw_api.new_account("poor", credits=0)
        await contact_of(poor)
        await post_twilio(tw_api, twilio_form("SM1", "STOP"))  # nobody messaged the phone
        assert await replies(tw_api.db) == []
        await messaged(tw_api.db, poor)
        await post_twilio(tw_api, twilio_form("SM2", "HELP"))
        await poor.put("/account/compliance", json={"helpReply": "Help text"})
        await post_twilio(tw_api, twilio_form("SM3", "HELP"))  # cannot pay for it
        assert await replies(tw_api.db) == []
        assert await charges(tw_api.db, poor.id) == []
        await assert_ledger_consistent(tw_api.db, poor.id)


def meta_signed(payload: Any) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    digest = hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


class TestWhatsApp:
    async def test_131050_opts_the_contact_out_of_whatsapp(self, tw_api: Api) -> None:
        account = await tw_api.new_account("acme", credits=10)
        contact = await contact_of(account)
        campaign_id = await seed_campaign(tw_api.db, account.id, [], channel="whatsapp")
        async with tw_api.db.transaction() as s:
            contact_id = (
                await s.execute(select(Contact.id).where(Contact.account_id == account.id))
            ).scalar_one()
            now = utcnow()
            s.add(
                Message(
                    campaign_id=campaign_id,
                    account_id=account.id,
                    contact_id=contact_id,
                    phone=PHONE,
                    country="FR",
                    channel="whatsapp",
                    status="sent",
                    provider="cloud",
                    provider_message_id="wamid.1",
                    sent_at=now,
                    next_attempt_at=now,
                )
            )
        status = {
            "id": "wamid.1",
            "status": "failed",
            "timestamp": "1700000000",
            "recipient_id": PHONE.lstrip("+"),
            "errors": [{"code": 131050, "title": "User stopped marketing messages"}],
        }
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "W", "changes": [{"field": "messages", "value": {"statuses": [status]}}]}
            ],
        }
        for _ in range(2):
            body, headers = meta_signed(payload)
            r = await tw_api.client.post("/webhooks/whatsapp", content=body, headers=headers)
            assert r.status_code == 200, r.text
        got = (await account.get(f"/contacts/{contact['id']}")).json()
        assert got["optOuts"] == ["whatsapp"]
        history = (await account.get(f"/contacts/{contact['id']}/history")).json()["items"]
        assert [(h["kind"], h["channel"], h["source"]) for h in history] == [
            ("opt_out", "whatsapp", "provider")
        ]
        assert history[0]["detail"].startswith("131050")
