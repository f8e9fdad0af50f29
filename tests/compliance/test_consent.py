"""Consent per contact and channel (PUT, create, bulk add, CSV import) and the contact's
history of opt-outs, opt-ins and consent changes with their source and actor."""

from typing import Any

import httpx
import pytest

from clarion.audience.history import Cause
from clarion.audience.optouts import opt_out
from tests.audience.conftest import FR, GB, US, import_csv, new_contact, new_list
from tests.conftest import AccountClient, Api
from tests.people.conftest import PASSWORD, Browser, add_user


async def history(account: AccountClient | Browser, contact_id: int) -> list[dict[str, Any]]:
    r = await account.get(f"/contacts/{contact_id}/history")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"])
    items: list[dict[str, Any]] = body["items"]
    return items


class TestConsentByPut:
    async def test_set_read_and_recorded(self, account: AccountClient) -> None:
        contact = await new_contact(account, FR)
        url = f"/contacts/{contact['id']}"
        r = await account.put(
            url,
            json={
                "consent": {
                    "SMS": {"status": "granted", "proof": "form 12"},
                    "whatsapp": "Denied",
                }
            },
        )
        assert r.status_code == 200, r.text
        consent = r.json()["consent"]
        assert set(consent) == {"sms", "whatsapp"}
        assert consent["sms"]["status"] == "granted"
        assert consent["sms"]["proof"] == "form 12"
        assert consent["sms"]["source"] == "api"
        assert consent["sms"]["at"].endswith("Z")
        assert consent["whatsapp"]["status"] == "denied"
        assert (await account.get(url)).json()["consent"] == consent
        # A channel left out keeps its consent; the same status again writes nothing.
        r = await account.put(url, json={"consent": {"whatsapp": "granted", "sms": "granted"}})
        assert r.json()["consent"]["sms"] == consent["sms"]
        assert r.json()["consent"]["whatsapp"]["status"] == "granted"
        entries = await history(account, contact["id"])
        assert [(e["kind"], e["channel"], e["status"]) for e in entries] == [
            ("consent", "whatsapp", "granted"),
            ("consent", "whatsapp", "denied"),
            ("consent", "sms", "granted"),
        ]
        assert entries[2]["detail"] == "form 12"
        assert entries[0]["source"] == "api"
        assert entries[0]["actor"]["type"] == "key"
        assert entries[0]["actor"]["id"] is not None

    async def test_given_time_is_kept(self, account: AccountClient) -> None:
        contact = await new_contact(account, FR)
        r = await account.put(
            f"/contacts/{contact['id']}",
            json={"consent": {"sms": {"status": "granted", "at": "2026-01-02T10:00:00+01:00"}}},
        )
        assert r.status_code == 200, r.text
        assert r.json()["consent"]["sms"]["at"] == "2026-01-02T09:00:00Z"

    async def test_on_create(self, account: AccountClient) -> None:
        contact = await new_contact(account, FR, consent={"rcs": "granted"})
        assert contact["consent"]["rcs"]["status"] == "granted"
        assert [e["kind"] for e in await history(account, contact["id"])] == ["consent"]

    @pytest.mark.parametrize(
        ("consent", "field"),
        [
            ({"sms": "maybe"}, "consent.sms.status"),
            ({"fax": "granted"}, "consent.fax"),
            ({"sms": {"status": "granted", "at": "2026-01-02T10:00:00"}}, "consent.sms.at"),
            ({"sms": {"status": "granted", "extra": 1}}, "consent.sms.extra"),
            ({"sms": {"proof": "x"}}, "consent.sms.status"),
            ({"sms": {"status": "granted", "proof": "x" * 2001}}, "consent.sms.proof"),
            (["sms"], "consent"),
            ("granted", "consent"),
            (None, "consent"),
        ],
    )
    async def test_bad_consent_is_422(
        self, account: AccountClient, consent: Any, field: str
    ) -> None:
        contact = await new_contact(account, FR)
        r = await account.put(f"/contacts/{contact['id']}", json={"consent": consent})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert any(e["field"].startswith(field) for e in r.json()["errors"]), r.json()
        assert (await account.get(f"/contacts/{contact['id']}")).json()["consent"] == {}


class TestConsentInBulk:
    async def test_bulk_rows_set_consent_and_bad_rows_are_invalid(
        self, account: AccountClient
    ) -> None:
        list_id = await new_list(account)
        r = await account.post(
            f"/lists/{list_id}/contacts",
            json={
                "contacts": [
                    {"phone": FR, "consent": {"sms": "granted"}},
                    {"phone": US, "consent": {"sms": "perhaps"}},
                    {"phone": GB, "consent": {"whatsapp": {"status": "denied", "proof": "call"}}},
                ]
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["added"] == 2
        [bad] = body["invalid"]
        assert bad["index"] == 1 and "consent" in bad["reason"]
        members = (await account.get(f"/lists/{list_id}/contacts")).json()["items"]
        by_phone = {m["phone"]: m for m in members}
        assert by_phone[FR]["consent"]["sms"]["status"] == "granted"
        assert by_phone[GB]["consent"]["whatsapp"]["proof"] == "call"
        [entry] = await history(account, by_phone[GB]["id"])
        assert (entry["kind"], entry["source"], entry["status"]) == ("consent", "api", "denied")


class TestConsentInCsv:
    async def test_columns_set_consent_and_bad_values_are_invalid_rows(
        self, account: AccountClient
    ) -> None:
        list_id = await new_list(account)
        csv = (
            "phone,consent_sms,Consent WhatsApp,consent_rcs\n"
            f"{FR},granted,DENIED,\n"
            f"{US},yes,,\n"
            f"{GB},, granted ,denied\n"
        ).encode()
        done = await import_csv(account, list_id, csv)
        assert done["status"] == "done", done
        assert (done["imported"], done["invalid"]) == (2, 1)
        [error] = done["errors"]
        assert error["row"] == 3
        assert "consent_sms" in error["reason"] and "'yes'" in error["reason"]
        members = (await account.get(f"/lists/{list_id}/contacts")).json()["items"]
        by_phone = {m["phone"]: m for m in members}
        fr = by_phone[FR]["consent"]
        assert {k: v["status"] for k, v in fr.items()} == {"sms": "granted", "whatsapp": "denied"}
        assert fr["sms"]["source"] == "import"
        gb = by_phone[GB]["consent"]
        assert {k: v["status"] for k, v in gb.items()} == {"whatsapp": "granted", "rcs": "denied"}
        # The consent columns are not attributes.
        assert by_phone[FR]["attributes"] == {}
        entries = await history(account, by_phone[FR]["id"])
        assert {(e["kind"], e["source"], e["actor"]["type"]) for e in entries} == {
            ("consent", "import", "key")
        }
        # Importing the same file again changes nothing, so writes no history.
        await import_csv(account, list_id, csv)
        assert len(await history(account, by_phone[FR]["id"])) == 2


class TestHistory:
    async def test_every_source_newest_first(self, api: Api, account: AccountClient) -> None:
        contact = await new_contact(account, FR)
        url = f"/contacts/{contact['id']}"
        await account.put(url, json={"optOuts": ["sms"]})
        async with api.db.transaction() as session:
            await opt_out(
                session, [contact["id"]], "whatsapp", Cause.provider("cloud", inbound=False), "x"
            )
        await add_user(api, account, "ops@example.com", "editor")
        browser = Browser(
            httpx.AsyncClient(transport=api.client._transport, base_url="http://clarion.test")
        )
        try:
            r = await browser.login("ops@example.com", PASSWORD)
            assert r.status_code == 200, r.text
            r = await browser.put(
                url, json={"optOuts": ["whatsapp"], "consent": {"sms": "granted"}}
            )
            assert r.status_code == 200, r.text
            entries = await history(browser, contact["id"])
        finally:
            await browser.client.aclose()
        assert [(e["kind"], e["channel"], e["source"]) for e in entries] == [
            ("consent", "sms", "console"),
            ("opt_in", "sms", "console"),
            ("opt_out", "whatsapp", "provider"),
            ("opt_out", "sms", "api"),
        ]
        assert entries[0]["actor"]["type"] == "user"
        assert entries[0]["actor"]["name"] == "ops@example.com"
        assert entries[2]["actor"] == {"type": "provider", "id": None, "name": "cloud"}
        assert entries[2]["detail"] == "x"
        assert set(entries[0]) == {"at", "kind", "channel", "source", "actor", "status", "detail"}

    async def test_paginated(self, account: AccountClient) -> None:
        contact = await new_contact(account, FR)
        url = f"/contacts/{contact['id']}"
        for optouts in (["sms"], [], ["sms"]):
            await account.put(url, json={"optOuts": optouts})
        r = await account.get(f"{url}/history?limit=2&offset=1")
        body = r.json()
        assert (body["total"], body["limit"], body["offset"]) == (3, 2, 1)
        assert [e["kind"] for e in body["items"]] == ["opt_in", "opt_out"]

    async def test_other_account_is_404(self, api: Api, account: AccountClient) -> None:
        contact = await new_contact(account, FR)
        other = await api.new_account("other")
        assert (await other.get(f"/contacts/{contact['id']}/history")).status_code == 404
        assert (await account.get("/contacts/999999/history")).status_code == 404
