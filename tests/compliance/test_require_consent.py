"""requireConsent: marketing campaigns leave out contacts without granted consent for the
channel (the estimate's `excluded.noConsent`, the materializer), and a recipient whose
consent is withdrawn after materializing is skipped (NO_CONSENT) at send time, costing
nothing and giving back what its campaign held for it."""

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from clarion.accounts.models import CreditLedger
from clarion.audience.consent import Wanted, set_consents
from clarion.audience.history import Cause
from clarion.audience.models import Contact
from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages.models import Message
from clarion.sending.dispatcher import Dispatcher
from clarion.sending.scheduler import tick
from tests.conftest import AccountClient, Api, assert_ledger_consistent
from tests.sending.conftest import (
    assert_partition,
    campaign,
    drain,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

RATES = [{"channel": "sms", "country": "FR", "price": 0.07}]


async def require_consent(account: AccountClient, on: bool = True) -> None:
    r = await account.put("/account/compliance", json={"requireConsent": on})
    assert r.status_code == 200, r.text


async def audience(account: AccountClient) -> int:
    """A list of five French contacts: granted, denied, never asked, granted on another
    channel only, and granted but opted out of sms."""
    r = await account.post("/lists", json={"name": "all"})
    list_id = int(r.json()["id"])
    rows = [
        {"phone": "+33611000001", "firstName": "A", "consent": {"sms": "granted"}},
        {"phone": "+33611000002", "firstName": "B", "consent": {"sms": "denied"}},
        {"phone": "+33611000003", "firstName": "C"},
        {"phone": "+33611000004", "firstName": "D", "consent": {"whatsapp": "granted"}},
        {"phone": "+33611000005", "firstName": "E", "consent": {"sms": "granted"}},
    ]
    r = await account.post(f"/lists/{list_id}/contacts", json={"contacts": rows})
    assert r.json()["added"] == 5, r.text
    members = (await account.get(f"/lists/{list_id}/contacts")).json()["items"]
    opted = next(m for m in members if m["phone"] == "+33611000005")
    await account.put(f"/contacts/{opted['id']}", json={"optOuts": ["sms"]})
    return list_id


async def estimate(account: AccountClient, list_id: int, text: str, purpose: str) -> Any:
    r = await account.post(
        "/campaigns",
        json={
            "name": "c",
            "channel": "sms",
            "message": {"text": text},
            "listIds": [list_id],
            "sender": "Clarion",
            "purpose": purpose,
        },
    )
    assert r.status_code == 201, r.text
    r = await account.post(f"/campaigns/{r.json()['id']}/calculateGoal")
    assert r.status_code == 200, r.text
    return r.json()


class TestEstimate:
    @pytest.mark.parametrize("text", ["Sale today", "Sale today {{firstName}}"])
    async def test_marketing_leaves_out_contacts_without_consent(
        self, api: Api, account: AccountClient, text: str
    ) -> None:
        await api.admin("PUT", "/admin/rates", json={"rates": RATES})
        list_id = await audience(account)
        before = await estimate(account, list_id, text, "marketing")
        assert before["recipients"] == 4
        assert before["excluded"]["noConsent"] == 0
        await require_consent(account)
        e = await estimate(account, list_id, text, "marketing")
        assert e["recipients"] == 1
        assert e["excluded"] == {"duplicates": 0, "optedOut": 1, "noConsent": 3, "invalid": 0}
        assert e["price"] == pytest.approx(0.07)
        transactional = await estimate(account, list_id, text, "transactional")
        assert transactional["recipients"] == 4
        assert transactional["excluded"]["noConsent"] == 0

    async def test_a_consent_change_reprices_the_stored_estimate(
        self, api: Api, account: AccountClient
    ) -> None:
        await api.admin("PUT", "/admin/rates", json={"rates": RATES})
        list_id = await audience(account)
        await require_consent(account)
        e = await estimate(account, list_id, "Sale", "marketing")
        members = (await account.get(f"/lists/{list_id}/contacts")).json()["items"]
        never_asked = next(m for m in members if m["phone"] == "+33611000003")
        await account.put(f"/contacts/{never_asked['id']}", json={"consent": {"sms": "granted"}})
        price = (await account.get(f"/campaigns/{e['campaignId']}/price")).json()
        assert price["recipients"] == 2


async def consent_of(db: Database, account_id: int, numbers: list[str], status: str) -> None:
    async with db.transaction() as s:
        ids = (
            await s.execute(
                select(Contact.id).where(
                    Contact.account_id == account_id, Contact.phone.in_(numbers)
                )
            )
        ).scalars()
        await set_consents(
            s, [Wanted(cid, "sms", status) for cid in ids], Cause.system("api", "test"), utcnow()
        )


class TestAtSendTime:
    async def test_withdrawn_after_materializing_is_skipped_and_costs_nothing(
        self,
        api: Api,
        account: AccountClient,
        db: Database,
        make_dispatcher: Callable[..., Dispatcher],
    ) -> None:
        await set_rates(db, [("sms", "FR", "", 700)])
        numbers = phones(4)
        list_id = await seed_contacts(db, account.id, numbers)
        await consent_of(db, account.id, numbers[:3], "granted")  # numbers[3]: never asked
        await require_consent(account)
        campaign_id = await seed_campaign(db, account.id, [list_id], text="Hi", reserve=4 * 700)
        await tick(db, 50_000)  # materialized: the three that granted consent
        async with db.session(write=False) as s:
            queued = (
                await s.execute(select(Message.phone).where(Message.campaign_id == campaign_id))
            ).scalars()
            assert sorted(queued) == numbers[:3]
        await consent_of(db, account.id, [numbers[0]], "denied")
        await drain(db, make_dispatcher(), [campaign_id])
        async with db.session(write=False) as s:
            rows = {
                m.phone: m
                for m in (
                    await s.execute(select(Message).where(Message.campaign_id == campaign_id))
                ).scalars()
            }
            notes = (
                await s.execute(
                    select(CreditLedger.kind, CreditLedger.reserved_delta, CreditLedger.note).where(
                        CreditLedger.campaign_id == campaign_id
                    )
                )
            ).all()
        skipped = rows[numbers[0]]
        assert (skipped.status, skipped.error_code, skipped.price) == ("skipped", "NO_CONSENT", 0)
        assert skipped.provider_message_id is None
        assert {rows[n].status for n in numbers[1:3]} == {"sent"}
        c = await assert_partition(db, campaign_id)
        assert (c.recipients, c.skipped, c.sent, c.spent) == (3, 1, 2, 2 * 700)
        assert ("release", -700, "recipients skipped: no consent") in [tuple(n) for n in notes]
        await assert_ledger_consistent(db, account.id)
        assert (await campaign(db, campaign_id)).reserved == 0

    async def test_transactional_campaigns_ignore_consent(
        self,
        api: Api,
        account: AccountClient,
        db: Database,
        make_dispatcher: Callable[..., Dispatcher],
    ) -> None:
        await set_rates(db, [("sms", "FR", "", 700)])
        numbers = phones(2)
        list_id = await seed_contacts(db, account.id, numbers)
        await require_consent(account)
        campaign_id = await seed_campaign(db, account.id, [list_id], text="Code", reserve=1400)
        async with db.transaction() as s:
            row = await s.get(Campaign, campaign_id)
            assert row is not None
            row.purpose = "transactional"
        await drain(db, make_dispatcher(), [campaign_id])
        c = await assert_partition(db, campaign_id)
        assert (c.recipients, c.sent, c.skipped) == (2, 2, 0)
