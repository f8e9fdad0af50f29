import asyncio
from typing import Any

import pytest

from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.session import Database
from tests.conftest import AccountClient, Api

WHATSAPP = {
    "name": "welcome",
    "channel": "whatsapp",
    "language": "en_US",
    "category": "marketing",
    "body": "Hi {{firstName}}, use {{ code }} in {{attributes.city}}. {{firstName}}!",
}
RCS = {
    "name": "promo",
    "channel": "rcs",
    "body": "Black Friday",
    "richCard": {"title": "20% off", "description": "Today", "media": "https://x.test/a.png"},
    "suggestions": [
        {"type": "reply", "text": "Yes", "postbackData": "yes"},
        {"type": "url", "text": "Shop", "url": "https://shop.test"},
        {"type": "dial", "text": "Call us", "phone": "+33612345678"},
    ],
}
SMS = {"name": "sms", "channel": "sms", "body": "Hello {{lastName}}"}


async def create(account: AccountClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await account.post("/templates", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def error_fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


class TestCreate:
    async def test_whatsapp(self, account: AccountClient) -> None:
        t = await create(account, WHATSAPP)
        assert set(t) == {
            "id",
            "name",
            "channel",
            "language",
            "category",
            "body",
            "richCard",
            "suggestions",
            "status",
            "variables",
            "createdAt",
            "updatedAt",
        }
        assert t["status"] == "approved"
        assert t["variables"] == ["firstName", "code", "attributes.city"]
        assert t["language"] == "en_US"
        assert t["createdAt"].endswith("Z")
        assert (await account.get(f"/templates/{t['id']}")).json() == t

    async def test_sms_defaults(self, account: AccountClient) -> None:
        t = await create(account, SMS)
        assert t["language"] == "en"
        assert t["category"] is None and t["richCard"] is None and t["suggestions"] is None
        assert t["status"] == "approved"
        assert t["variables"] == ["lastName"]

    async def test_rcs_rich_content_round_trips(self, account: AccountClient) -> None:
        t = await create(account, RCS)
        assert t["richCard"] == RCS["richCard"]
        assert t["suggestions"] == RCS["suggestions"]

    async def test_channel_and_category_case_insensitive(self, account: AccountClient) -> None:
        t = await create(account, {**WHATSAPP, "channel": "WhatsApp", "category": "UTILITY"})
        assert t["channel"] == "whatsapp" and t["category"] == "utility"
        t = await create(account, {**SMS, "channel": "SMS"})
        assert t["channel"] == "sms"

    async def test_whatsapp_status_may_start_pending(self, account: AccountClient) -> None:
        t = await create(account, {**WHATSAPP, "status": "Pending"})
        assert t["status"] == "pending"

    async def test_needs_api_key(self, api: Api) -> None:
        assert (await api.client.post("/templates", json=SMS)).status_code == 401
        assert (await api.client.get("/templates")).status_code == 401


class TestCreateValidation:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({**WHATSAPP, "category": None}, "category"),
            ({k: v for k, v in WHATSAPP.items() if k != "category"}, "category"),
            ({**WHATSAPP, "category": "promo"}, "category"),
            ({**WHATSAPP, "body": "x" * 1025}, "body"),
            ({**WHATSAPP, "richCard": {"title": "t"}}, "richCard"),
            ({**WHATSAPP, "status": "deleted"}, "status"),
            ({**SMS, "category": "marketing"}, "category"),
            ({**SMS, "richCard": {"title": "t"}}, "richCard"),
            ({**SMS, "suggestions": []}, "suggestions"),
            ({**SMS, "status": "pending"}, "status"),
            ({**RCS, "category": "basic"}, "category"),
            ({**SMS, "channel": "fax"}, "channel"),
            ({**SMS, "channel": None}, "channel"),
            ({**SMS, "name": ""}, "name"),
            ({**SMS, "name": "   "}, "name"),
            ({**SMS, "name": "x" * 201}, "name"),
            ({**SMS, "body": ""}, "body"),
            ({**SMS, "body": 5}, "body"),
            ({**SMS, "body": "x" * 10_001}, "body"),
            ({**SMS, "language": "english please"}, "language"),
            ({**SMS, "unknown": 1}, "unknown"),
            ({"channel": "sms", "body": "x"}, "name"),
            # PostgreSQL cannot store U+0000: a 422, never a 500.
            ({**SMS, "name": "a\x00"}, "name"),
            ({**SMS, "body": "hi \x00"}, "body"),
        ],
    )
    async def test_bad_field_is_422(
        self, account: AccountClient, body: dict[str, Any], field: str
    ) -> None:
        r = await account.post("/templates", json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert any(f == field or f.startswith(field + ".") for f in error_fields(r)), r.json()

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"richCard": {"title": "t", "color": "red"}}, "richCard.color"),
            ({"richCard": {"media": "javascript:alert(1)"}}, "richCard.media"),
            ({"richCard": "card"}, "richCard"),
            ({"suggestions": [{"type": "reply", "text": "x"}] * 12}, "suggestions"),
            ({"suggestions": [{"type": "share", "text": "x"}]}, "suggestions[0]"),
            ({"suggestions": [{"type": "reply", "text": "x" * 26}]}, "suggestions[0].reply.text"),
            ({"suggestions": [{"type": "reply", "text": ""}]}, "suggestions[0].reply.text"),
            ({"suggestions": [{"type": "url", "text": "Go"}]}, "suggestions[0].url.url"),
            (
                {"suggestions": [{"type": "dial", "text": "Call", "phone": "0612"}]},
                "suggestions[0].dial.phone",
            ),
            ({"suggestions": [{"text": "x"}]}, "suggestions[0]"),
            ({"suggestions": "yes"}, "suggestions"),
            ({"richCard": {"title": "x" * 201}}, "richCard.title"),
            ({"richCard": {"description": "x" * 2001}}, "richCard.description"),
            ({"richCard": {"title": "a\x00b"}}, "richCard.title"),
            ({"suggestions": [{"type": "reply", "text": "\x00"}]}, "suggestions[0].text"),
            (
                {"suggestions": [{"type": "url", "text": "Go", "url": "https://a\x00"}]},
                "suggestions[0].url",
            ),
        ],
    )
    async def test_bad_rich_content_is_422(
        self, account: AccountClient, patch: dict[str, Any], field: str
    ) -> None:
        r = await account.post("/templates", json={**RCS, **patch})
        assert r.status_code == 422, r.text
        assert field in error_fields(r), r.json()

    async def test_eleven_suggestions_are_fine(self, account: AccountClient) -> None:
        t = await create(account, {**RCS, "suggestions": [{"type": "reply", "text": "ok"}] * 11})
        assert len(t["suggestions"]) == 11

    async def test_malformed_json_is_400(self, account: AccountClient) -> None:
        r = await account.post(
            "/templates", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400


class TestUniqueness:
    async def test_same_name_channel_language_is_409(self, account: AccountClient) -> None:
        first = await create(account, WHATSAPP)
        r = await account.post("/templates", json={**WHATSAPP, "body": "other"})
        assert r.status_code == 409
        assert r.json()["id"] == first["id"]

    async def test_other_language_channel_or_account_is_fine(
        self, api: Api, account: AccountClient
    ) -> None:
        await create(account, WHATSAPP)
        await create(account, {**WHATSAPP, "language": "fr"})
        await create(account, {**SMS, "name": WHATSAPP["name"]})
        other = await api.new_account("other")
        await create(other, WHATSAPP)

    async def test_concurrent_creates_one_wins(self, account: AccountClient) -> None:
        results = await asyncio.gather(*(account.post("/templates", json=SMS) for _ in range(6)))
        codes = sorted(r.status_code for r in results)
        assert codes == [201, 409, 409, 409, 409, 409], [r.text for r in results]
        assert (await account.get("/templates")).json()["total"] == 1

    async def test_rename_onto_another_is_409(self, account: AccountClient) -> None:
        await create(account, SMS)
        t = await create(account, {**SMS, "name": "second"})
        r = await account.put(f"/templates/{t['id']}", json={"name": SMS["name"]})
        assert r.status_code == 409
        assert (await account.get(f"/templates/{t['id']}")).json()["name"] == "second"


class TestList:
    async def test_paginated_and_filtered(self, api: Api, account: AccountClient) -> None:
        ids = [(await create(account, {**SMS, "name": f"s{i}"}))["id"] for i in range(3)]
        wa = await create(account, {**WHATSAPP, "status": "pending"})
        await create(account, RCS)
        other = await api.new_account("other")
        await create(other, SMS)

        page = (await account.get("/templates", params={"limit": 2, "offset": 1})).json()
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
        assert [t["id"] for t in page["items"]] == [ids[1], ids[2]]

        sms = (await account.get("/templates", params={"channel": "SMS"})).json()
        assert [t["id"] for t in sms["items"]] == ids and sms["total"] == 3
        pending = (await account.get("/templates", params={"status": "pending"})).json()
        assert [t["id"] for t in pending["items"]] == [wa["id"]]
        both = await account.get("/templates", params={"channel": "sms", "status": "pending"})
        assert both.json()["total"] == 0

    @pytest.mark.parametrize(
        "params",
        [{"channel": "fax"}, {"status": "gone"}, {"limit": 0}, {"limit": 10**6}, {"offset": -1}],
    )
    async def test_bad_query_is_422(self, account: AccountClient, params: dict[str, Any]) -> None:
        r = await account.get("/templates", params=params)
        assert r.status_code == 422, r.text


class TestAccountScope:
    async def test_another_accounts_template_is_404(self, api: Api, account: AccountClient) -> None:
        t = await create(account, SMS)
        other = await api.new_account("other")
        url = f"/templates/{t['id']}"
        assert (await other.get(url)).status_code == 404
        assert (await other.put(url, json={"body": "x"})).status_code == 404
        assert (await other.delete(url)).status_code == 404
        assert (await account.get(url)).json()["body"] == SMS["body"]

    @pytest.mark.parametrize("bad", ["0", "-1", "abc", str(2**63), "1.5"])
    async def test_absurd_ids_are_422(self, account: AccountClient, bad: str) -> None:
        for method in ("GET", "DELETE"):
            r = await account.request(method, f"/templates/{bad}")
            assert r.status_code == 422, (method, r.text)

    async def test_unknown_id_is_404(self, account: AccountClient) -> None:
        assert (await account.get("/templates/999999")).status_code == 404


class TestUpdate:
    async def test_partial(self, account: AccountClient) -> None:
        t = await create(account, WHATSAPP)
        r = await account.put(f"/templates/{t['id']}", json={"body": "Code {{code}} {{phone}}"})
        assert r.status_code == 200, r.text
        u = r.json()
        assert u["body"] == "Code {{code}} {{phone}}"
        assert u["variables"] == ["code", "phone"]
        assert {k: u[k] for k in ("name", "category", "language", "status")} == {
            k: t[k] for k in ("name", "category", "language", "status")
        }
        assert u["updatedAt"] >= t["updatedAt"]
        assert (await account.get(f"/templates/{t['id']}")).json() == u

    @pytest.mark.parametrize("status", ["pending", "rejected", "paused", "approved"])
    async def test_whatsapp_status(self, account: AccountClient, status: str) -> None:
        t = await create(account, WHATSAPP)
        r = await account.put(f"/templates/{t['id']}", json={"status": status.upper()})
        assert r.status_code == 200 and r.json()["status"] == status

    async def test_category(self, account: AccountClient) -> None:
        t = await create(account, WHATSAPP)
        r = await account.put(f"/templates/{t['id']}", json={"category": "authentication"})
        assert r.json()["category"] == "authentication"
        r = await account.put(f"/templates/{t['id']}", json={"category": None})
        assert r.status_code == 422 and error_fields(r) == ["category"]

    async def test_rcs_content_can_be_removed(self, account: AccountClient) -> None:
        t = await create(account, RCS)
        r = await account.put(f"/templates/{t['id']}", json={"richCard": None})
        assert r.json()["richCard"] is None and r.json()["suggestions"] == RCS["suggestions"]
        r = await account.put(f"/templates/{t['id']}", json={"suggestions": None})
        assert r.json()["suggestions"] is None

    @pytest.mark.parametrize(
        ("template", "patch", "field"),
        [
            (SMS, {"status": "paused"}, "status"),
            (SMS, {"category": "marketing"}, "category"),
            (SMS, {"richCard": {"title": "x"}}, "richCard"),
            (SMS, {"channel": "rcs"}, "channel"),
            (SMS, {"body": None}, "body"),
            (SMS, {"name": None}, "name"),
            (SMS, {"body": ""}, "body"),
            (WHATSAPP, {"status": None}, "status"),
            (WHATSAPP, {"status": "gone"}, "status"),
            (WHATSAPP, {"body": "x" * 1025}, "body"),
            (RCS, {"suggestions": [{"type": "reply", "text": "x" * 30}]}, "suggestions"),
        ],
    )
    async def test_bad_update_is_422_and_changes_nothing(
        self,
        account: AccountClient,
        template: dict[str, Any],
        patch: dict[str, Any],
        field: str,
    ) -> None:
        t = await create(account, template)
        r = await account.put(f"/templates/{t['id']}", json=patch)
        assert r.status_code == 422, r.text
        assert any(f.split(".")[0].split("[")[0] == field for f in error_fields(r)), r.json()
        assert (await account.get(f"/templates/{t['id']}")).json() == t


async def add_campaign(
    db: Database, account_id: int, template_id: int, status: str, *, deleted: bool = False
) -> int:
    async with db.transaction() as session:
        campaign = Campaign(
            account_id=account_id,
            name="c",
            channel="whatsapp",
            status=status,
            message={"templateId": template_id, "templateParams": {}},
            deleted_at=utcnow() if deleted else None,
        )
        session.add(campaign)
        await session.flush()
        return campaign.id


class TestDelete:
    async def test_delete(self, account: AccountClient) -> None:
        t = await create(account, SMS)
        assert (await account.delete(f"/templates/{t['id']}")).status_code == 204
        assert (await account.get(f"/templates/{t['id']}")).status_code == 404
        assert (await account.delete(f"/templates/{t['id']}")).status_code == 404
        # The name is free again.
        await create(account, SMS)

    @pytest.mark.parametrize("status", ["scheduled", "sending", "paused", "completed", "cancelled"])
    async def test_used_by_a_non_draft_campaign_is_409(
        self, api: Api, account: AccountClient, status: str
    ) -> None:
        t = await create(account, WHATSAPP)
        campaign_id = await add_campaign(api.db, account.id, t["id"], status)
        r = await account.delete(f"/templates/{t['id']}")
        assert r.status_code == 409, r.text
        assert r.json()["campaignId"] == campaign_id
        assert (await account.get(f"/templates/{t['id']}")).status_code == 200

    async def test_draft_or_deleted_campaigns_do_not_hold_it(
        self, api: Api, account: AccountClient
    ) -> None:
        t = await create(account, WHATSAPP)
        other = await create(account, {**WHATSAPP, "name": "other"})
        await add_campaign(api.db, account.id, t["id"], "draft")
        await add_campaign(api.db, account.id, t["id"], "completed", deleted=True)
        # A campaign using another template does not count.
        await add_campaign(api.db, account.id, other["id"], "sending")
        assert (await account.delete(f"/templates/{t['id']}")).status_code == 204
