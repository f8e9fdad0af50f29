"""The audit trail: one row per change, in the change's transaction, newest first."""

from typing import Any

from tests.campaigns.conftest import World, create, sms_body
from tests.conftest import AccountClient, Api
from tests.people.conftest import PASSWORD, Browser, add_user


async def _trail(caller: Any, **params: Any) -> dict[str, Any]:
    r = await caller.get("/account/audit", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


class TestRows:
    async def test_each_change_writes_one_row_with_actor_action_and_target(
        self, api: Api, account: AccountClient, world: World, signed_in: Any
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 3)
        campaign = await create(account, sms_body([lst]))
        editor: Browser = await signed_in("editor", "ed@example.com")
        r = await editor.put(f"/campaigns/{campaign['id']}", json={"name": "renamed"})
        assert r.status_code == 200
        assert (
            await account.put(f"/campaigns/{campaign['id']}/confirm", json={})
        ).status_code == 200
        r = await account.post("/account/keys", json={"name": "ci", "role": "viewer"})
        key_id = r.json()["id"]
        await account.delete(f"/account/keys/{key_id}")
        # Reads and refused requests write nothing.
        await account.get("/campaigns")
        assert (await editor.put(f"/campaigns/{campaign['id']}/pause")).status_code == 403

        items = (await _trail(account, limit=100))["items"]
        actions = [i["action"] for i in items]
        assert actions[:6] == [
            "key.delete",
            "key.create",
            "campaign.confirm",
            "campaign.update",
            "user.login",
            "user.create",
        ], actions
        assert "campaign.create" in actions and "account.create" in actions
        confirm = items[2]
        assert confirm["target"] == {"type": "campaign", "id": campaign["id"]}
        assert confirm["actor"]["type"] == "key" and confirm["actor"]["name"] == "default"
        update = items[3]
        assert update["actor"] == {
            "type": "user",
            "id": update["actor"]["id"],
            "name": "ed@example.com",
        }
        assert update["detail"] == {"request": {"name": "renamed"}}
        created = next(i for i in items if i["action"] == "campaign.create")
        assert created["target"] == {"type": "campaign", "id": campaign["id"]}
        assert items[1]["target"] == {"type": "key", "id": key_id}
        assert items[1]["detail"] == {"name": "ci", "role": "viewer"}
        user_create = items[5]
        assert user_create["actor"]["type"] == "admin"
        assert "password" not in str(user_create["detail"])
        ids = [i["id"] for i in items]
        assert ids == sorted(ids, reverse=True)

    async def test_secrets_never_reach_the_trail(
        self, api: Api, account: AccountClient, browsers: Any
    ) -> None:
        user = await add_user(api, account, "sam@example.com", "viewer")
        browser: Browser = browsers()
        await browser.login("sam@example.com")
        new = "another long passphrase"
        r = await browser.put(
            f"/users/{user['id']}", json={"password": new, "currentPassword": PASSWORD}
        )
        assert r.status_code == 200
        trail = str(await _trail(account, limit=100))
        assert PASSWORD not in trail and new not in trail

    async def test_a_failed_change_leaves_no_row(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        campaign = await create(account, sms_body([lst]))  # empty audience
        r = await account.put(f"/campaigns/{campaign['id']}/confirm", json={})
        assert r.status_code == 422
        actions = [i["action"] for i in (await _trail(account))["items"]]
        assert "campaign.confirm" not in actions

    async def test_operator_changes_are_on_the_account(
        self, api: Api, account: AccountClient
    ) -> None:
        r = await api.admin("POST", f"/admin/accounts/{account.id}/credits", json={"amount": 5})
        assert r.status_code == 200
        row = (await _trail(account))["items"][0]
        assert row["action"] == "account.credits"
        assert row["actor"] == {"type": "admin", "id": None, "name": "admin"}
        assert row["target"] == {"type": "account", "id": account.id}
        assert row["detail"] == {"request": {"amount": 5}}


class TestQuery:
    async def test_filters_and_pages(
        self, api: Api, account: AccountClient, signed_in: Any
    ) -> None:
        manager: Browser = await signed_in("manager", "mgr@example.com")
        me = (await manager.get("/me")).json()["user"]
        for name in ("a", "b", "c"):
            assert (await manager.post("/lists", json={"name": name})).status_code == 201
        assert (await account.post("/lists", json={"name": "d"})).status_code == 201
        lists = await _trail(manager, action="list")
        assert lists["total"] == 4
        assert [i["action"] for i in lists["items"]] == ["list.create"] * 4
        mine = await _trail(manager, actorType="user", actorId=me["id"], action="list.create")
        assert mine["total"] == 3
        page = await _trail(manager, action="list", limit=2, offset=2)
        assert len(page["items"]) == 2 and page["total"] == 4
        assert (await _trail(manager, actorType="admin"))["total"] >= 2  # account + user created
        assert (await _trail(manager, **{"from": "2999-01-01"}))["total"] == 0
        assert (await _trail(manager, to="2000-01-01"))["total"] == 0
        for bad in (
            {"from": "yesterday"},
            {"to": "2026-13-01"},
            {"actorId": "x"},
            {"from": "2026-01-01T00:00:00"},
        ):
            assert (await manager.get("/account/audit", params=bad)).status_code == 422, bad

    async def test_another_accounts_rows_are_not_seen(
        self, api: Api, account: AccountClient
    ) -> None:
        other = await api.new_account("other")
        await other.post("/lists", json={"name": "secret"})
        assert (await _trail(account, action="list"))["total"] == 0

    async def test_owner_and_manager_only(self, signed_in: Any) -> None:
        for role in ("viewer", "editor"):
            browser: Browser = await signed_in(role)
            r = await browser.get("/account/audit")
            assert r.status_code == 403 and r.json()["requiredRole"] == "manager"


class TestImports:
    async def test_starting_an_import_is_one_row(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        r = await account.post(
            f"/lists/{lst}/imports", files={"file": ("people.csv", b"phone\n+33612345678\n")}
        )
        assert r.status_code == 202, r.text
        rows = [i for i in (await _trail(account))["items"] if i["action"] == "import.create"]
        assert len(rows) == 1
        assert rows[0]["target"] == {"type": "import", "id": r.json()["id"]}
        assert rows[0]["detail"] == {"listId": lst, "filename": "people.csv"}
