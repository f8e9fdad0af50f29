import asyncio

import pytest

from tests.conftest import ADMIN_TOKEN, AccountClient, Api, assert_ledger_consistent


class TestAdminAccounts:
    async def test_create_shows_key_once_and_balance(self, api: Api) -> None:
        r = await api.admin("POST", "/admin/accounts", json={"name": "acme", "credits": 12.3456})
        assert r.status_code == 201
        body = r.json()
        assert set(body) == {"id", "name", "apiKey", "balance"}
        assert body["balance"] == 12.3456
        assert body["apiKey"].startswith("clk_")
        me = await api.client.get("/account", headers={"Authorization": f"Bearer {body['apiKey']}"})
        assert me.json() == {
            "id": body["id"],
            "name": "acme",
            "balance": 12.3456,
            "reserved": 0,
            "available": 12.3456,
        }
        keys = await api.admin("GET", f"/admin/accounts/{body['id']}/keys")
        assert "apiKey" not in keys.text and body["apiKey"] not in keys.text

    async def test_admin_needs_token(self, api: Api) -> None:
        r = await api.client.post("/admin/accounts", json={"name": "x"})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await api.client.post(
            "/admin/accounts", json={"name": "x"}, headers={"Authorization": "Bearer nope"}
        )
        assert r.status_code == 401
        r = await api.admin("POST", "/admin/accounts", json={"name": "x"})
        assert r.status_code == 201

    async def test_api_key_is_not_admin_token(self, api: Api, account: AccountClient) -> None:
        r = await account.post("/admin/accounts", json={"name": "x"})
        assert r.status_code == 401
        assert ADMIN_TOKEN not in r.text

    @pytest.mark.parametrize("credits", [-1, 0.00001, "abc", True, None, 1e30, [1], {"a": 1}])
    async def test_bad_initial_credits_are_422(self, api: Api, credits: object) -> None:
        r = await api.admin("POST", "/admin/accounts", json={"name": "x", "credits": credits})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "credits"


class TestCredits:
    async def test_topup_and_debit(self, api: Api, account: AccountClient) -> None:
        r = await api.admin("POST", f"/admin/accounts/{account.id}/credits", json={"amount": 0.1})
        assert r.status_code == 200 and r.json() == {"balance": 1000.1}
        r = await api.admin(
            "POST", f"/admin/accounts/{account.id}/credits", json={"amount": -1000.1, "note": "x"}
        )
        assert r.json() == {"balance": 0}
        await assert_ledger_consistent(api.db, account.id)

    async def test_debit_below_zero_is_409_and_changes_nothing(
        self, api: Api, account: AccountClient
    ) -> None:
        r = await api.admin(
            "POST", f"/admin/accounts/{account.id}/credits", json={"amount": -1000.0001}
        )
        assert r.status_code == 409
        assert (await account.get("/account")).json()["balance"] == 1000
        ledger = (await account.get("/account/ledger")).json()
        assert ledger["total"] == 1
        await assert_ledger_consistent(api.db, account.id)

    async def test_concurrent_debits_never_go_negative(
        self, api: Api, account: AccountClient
    ) -> None:
        async def debit() -> int:
            r = await api.admin(
                "POST", f"/admin/accounts/{account.id}/credits", json={"amount": -300}
            )
            return r.status_code

        codes = await asyncio.gather(*(debit() for _ in range(8)))
        assert sorted(codes) == [200, 200, 200, 409, 409, 409, 409, 409]
        assert (await account.get("/account")).json()["balance"] == 100
        await assert_ledger_consistent(api.db, account.id)

    async def test_topup_past_the_maximum_balance_is_409_and_changes_nothing(
        self, api: Api
    ) -> None:
        account = await api.new_account("rich", credits=999_999_999_000)
        url = f"/admin/accounts/{account.id}/credits"
        r = await api.admin("POST", url, json={"amount": 999.9999})
        assert r.status_code == 200 and r.json() == {"balance": 999_999_999_999.9999}
        for amount in (0.0001, 999_999_999_999.9999):
            r = await api.admin("POST", url, json={"amount": amount})
            assert r.status_code == 409, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["maximum"] == 999_999_999_999.9999
        assert (await account.get("/account")).json()["balance"] == 999_999_999_999.9999
        assert (await account.get("/account/ledger")).json()["total"] == 2
        await assert_ledger_consistent(api.db, account.id)

    async def test_unknown_account_is_404(self, api: Api) -> None:
        r = await api.admin("POST", "/admin/accounts/999999/credits", json={"amount": 1})
        assert r.status_code == 404

    @pytest.mark.parametrize(
        "body",
        [
            {"amount": 0.00001},
            {"amount": "abc"},
            {"amount": True},
            {"amount": None},
            {"amount": 1e30},
            {"amount": [1]},
            {},
            {"amount": 1, "extra": 1},
        ],
    )
    async def test_bad_amount_is_422_and_changes_nothing(
        self, api: Api, account: AccountClient, body: dict
    ) -> None:
        r = await api.admin("POST", f"/admin/accounts/{account.id}/credits", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] in ("amount", "extra")
        assert (await account.get("/account")).json()["balance"] == 1000
        await assert_ledger_consistent(api.db, account.id)

    async def test_a_debit_cannot_take_reserved_credits(
        self, api: Api, account: AccountClient
    ) -> None:
        """Credits reserved for a scheduled campaign are not the admin's to take back."""
        await api.admin(
            "PUT",
            "/admin/rates",
            json={"rates": [{"channel": "sms", "country": "FR", "price": 400}]},
        )
        list_id = (await account.post("/lists", json={"name": "l"})).json()["id"]
        await account.post(
            f"/lists/{list_id}/contacts",
            json={"contacts": [{"phone": "+33612345678"}, {"phone": "+33612345679"}]},
        )
        c = await account.post(
            "/campaigns",
            json={"name": "c", "channel": "sms", "message": {"text": "hi"}, "listIds": [list_id]},
        )
        r = await account.put(
            f"/campaigns/{c.json()['id']}/confirm", json={"scheduledAt": "2099-01-01T00:00:00Z"}
        )
        assert r.status_code == 200, r.text
        debit = f"/admin/accounts/{account.id}/credits"
        r = await api.admin("POST", debit, json={"amount": -200.0001})
        assert r.status_code == 409 and r.json()["available"] == 200
        assert (await account.get("/account")).json() == {
            "id": account.id,
            "name": "acme",
            "balance": 1000,
            "reserved": 800,
            "available": 200,
        }
        assert (await api.admin("POST", debit, json={"amount": -200})).json() == {"balance": 800}
        await assert_ledger_consistent(api.db, account.id)


class TestApiKeys:
    async def test_revoked_key_is_401(self, api: Api, account: AccountClient) -> None:
        assert (await account.get("/account")).status_code == 200
        keys = (await api.admin("GET", f"/admin/accounts/{account.id}/keys")).json()
        r = await api.admin("DELETE", f"/admin/accounts/{account.id}/keys/{keys[0]['id']}")
        assert r.status_code == 204
        assert (await account.get("/account")).status_code == 401

    async def test_every_operation_but_the_open_ones_needs_a_key(self, api: Api) -> None:
        """Walks the served schema: each operation without a key, and with a wrong one, is
        a 401 problem; /healthz, /readyz, /docs, /openapi.json, the webhooks, sign-in and
        sign-out, and the short links' redirect are open; /metrics has its own token (tested
        in tests/operations)."""
        schema = (await api.client.get("/openapi.json")).json()
        open_paths = ("/healthz", "/readyz", "/webhooks/", "/auth/", "/l/", "/metrics")
        checked = 0
        for path, operations in schema["paths"].items():
            if path.startswith(open_paths) or path.startswith("/admin"):
                continue
            url = path.replace("{", "").replace("}", "")
            url = "/".join("1" if part.endswith("_id") else part for part in url.split("/"))
            for method in operations:
                for headers in ({}, {"Authorization": "Bearer clk_wrong"}):
                    r = await api.client.request(method.upper(), url, headers=headers)
                    assert r.status_code == 401, (method, url, headers, r.text)
                    assert r.headers["content-type"].startswith("application/problem+json")
                checked += 1
        assert checked >= 30
        assert (await api.client.get("/docs")).status_code == 200
        assert (await api.client.get("/openapi.json")).status_code == 200

    async def test_missing_or_malformed_auth_is_401(self, api: Api) -> None:
        for header in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
            r = await api.client.get("/account", headers=header)
            assert r.status_code == 401, header


class TestProblems:
    async def test_malformed_json_is_400(self, api: Api) -> None:
        r = await api.admin(
            "POST",
            "/admin/accounts",
            content=b"{nope",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400
        assert r.json()["status"] == 400

    async def test_oversized_body_is_413(self, api: Api) -> None:
        r = await api.admin(
            "POST",
            "/admin/accounts",
            content=b"x" * (10 * 1024 * 1024 + 1),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413

    async def test_every_problem_has_the_documented_fields(
        self, api: Api, account: AccountClient
    ) -> None:
        other = await api.new_account("poor", credits=0)
        list_id = (await other.post("/lists", json={"name": "l"})).json()["id"]
        await other.post(
            f"/lists/{list_id}/contacts", json={"contacts": [{"phone": "+33612345678"}]}
        )
        c = (
            await other.post(
                "/campaigns",
                json={
                    "name": "c",
                    "channel": "sms",
                    "message": {"text": "hi"},
                    "listIds": [list_id],
                },
            )
        ).json()
        responses = {
            400: await account.post(
                "/lists", content=b"{", headers={"content-type": "application/json"}
            ),
            401: await api.client.get("/account"),
            402: await other.put(f"/campaigns/{c['id']}/confirm", json={}),
            404: await account.get(f"/campaigns/{c['id']}"),
            409: await other.put(f"/campaigns/{c['id']}/pause"),
            422: await account.post("/lists", json={}),
        }
        for status, r in responses.items():
            assert r.status_code == status, (status, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert {"type", "title", "status", "detail"} <= body.keys(), body
            assert body["status"] == status and body["title"] and body["detail"]
        assert responses[422].json()["errors"][0]["field"] == "name"

    async def test_unknown_route_is_problem_404(self, api: Api) -> None:
        r = await api.client.get("/nope")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_absurd_path_id_is_4xx(self, api: Api) -> None:
        for path in ("/admin/accounts/abc", "/admin/accounts/99999999999999999999999"):
            r = await api.admin("GET", path)
            assert 400 <= r.status_code < 500, (path, r.status_code)

    async def test_health(self, api: Api) -> None:
        assert (await api.client.get("/healthz")).status_code == 200
        assert (await api.client.get("/readyz")).status_code == 200
        assert (await api.client.get("/openapi.json")).status_code == 200
