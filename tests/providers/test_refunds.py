"""Cost truth: a charged message that its provider then reports failed and does not bill
(WhatsApp per delivered message, e.g. error 131049; Twilio `canceled`) is refunded through
the ledger in the receipt's transaction, once; the campaign's cost says so."""

from typing import Any

from sqlalchemy import select, update

from clarion.accounts import ledger
from clarion.accounts.models import Account, CreditLedger
from clarion.campaigns.models import Campaign
from clarion.db.session import Database
from clarion.delivery.service import apply_parked
from clarion.messages.models import Message
from tests.conftest import AccountClient, Api, AppFactory, assert_ledger_consistent
from tests.providers.test_twilio import PUBLIC as TWILIO_PUBLIC
from tests.providers.test_twilio import SID, TOKEN
from tests.providers.test_twilio import signed as twilio_signed
from tests.providers.test_whatsapp import SECRET, change, signed

PRICE = 785  # 0.0785 credit


async def charged_message(
    db: Database,
    account_id: int,
    provider: str,
    pmid: str,
    channel: str,
    *,
    status: str = "sent",
) -> tuple[int, int]:
    """A campaign message accepted by `provider` and charged PRICE from its reservation, as
    the dispatcher leaves it: (campaign id, message id)."""
    async with db.transaction() as session:
        campaign = Campaign(
            account_id=account_id,
            name="c",
            channel=channel,
            status="sending",
            recipients=1,
            reserved=0,
            spent=PRICE,
            **{status: 1},
        )
        session.add(campaign)
        await session.flush()
        await ledger.reserve(session, account_id, campaign.id, PRICE)
        assert await ledger.charge(session, account_id, campaign.id, PRICE, from_reserved=PRICE)
        message = Message(
            campaign_id=campaign.id,
            account_id=account_id,
            contact_id=1,
            phone="+33612345678",
            country="FR",
            channel=channel,
            status=status,
            provider=provider,
            provider_message_id=pmid,
            units=1,
            price=PRICE,
        )
        session.add(message)
        await session.flush()
        return campaign.id, message.id


async def balance(db: Database, account_id: int) -> int:
    async with db.session(write=False) as session:
        account = await session.get(Account, account_id, populate_existing=True)
        assert account is not None
        return account.balance


async def refunds(db: Database, account_id: int) -> list[tuple[int | None, int]]:
    async with db.session(write=False) as session:
        rows = await session.execute(
            select(CreditLedger.campaign_id, CreditLedger.balance_delta).where(
                CreditLedger.account_id == account_id, CreditLedger.kind == "refund"
            )
        )
        return [(a, b) for a, b in rows]


def wa_status(pmid: str, status: str, code: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": pmid, "status": status, "timestamp": "1764226800"}
    if code is not None:
        item["errors"] = [{"code": code, "title": "Message failed to send"}]
    return change({"messaging_product": "whatsapp", "statuses": [item]})


async def post_whatsapp(api: Api, payload: dict[str, Any]) -> None:
    body, headers = signed(payload)
    response = await api.client.post("/webhooks/whatsapp", content=body, headers=headers)
    assert response.status_code == 200, response.text


class TestWhatsAppRefunds:
    async def test_a_failure_after_acceptance_is_refunded_once(
        self, make_api: AppFactory, account: AccountClient
    ) -> None:
        api = await make_api(whatsapp_provider="cloud", whatsapp_app_secret=SECRET)
        before = await balance(api.db, account.id)
        cid, _ = await charged_message(api.db, account.id, "cloud", "wamid.X", "whatsapp")
        assert await balance(api.db, account.id) == before - PRICE

        await post_whatsapp(api, wa_status("wamid.X", "failed", 131049))
        await post_whatsapp(api, wa_status("wamid.X", "failed", 131049))  # Meta retries

        assert await balance(api.db, account.id) == before
        assert await refunds(api.db, account.id) == [(cid, PRICE)]
        got = (await account.get(f"/campaigns/{cid}")).json()
        assert got["cost"]["spent"] == 0 and got["stats"]["failed"] == 1
        message = (await account.get(f"/campaigns/{cid}/messages")).json()["items"][0]
        assert (message["status"], message["errorCode"], message["price"]) == (
            "failed",
            "131049",
            0,
        )
        await assert_ledger_consistent(api.db, account.id)

    async def test_a_delivered_message_stays_charged(
        self, make_api: AppFactory, account: AccountClient
    ) -> None:
        api = await make_api(whatsapp_provider="cloud", whatsapp_app_secret=SECRET)
        before = await balance(api.db, account.id)
        cid, _ = await charged_message(api.db, account.id, "cloud", "wamid.Y", "whatsapp")
        await post_whatsapp(api, wa_status("wamid.Y", "delivered"))
        await post_whatsapp(api, wa_status("wamid.Y", "failed", 131049))  # too late: no change
        assert await balance(api.db, account.id) == before - PRICE
        assert await refunds(api.db, account.id) == []
        assert (await account.get(f"/campaigns/{cid}")).json()["cost"]["spent"] == PRICE / 10_000
        await assert_ledger_consistent(api.db, account.id)

    async def test_a_parked_failure_is_refunded_when_it_applies(
        self, make_api: AppFactory, account: AccountClient
    ) -> None:
        api = await make_api(whatsapp_provider="cloud", whatsapp_app_secret=SECRET)
        before = await balance(api.db, account.id)
        cid, mid = await charged_message(
            api.db, account.id, "cloud", "wamid.Z", "whatsapp", status="sending"
        )
        await post_whatsapp(api, wa_status("wamid.Z", "failed", 131049))  # before our record
        assert await refunds(api.db, account.id) == []
        async with api.db.transaction() as session:
            await session.execute(update(Message).where(Message.id == mid).values(status="sent"))
            await session.execute(
                update(Campaign).where(Campaign.id == cid).values(sending=0, sent=1)
            )
            assert await apply_parked(session, "cloud", ["wamid.Z"]) == 1
        assert await balance(api.db, account.id) == before
        assert await refunds(api.db, account.id) == [(cid, PRICE)]
        await assert_ledger_consistent(api.db, account.id)


class TestTwilioRefunds:
    async def test_canceled_is_refunded_undelivered_is_not(
        self, make_api: AppFactory, account: AccountClient
    ) -> None:
        api = await make_api(
            sms_provider="twilio",
            twilio_account_sid=SID,
            twilio_auth_token=TOKEN,
            twilio_from="+15005550006",
            public_url=TWILIO_PUBLIC,
        )
        before = await balance(api.db, account.id)
        cancelled, _ = await charged_message(api.db, account.id, "twilio", "SM1", "sms")
        await charged_message(api.db, account.id, "twilio", "SM2", "sms")
        for form in (
            {"MessageSid": "SM1", "MessageStatus": "canceled"},
            {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30005"},
        ):
            response = await api.client.post(
                "/webhooks/twilio", data=form, headers=twilio_signed(form)
            )
            assert response.status_code == 200
        assert await balance(api.db, account.id) == before - PRICE
        assert await refunds(api.db, account.id) == [(cancelled, PRICE)]
        await assert_ledger_consistent(api.db, account.id)
