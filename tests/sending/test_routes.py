"""GET /campaigns/{id}/messages and POST /campaigns/{id}/test through the real app."""

from __future__ import annotations

import csv
import io

import pytest

from clarion.audience.phones import normalize
from clarion.errors import Unprocessable
from clarion.providers.base import Outcome, SubmitResult
from clarion.sending import engine
from clarion.sending.service import normalize_phones
from tests.conftest import assert_ledger_consistent
from tests.sending.conftest import (
    FakeProvider,
    assert_partition,
    campaign,
    drain,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

ITEM_FIELDS = {
    "clicks",
    "firstClickedAt",
    "id",
    "contactId",
    "phone",
    "channel",
    "status",
    "units",
    "price",
    "providerMessageId",
    "errorCode",
    "errorMessage",
    "sentAt",
    "deliveredAt",
    "readAt",
    "updatedAt",
    "variant",
    "notBefore",
}


@pytest.fixture
async def sent_campaign(db, account, make_dispatcher, sms):
    await set_rates(db, [("sms", "*", "", 700)])
    lst = await seed_contacts(db, account.id, phones(12))
    refused = phones(12)[11]
    sms.script = lambda m, n: (
        SubmitResult(m.id, Outcome.REFUSED, error_code="invalid_number", error_message="bad")
        if m.to == refused
        else None
    )
    cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=12 * 700)
    await drain(db, make_dispatcher(), [cid])
    return cid


class TestMessagesList:
    async def test_items_carry_the_contract_fields(self, account, sent_campaign):
        r = await account.get(f"/campaigns/{sent_campaign}/messages?limit=5&offset=0")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["total"], body["limit"], body["offset"]) == (12, 5, 0)
        assert len(body["items"]) == 5
        item = body["items"][0]
        assert set(item) == ITEM_FIELDS
        assert item["status"] == "sent" and item["price"] == 0.07 and item["units"] == 1
        assert item["sentAt"].endswith("Z") and item["providerMessageId"].startswith("fake-")

    async def test_status_filter_and_pages(self, account, sent_campaign):
        r = await account.get(f"/campaigns/{sent_campaign}/messages?status=failed")
        body = r.json()
        assert body["total"] == 1
        assert body["items"][0]["errorCode"] == "invalid_number"
        assert body["items"][0]["price"] == 0
        page2 = (
            await account.get(f"/campaigns/{sent_campaign}/messages?limit=10&offset=10")
        ).json()
        assert len(page2["items"]) == 2

    async def test_bad_filters_are_422_and_other_accounts_404(self, api, account, sent_campaign):
        assert (
            await account.get(f"/campaigns/{sent_campaign}/messages?status=nope")
        ).status_code == 422
        assert (
            await account.get(f"/campaigns/{sent_campaign}/messages?limit=0")
        ).status_code == 422
        other = await api.new_account("other", credits=1)
        r = await other.get(f"/campaigns/{sent_campaign}/messages")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await account.get("/campaigns/999999/messages")).status_code == 404

    async def test_csv_export_streams_every_matching_row(self, account, sent_campaign):
        r = await account.get(
            f"/campaigns/{sent_campaign}/messages?limit=1", headers={"Accept": "text/csv"}
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == 12
        assert set(rows[0]) == ITEM_FIELDS
        assert {row["status"] for row in rows} == {"sent", "failed"}
        r = await account.get(
            f"/campaigns/{sent_campaign}/messages?status=failed", headers={"Accept": "text/csv"}
        )
        assert len(list(csv.DictReader(io.StringIO(r.text)))) == 1

    async def test_csv_export_neutralises_formulas(self, db, account, make_dispatcher, sms):
        await set_rates(db, [("sms", "*", "", 700)])
        texts = ['=HYPERLINK("http://x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\tx", "\rx"]
        lst = await seed_contacts(db, account.id, phones(len(texts)))
        by_phone = dict(zip(phones(len(texts)), texts, strict=True))
        sms.script = lambda m, n: SubmitResult(
            m.id, Outcome.REFUSED, error_code="=1+1", error_message=by_phone[m.to]
        )
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=len(texts) * 700)
        await drain(db, make_dispatcher(), [cid])
        r = await account.get(f"/campaigns/{cid}/messages", headers={"Accept": "text/csv"})
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert sorted(row["errorMessage"] for row in rows) == sorted("'" + t for t in texts)
        assert {row["errorCode"] for row in rows} == {"'=1+1"}
        # E.164 phones are plain numbers: a spreadsheet cannot run them, they stay as sent.
        assert {row["phone"] for row in rows} == set(phones(len(texts)))


@pytest.fixture
def test_provider(monkeypatch):
    provider = FakeProvider("sms", name="fake-test")
    monkeypatch.setattr(engine, "build_providers", lambda settings: {"sms": provider})
    return provider


class TestTestSend:
    async def test_sends_now_charges_the_account_not_the_campaign(self, db, account, test_provider):
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, phones(3))
        cid = await seed_campaign(
            db,
            account.id,
            [lst],
            text="Hi {{firstName}}, code {{code}}",
            reserve=3 * 700,
            status="scheduled",
            message={
                "text": "Hi {{firstName}}, code {{code}}",
                "templateParams": {"firstName": "there", "code": "BF20"},
            },
        )
        before = (await account.get("/account")).json()
        r = await account.post(
            f"/campaigns/{cid}/test", json={"phones": ["+33 6 12 34 56 78", "+12025550123"]}
        )
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["phone"] for x in results] == ["+33612345678", "+12025550123"]
        assert {x["status"] for x in results} == {"sent"}
        assert {x["price"] for x in results} == {0.07}
        assert test_provider.sent[0].text == "Hi there, code BF20"
        after = (await account.get("/account")).json()
        assert after["balance"] == pytest.approx(before["balance"] - 0.14)
        assert after["reserved"] == before["reserved"]
        c = await campaign(db, cid)
        assert (c.status, c.recipients, c.sent, c.spent, c.reserved) == ("scheduled", 0, 0, 0, 2100)
        listed = (await account.get(f"/campaigns/{cid}/messages")).json()
        assert listed["total"] == 0
        await assert_ledger_consistent(db, account.id)

    async def test_refusals_and_missing_rates_are_per_phone(self, db, account, test_provider):
        await set_rates(db, [("sms", "FR", "", 700)])
        test_provider.script = lambda m, n: (
            SubmitResult(m.id, Outcome.REFUSED, error_code="blocked")
            if m.to.endswith("79")
            else None
        )
        lst = await seed_contacts(db, account.id, phones(1))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=700)
        r = await account.post(
            f"/campaigns/{cid}/test",
            json={"phones": ["+33612345678", "+33612345679", "+12025550123"]},
        )
        codes = [(x["status"], x["errorCode"]) for x in r.json()["results"]]
        assert codes == [("sent", None), ("failed", "blocked"), ("failed", "no_rate")]
        await assert_ledger_consistent(db, account.id)

    async def test_not_enough_credits_is_a_failed_result_not_a_send(self, db, api, test_provider):
        poor = await api.new_account("poor", credits=0.1)
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, poor.id, phones(1))
        cid = await seed_campaign(db, poor.id, [lst], text="Hi", status="draft")
        r = await poor.post(
            f"/campaigns/{cid}/test", json={"phones": ["+33612345678", "+33612345679"]}
        )
        codes = [x["errorCode"] for x in r.json()["results"]]
        assert codes == [None, "insufficient_credits"]
        assert len(test_provider.sent) == 1
        await assert_ledger_consistent(db, poor.id)

    def test_phones_are_read_as_contacts_phones_are(self):
        raws = ["+33 6 12 34 56 78", "+80012345678", "+1 650-253-0000", "+33612345678"]
        expected = [(p.e164, p.country) for p in map(normalize, raws)]
        assert normalize_phones(raws) == list(dict.fromkeys(expected))
        assert expected[1] == ("+80012345678", "ZZ")  # non-geographic, as for a contact
        with pytest.raises(Unprocessable) as caught:
            normalize_phones(["+33612345678", "+33 6 12"])
        assert [e["field"] for e in caught.value.extra["errors"]] == ["phones.1"]
        assert "too short" in caught.value.extra["errors"][0]["message"]

    @pytest.mark.parametrize(
        "body",
        [
            {"phones": []},
            {"phones": ["+336123"] * 11},
            {"phones": ["not a phone"]},
            {"phones": ["0612345678"]},
            {"phones": ["+1 800 FLOWERS"]},  # refused as a contact's phone is
            {"phones": "+33612345678"},
            {},
            {"phones": ["+33612345678"], "extra": 1},
        ],
    )
    async def test_bad_bodies_are_422(self, db, account, test_provider, body):
        lst = await seed_contacts(db, account.id, phones(1))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", status="draft")
        r = await account.post(f"/campaigns/{cid}/test", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"]
        assert test_provider.sent == []

    async def test_another_accounts_campaign_is_404(self, db, api, account, test_provider):
        lst = await seed_contacts(db, account.id, phones(1))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", status="draft")
        other = await api.new_account("other", credits=10)
        r = await other.post(f"/campaigns/{cid}/test", json={"phones": ["+33612345678"]})
        assert r.status_code == 404

    async def test_stats_partition_is_untouched_by_tests(
        self, db, account, test_provider, make_dispatcher
    ):
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, phones(4))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=4 * 700)
        r = await account.post(f"/campaigns/{cid}/test", json={"phones": ["+33612345678"]})
        assert r.status_code == 200
        await drain(db, make_dispatcher(), [cid])
        c = await assert_partition(db, cid)
        assert (c.recipients, c.sent, c.spent) == (4, 4, 4 * 700)
        await assert_ledger_consistent(db, account.id)
