"""requireConsent: marketing campaigns leave out contacts without granted consent for the
channel (the estimate's `excluded.noConsent`, the materializer), and a recipient whose
consent is withdrawn after materializing is skipped (NO_CONSENT) at send time, costing
nothing (what its campaign held for it is released when the campaign completes)."""

from typing import Any

import pytest

from tests.compliance.conftest import EVERY_DAY
from tests.conftest import AccountClient, Api

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
        assert e["excluded"] == {
            "duplicates": 0,
            "optedOut": 1,
            "noConsent": 3,
            "frequencyCapped": 0,
            "invalid": 0,
        }
        assert e["price"] == pytest.approx(0.07)
        transactional = await estimate(account, list_id, text, "transactional")
        assert transactional["recipients"] == 4
        assert transactional["excluded"]["noConsent"] == 0

    async def test_the_schedule_counts_the_recipients_only(
        self, api: Api, account: AccountClient
    ) -> None:
        await api.admin("PUT", "/admin/rates", json={"rates": RATES})
        list_id = await audience(account)
        await require_consent(account)
        every_hour = {"country": "*", "days": EVERY_DAY, "start": "00:00", "end": "24:00"}
        r = await account.put("/account/compliance", json={"sendingHours": [every_hour]})
        assert r.status_code == 200, r.text
        for text in ("Sale today", "Sale today {{firstName}}"):
            e = await estimate(account, list_id, text, "marketing")
            assert e["recipients"] == 1
            assert (e["schedule"]["sendableNow"], e["schedule"]["held"]) == (1, 0)

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
