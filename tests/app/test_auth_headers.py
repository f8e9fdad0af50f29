"""401 answers name the bearer scheme; two Authorization headers are refused."""

from tests.conftest import ADMIN_TOKEN, AccountClient, Api


class TestChallenge:
    async def test_every_401_carries_www_authenticate_bearer(self, api: Api) -> None:
        cases = [
            ("GET", "/account", {}),
            ("GET", "/account", {"Authorization": "Bearer clk_wrong"}),
            ("GET", "/account", {"Authorization": "Basic abc"}),
            ("GET", "/admin/accounts", {}),
            ("GET", "/admin/accounts", {"Authorization": "Bearer wrong"}),
        ]
        for method, url, headers in cases:
            r = await api.client.request(method, url, headers=headers)
            assert r.status_code == 401, (url, headers)
            assert r.headers["www-authenticate"].startswith("Bearer"), (url, headers)
            assert r.headers["content-type"].startswith("application/problem+json")

    async def test_other_problems_carry_no_challenge(self, account: AccountClient) -> None:
        r = await account.get("/campaigns/999999")
        assert r.status_code == 404 and "www-authenticate" not in r.headers


class TestTwoAuthorizationHeaders:
    async def test_refused_with_400_whatever_their_values(
        self, api: Api, account: AccountClient
    ) -> None:
        good = f"Bearer {account.key}"
        for pair in ((good, good), (good, "Bearer clk_other"), ("Bearer clk_other", good)):
            headers = [("Authorization", pair[0]), ("Authorization", pair[1])]
            r = await api.client.get("/account", headers=headers)
            assert r.status_code == 400, pair
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "one Authorization header" in r.json()["detail"]
        admin = f"Bearer {ADMIN_TOKEN}"
        r = await api.client.get(
            "/admin/accounts", headers=[("Authorization", admin), ("Authorization", admin)]
        )
        assert r.status_code == 400

    async def test_a_contact_read_with_a_cached_key_refuses_them_too(
        self, api: Api, account: AccountClient
    ) -> None:
        created = await account.post("/contacts", json={"phone": "+33612345678"})
        url = f"/contacts/{created.json()['id']}"
        assert (await account.get(url)).status_code == 200  # the key is now cached
        good = f"Bearer {account.key}"
        r = await api.client.get(url, headers=[("Authorization", good), ("Authorization", good)])
        assert r.status_code == 400
