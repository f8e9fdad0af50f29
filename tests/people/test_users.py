"""Users, API keys with roles, account settings, GET /me."""

from typing import Any

from tests.conftest import AccountClient, Api
from tests.people.conftest import PASSWORD, Browser, add_user

USER_KEYS = {"id", "email", "name", "role", "createdAt", "lastLoginAt"}


class TestUsers:
    async def test_operator_and_owner_create_users(self, api: Api, account: AccountClient) -> None:
        first = await add_user(api, account, "Owner@Example.com", "owner")
        assert set(first) == USER_KEYS
        assert first["email"] == "Owner@Example.com" and first["lastLoginAt"] is None
        r = await account.post(
            "/users", json={"email": "ed@example.com", "password": PASSWORD, "role": "editor"}
        )
        assert r.status_code == 201, r.text
        assert r.json()["name"] is None
        listed = (await account.get("/users")).json()
        assert listed["total"] == 2
        assert [u["email"] for u in listed["items"]] == ["Owner@Example.com", "ed@example.com"]
        got = await account.get(f"/users/{first['id']}")
        assert got.json() == first
        assert "password" not in str(listed).lower()

    async def test_bad_bodies_and_taken_emails(self, api: Api, account: AccountClient) -> None:
        await add_user(api, account, "taken@example.com", "viewer")
        ok = {"email": "new@example.com", "password": PASSWORD, "role": "viewer"}
        for bad, field in (
            ({**ok, "password": "short"}, "password"),
            ({**ok, "role": "admin"}, "role"),
            ({**ok, "email": "not an email"}, "email"),
            ({**ok, "email": "a@b"}, "email"),
            ({**ok, "extra": 1}, "extra"),
            ({"email": "x@example.com", "role": "viewer"}, "password"),
        ):
            r = await account.post("/users", json=bad)
            assert r.status_code == 422, (bad, r.text)
            assert field in {e["field"] for e in r.json()["errors"]}, r.text
        r = await account.post("/users", json={**ok, "email": "TAKEN@example.com"})
        assert r.status_code == 409
        other = await api.new_account("other")
        r = await api.admin(
            "POST", f"/admin/accounts/{other.id}/users", json={**ok, "email": "Taken@Example.com"}
        )
        assert r.status_code == 409  # unique across the installation
        r = await api.admin("POST", "/admin/accounts/999999/users", json=ok)
        assert r.status_code == 404

    async def test_another_accounts_user_is_404(self, api: Api, account: AccountClient) -> None:
        other = await api.new_account("other")
        theirs = await add_user(api, other, "them@example.com", "owner")
        uid = theirs["id"]
        assert (await account.get(f"/users/{uid}")).status_code == 404
        assert (await account.put(f"/users/{uid}", json={"name": "x"})).status_code == 404
        assert (await account.delete(f"/users/{uid}")).status_code == 404
        assert (await account.get("/users")).json()["total"] == 0

    async def test_the_last_owner_stays(
        self, api: Api, account: AccountClient, browsers: Any
    ) -> None:
        boss = await add_user(api, account, "boss@example.com", "owner")
        r = await account.put(f"/users/{boss['id']}", json={"role": "manager"})
        assert r.status_code == 409
        assert (await account.delete(f"/users/{boss['id']}")).status_code == 409
        second = await add_user(api, account, "second@example.com", "owner")
        r = await account.put(f"/users/{boss['id']}", json={"role": "manager"})
        assert r.status_code == 200 and r.json()["role"] == "manager"
        assert (await account.delete(f"/users/{second['id']}")).status_code == 409
        # An owner may demote themself while another owner remains, not otherwise.
        browser: Browser = browsers()
        assert (await browser.login("second@example.com")).status_code == 200
        r = await browser.put(f"/users/{second['id']}", json={"role": "viewer"})
        assert r.status_code == 409

    async def test_what_each_user_may_change(
        self, api: Api, account: AccountClient, signed_in: Any
    ) -> None:
        other = await add_user(api, account, "other@example.com", "viewer")
        me: Browser = await signed_in("manager", "me@example.com")
        my_id = (await me.get("/me")).json()["user"]["id"]
        r = await me.put(f"/users/{my_id}", json={"name": "Me Myself"})
        assert r.status_code == 200 and r.json()["name"] == "Me Myself"
        r = await me.put(f"/users/{my_id}", json={"role": "owner"})
        assert r.status_code == 403 and r.json()["requiredRole"] == "owner"
        for body in ({"name": "x"}, {"password": "0123456789ab"}):
            r = await me.put(f"/users/{other['id']}", json=body)
            assert r.status_code == 403 and r.json()["requiredRole"] == "owner"
        owner: Browser = await signed_in("owner")
        r = await owner.put(f"/users/{other['id']}", json={"role": "editor", "name": "O"})
        assert r.status_code == 200 and r.json()["role"] == "editor"
        # An owner sets another user's password without theirs; that user's sessions end.
        r = await owner.put(f"/users/{my_id}", json={"password": "reset by the owner"})
        assert r.status_code == 200
        assert (await me.get("/me")).status_code == 401

    async def test_a_role_change_applies_to_open_sessions(
        self, api: Api, account: AccountClient, signed_in: Any
    ) -> None:
        editor: Browser = await signed_in("editor", "ed@example.com")
        assert (await editor.post("/lists", json={"name": "a"})).status_code == 201
        uid = (await editor.get("/me")).json()["user"]["id"]
        assert (await account.put(f"/users/{uid}", json={"role": "viewer"})).status_code == 200
        r = await editor.post("/lists", json={"name": "b"})
        assert r.status_code == 403 and r.json()["requiredRole"] == "editor"


class TestMe:
    async def test_by_key_and_by_session(
        self, api: Api, account: AccountClient, signed_in: Any
    ) -> None:
        by_key = (await account.get("/me")).json()
        assert by_key["user"] is None and by_key["role"] == "owner"
        assert by_key["key"]["role"] == "owner" and by_key["key"]["name"] == "default"
        assert by_key["account"]["id"] == account.id
        assert "key" not in by_key["key"]  # the secret is never shown again
        browser: Browser = await signed_in("viewer", "v@example.com")
        by_session = (await browser.get("/me")).json()
        assert by_session["key"] is None and by_session["role"] == "viewer"
        assert by_session["user"]["email"] == "v@example.com"
        assert by_session["account"]["balance"] == 1000


class TestKeys:
    async def test_create_list_revoke(self, api: Api, account: AccountClient) -> None:
        r = await account.post("/account/keys", json={"name": "ci"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert set(created) == {"id", "name", "role", "prefix", "key", "createdAt"}
        assert created["role"] == "manager" and created["key"].startswith(created["prefix"])
        ci = AccountClient(api.client, account.id, created["key"])
        r = await ci.post(
            "/users", json={"email": "x@example.com", "password": PASSWORD, "role": "viewer"}
        )
        assert r.status_code == 403 and r.json()["requiredRole"] == "owner"
        listed = (await account.get("/account/keys")).json()
        assert [k["name"] for k in listed["items"]] == ["default", "ci"]
        assert all("key" not in k for k in listed["items"])
        assert (await account.delete(f"/account/keys/{created['id']}")).status_code == 204
        assert (await ci.get("/account")).status_code == 401
        assert [k["name"] for k in (await account.get("/account/keys")).json()["items"]] == [
            "default"
        ]
        assert (await account.delete(f"/account/keys/{created['id']}")).status_code == 404

    async def test_bad_bodies_and_other_accounts(self, api: Api, account: AccountClient) -> None:
        for body in ({}, {"name": ""}, {"name": "x", "role": "god"}, {"name": "x", "extra": 1}):
            assert (await account.post("/account/keys", json=body)).status_code == 422, body
        other = await api.new_account("other")
        theirs = (await other.post("/account/keys", json={"name": "t"})).json()["id"]
        assert (await account.delete(f"/account/keys/{theirs}")).status_code == 404


class TestSettings:
    async def test_read_by_anyone_written_by_owners(
        self, account: AccountClient, signed_in: Any
    ) -> None:
        viewer: Browser = await signed_in("viewer")
        assert (await viewer.get("/account/settings")).json() == {
            "approvalRequired": False,
            "timezone": "UTC",
        }
        r = await viewer.put("/account/settings", json={"timezone": "Europe/Paris"})
        assert r.status_code == 403 and r.json()["requiredRole"] == "owner"
        r = await account.put("/account/settings", json={"timezone": "Europe/Paris"})
        assert r.json() == {"approvalRequired": False, "timezone": "Europe/Paris"}
        r = await account.put("/account/settings", json={"approvalRequired": True})
        assert r.json() == {"approvalRequired": True, "timezone": "Europe/Paris"}
        for bad in (
            {"timezone": "Mars/Olympus"},
            {"timezone": ""},
            {"approvalRequired": "maybe"},
            {"x": 1},
        ):
            assert (await account.put("/account/settings", json=bad)).status_code == 422, bad
