"""Create, read, list, update, delete and the state machine."""

from datetime import UTC, datetime, timedelta

import pytest

from clarion.campaigns import states
from tests.campaigns.conftest import World, create, fields, sms_body
from tests.conftest import AccountClient, Api, assert_ledger_consistent

CAMPAIGN_KEYS = {
    "id", "name", "channel", "status", "message", "listIds", "excludeListIds", "sender",
    "fallbackChannel", "scheduledAt", "createdAt", "updatedAt", "confirmedAt", "startedAt",
    "completedAt", "estimate", "stats", "cost", "approval", "variants", "abTest",
    "segmentIds", "filter", "purpose", "sendWindow", "expiresAt", "smartEncoding", "trackLinks",
}  # fmt: skip


class TestCreate:
    async def test_answers_the_contract_shape(self, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        body = sms_body([lst], sender="Clarion") | {"channel": "SMS", "excludeListIds": []}
        r = await account.post("/campaigns", json=body)
        assert r.status_code == 201, r.text
        c = r.json()
        assert set(c) == CAMPAIGN_KEYS
        assert c["channel"] == "sms" and c["status"] == "draft"
        assert c["message"] == {"text": "Hello there"}
        assert c["listIds"] == [lst] and c["sender"] == "Clarion"
        assert c["estimate"] is None and c["fallbackChannel"] is None
        assert c["stats"] == {
            "recipients": 0, "queued": 0, "sending": 0, "sent": 0, "delivered": 0,
            "read": 0, "failed": 0, "skipped": 0, "expired": 0, "clicks": 0, "uniqueClicks": 0,
        }  # fmt: skip
        assert (c["smartEncoding"], c["trackLinks"]) == (False, False)
        assert c["cost"] == {"reserved": 0, "spent": 0}
        assert c["createdAt"].endswith("Z")
        got = await account.get(f"/campaigns/{c['id']}")
        assert got.json() == c

    async def test_whatsapp_template_and_rcs_fallback(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        tpl = await world.template(account, body="Code {{code}} for {{firstName}}")
        wa = await create(
            account,
            {
                "name": "w",
                "channel": "WhatsApp",
                "message": {"templateId": tpl, "templateParams": {"code": "BF20"}},
                "listIds": [lst],
            },
        )
        assert wa["channel"] == "whatsapp"
        assert wa["message"] == {"templateId": tpl, "templateParams": {"code": "BF20"}}
        rcs = await create(account, sms_body([lst]) | {"channel": "rcs", "fallbackChannel": "SMS"})
        assert rcs["fallbackChannel"] == "sms"

    async def test_draft_may_have_no_lists(self, account: AccountClient, world: World) -> None:
        c = await create(account, sms_body([]))
        assert c["listIds"] == []


class TestCreateValidation:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"channel": "fax"}, "channel"),
            ({"message": {}}, "message.text"),
            ({"message": {"text": "hi {{coupon}}"}}, "message.text"),
            ({"message": {"text": "hi {{attributes.}}"}}, "message.text"),
            ({"fallbackChannel": "sms"}, "fallbackChannel"),
            ({"channel": "rcs", "fallbackChannel": "whatsapp"}, "fallbackChannel"),
            ({"sender": "ThisIsTooLong"}, "sender"),
            ({"sender": "bad!"}, "sender"),
            ({"sender": "12"}, "sender"),
            ({"message": {"text": "x", "templateParams": {"a": 1}}}, "message.templateParams.a"),
            ({"listIds": [0]}, "listIds[0]"),
            ({"name": ""}, "name"),
            ({"surprise": 1}, "surprise"),
        ],
    )
    async def test_bad_field_is_422_naming_it(
        self, account: AccountClient, world: World, change: dict, field: str
    ) -> None:
        lst = await world.new_list(account)
        r = await account.post("/campaigns", json=sms_body([lst]) | change)
        assert r.status_code == 422, r.text
        assert field in fields(r), r.json()

    async def test_variables_known_from_contact_attributes_or_params(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        text = "Hi {{firstName}} {{lastName}} {{phone}} {{attributes.city}} {{coupon}}"
        body = sms_body([lst], text) | {
            "message": {"text": text, "templateParams": {"coupon": "X"}}
        }
        assert (await account.post("/campaigns", json=body)).status_code == 201

    async def test_unknown_lists_are_named(self, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        r = await account.post("/campaigns", json=sms_body([lst, 987654]))
        assert r.status_code == 422 and fields(r) == ["listIds"]
        assert "987654" in r.json()["errors"][0]["message"]
        r = await account.post("/campaigns", json=sms_body([lst], excludeListIds=[55555]))
        assert fields(r) == ["excludeListIds"] and "55555" in r.text

    async def test_another_accounts_list_is_unknown(
        self, api: Api, account: AccountClient, world: World
    ) -> None:
        other = await api.new_account("other")
        theirs = await world.new_list(other)
        r = await account.post("/campaigns", json=sms_body([theirs]))
        assert r.status_code == 422 and fields(r) == ["listIds"]

    async def test_template_rules(self, api: Api, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        wa = await world.template(account, body="Hi {{code}}")
        sms_tpl = await world.template(account, channel="sms", body="x")
        other = await api.new_account("other")
        theirs = await world.template(other, body="x")

        def wa_body(message: dict) -> dict:
            return {"name": "w", "channel": "whatsapp", "message": message, "listIds": [lst]}

        cases = [
            (wa_body({"text": "hi"}), "message.text"),
            (wa_body({}), "message.templateId"),
            (wa_body({"templateId": sms_tpl}), "message.templateId"),
            (wa_body({"templateId": theirs}), "message.templateId"),
            (wa_body({"templateId": wa}), "message.templateParams"),
            (sms_body([lst]) | {"message": {"templateId": wa}}, "message.templateId"),
            (
                sms_body([lst]) | {"channel": "rcs", "message": {"text": "a", "templateId": wa}},
                "message",
            ),
        ]
        for body, field in cases:
            r = await account.post("/campaigns", json=body)
            assert r.status_code == 422, (body, r.text)
            assert field in fields(r), (body, r.json())
        ok = await account.post(
            "/campaigns", json=wa_body({"templateId": wa, "templateParams": {"code": "1"}})
        )
        assert ok.status_code == 201

    async def test_needs_api_key(self, api: Api) -> None:
        assert (await api.client.post("/campaigns", json={})).status_code == 401


class TestListAndGet:
    async def test_pagination_and_filters(
        self, api: Api, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        ids = [(await create(account, sms_body([lst], name=f"c{i}")))["id"] for i in range(3)]
        await create(account, sms_body([lst]) | {"channel": "rcs"})
        await world.campaign_row(ids[0], status="completed")
        other = await api.new_account("other")
        await create(other, sms_body([]))

        page = (await account.get("/campaigns?limit=2&offset=0")).json()
        assert page["total"] == 4 and page["limit"] == 2 and len(page["items"]) == 2
        rest = (await account.get("/campaigns?limit=2&offset=2")).json()
        seen = {c["id"] for c in page["items"] + rest["items"]}
        assert len(seen) == 4
        sms = (await account.get("/campaigns?channel=SMS")).json()
        assert sms["total"] == 3
        done = (await account.get("/campaigns?status=completed")).json()
        assert [c["id"] for c in done["items"]] == [ids[0]]
        assert (await account.get("/campaigns?status=nope")).status_code == 422
        assert (await account.get("/campaigns?channel=fax")).status_code == 422

    async def test_other_accounts_campaign_is_404(
        self, api: Api, account: AccountClient, world: World
    ) -> None:
        c = await create(account, sms_body([]))
        other = await api.new_account("other")
        for method, url in [
            ("GET", ""),
            ("PUT", ""),
            ("DELETE", ""),
            ("POST", "/calculateGoal"),
            ("GET", "/price"),
            ("PUT", "/confirm"),
            ("PUT", "/pause"),
            ("PUT", "/cancel"),
        ]:
            r = await other.request(method, f"/campaigns/{c['id']}{url}", json={})
            assert r.status_code == 404, (method, url, r.text)
        assert (await account.get("/campaigns/99999999999999999999")).status_code == 422


class TestUpdate:
    async def test_partial_update_keeps_other_fields(
        self, account: AccountClient, world: World
    ) -> None:
        lst, lst2 = await world.new_list(account), await world.new_list(account)
        c = await create(account, sms_body([lst], sender="Shop"))
        r = await account.put(f"/campaigns/{c['id']}", json={"name": "renamed", "listIds": [lst2]})
        assert r.status_code == 200, r.text
        u = r.json()
        assert u["name"] == "renamed" and u["listIds"] == [lst2]
        assert u["sender"] == "Shop" and u["message"] == c["message"]

    async def test_update_is_validated_as_a_whole(
        self, account: AccountClient, world: World
    ) -> None:
        c = await create(account, sms_body([]))
        r = await account.put(f"/campaigns/{c['id']}", json={"channel": "whatsapp"})
        assert r.status_code == 422 and "message.templateId" in fields(r)
        r = await account.put(f"/campaigns/{c['id']}", json={"message": {"text": "{{nope}}"}})
        assert r.status_code == 422 and fields(r) == ["message.text"]
        r = await account.put(f"/campaigns/{c['id']}", json={"listIds": [424242]})
        assert fields(r) == ["listIds"]
        r = await account.put(f"/campaigns/{c['id']}", json={"name": None})
        assert r.status_code == 422
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        r = await account.put(f"/campaigns/{c['id']}", json={"scheduledAt": later})
        assert fields(r) == ["scheduledAt"]
        assert (await account.get(f"/campaigns/{c['id']}")).json() == c

    @pytest.mark.parametrize("status", ["sending", "paused", "completed", "cancelled"])
    async def test_409_outside_draft_and_scheduled(
        self, account: AccountClient, world: World, status: str
    ) -> None:
        c = await create(account, sms_body([]))
        await world.campaign_row(c["id"], status=status)
        r = await account.put(f"/campaigns/{c['id']}", json={"name": "x"})
        assert r.status_code == 409
        assert status in r.json()["detail"]


class TestStateMachine:
    """Every action not in states.TRANSITIONS for the status is a 409 naming the status."""

    @pytest.mark.parametrize("status", states.STATUSES)
    async def test_illegal_actions_are_409(
        self, account: AccountClient, world: World, status: str
    ) -> None:
        for action in ("pause", "resume", "cancel", "confirm", "delete"):
            if states.allowed(action, status):
                continue
            c = await create(account, sms_body([]))
            await world.campaign_row(c["id"], status=status)
            if action == "delete":
                r = await account.delete(f"/campaigns/{c['id']}")
            else:
                r = await account.put(f"/campaigns/{c['id']}/{action}", json={})
            assert r.status_code == 409, (action, status, r.text)
            assert r.json()["currentStatus"] == status
            assert f"is {status}" in r.json()["detail"]
            after = (await account.get(f"/campaigns/{c['id']}")).json()
            assert after["status"] == status

    async def test_pause_and_resume(self, account: AccountClient, world: World) -> None:
        c = await create(account, sms_body([]))
        await world.campaign_row(c["id"], status="sending")
        r = await account.put(f"/campaigns/{c['id']}/pause")
        assert r.status_code == 200 and r.json()["status"] == "paused"
        assert (await account.put(f"/campaigns/{c['id']}/pause")).status_code == 409
        r = await account.put(f"/campaigns/{c['id']}/resume")
        assert r.status_code == 200 and r.json()["status"] == "sending"

    def test_table_matches_the_contract(self) -> None:
        assert states.allowed("confirm", "draft") == {"sending", "scheduled"}
        assert states.allowed("pause", "sending") == {"paused"}
        assert states.allowed("resume", "paused") == {"sending"}
        assert {s for s in states.STATUSES if states.allowed("cancel", s)} == {
            "scheduled",
            "sending",
            "paused",
        }
        assert {s for s in states.STATUSES if states.allowed("delete", s)} == {
            "draft",
            "scheduled",
            "completed",
            "cancelled",
        }
        assert {s for s in states.STATUSES if states.allowed("update", s)} == {
            "draft",
            "scheduled",
        }


class TestDelete:
    async def test_a_cancelled_campaign_can_be_deleted(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 2)
        c = await create(account, sms_body([lst]))
        r = await account.put(
            f"/campaigns/{c['id']}/confirm", json={"scheduledAt": "2099-01-01T00:00:00Z"}
        )
        assert r.status_code == 200
        assert (await account.put(f"/campaigns/{c['id']}/cancel")).json()["status"] == "cancelled"
        assert (await account.delete(f"/campaigns/{c['id']}")).status_code == 204
        assert (await account.get(f"/campaigns/{c['id']}")).status_code == 404
        assert (await account.get("/account")).json()["reserved"] == 0
        await assert_ledger_consistent(world.db, account.id)

    async def test_soft_delete_hides_the_campaign(
        self, account: AccountClient, world: World
    ) -> None:
        c = await create(account, sms_body([]))
        r = await account.delete(f"/campaigns/{c['id']}")
        assert r.status_code == 204
        assert (await account.get(f"/campaigns/{c['id']}")).status_code == 404
        assert (await account.delete(f"/campaigns/{c['id']}")).status_code == 404
        assert (await account.get("/campaigns")).json()["total"] == 0
        await assert_ledger_consistent(world.db, account.id)
