"""The served OpenAPI document is complete, and the server takes what it allows."""

import orjson

from clarion.delivery.routes import sign
from tests.conftest import AccountClient, Api, AppFactory


async def spec(api: Api) -> dict:  # type: ignore[type-arg]
    return (await api.client.get("/openapi.json")).json()  # type: ignore[no-any-return]


class TestDocument:
    async def test_security_schemes_are_declared_and_used(self, api: Api) -> None:
        s = await spec(api)
        schemes = s["components"]["securitySchemes"]
        assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
        assert schemes["adminToken"]["scheme"] == "bearer"
        paths = s["paths"]
        # An API key or the console's session cookie (with its CSRF header) opens the API.
        assert paths["/contacts"]["post"]["security"] == [{"apiKey": []}, {"session": []}]
        assert paths["/admin/accounts"]["post"]["security"] == [{"adminToken": []}]
        assert paths["/healthz"]["get"]["security"] == []
        assert paths["/webhooks/twilio"]["post"]["security"] == []

    async def test_errors_are_documented_as_problem_json(self, api: Api) -> None:
        s = await spec(api)
        assert "Problem" in s["components"]["schemas"]
        assert "HTTPValidationError" not in s["components"]["schemas"]
        for path, operations in s["paths"].items():
            for method, operation in operations.items():
                responses = operation["responses"]
                assert "422" in responses and "default" in responses, (method, path)
                if operation["security"]:
                    assert "401" in responses, (method, path)
                for code, response in responses.items():
                    if code == "default" or code[0] in "45":
                        assert list(response["content"]) == ["application/problem+json"], (
                            method,
                            path,
                            code,
                        )
        confirm = s["paths"]["/campaigns/{campaign_id}/confirm"]["put"]["responses"]
        assert {"400", "401", "402", "404", "409", "413", "422"} <= set(confirm)

    async def test_a_405_allows_every_method_of_the_path(self, account: AccountClient) -> None:
        r = await account.request("PATCH", "/lists")
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, HEAD, POST"
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_a_405_on_a_path_with_an_id_allows_every_method(
        self, account: AccountClient
    ) -> None:
        r = await account.request("PATCH", "/contacts/1")
        assert r.status_code == 405
        assert set(r.headers["allow"].split(", ")) >= {"DELETE", "GET", "PUT"}

    async def test_a_static_path_is_not_read_as_an_id(self, account: AccountClient) -> None:
        r = await account.put("/campaigns/stats", json={})
        assert r.status_code == 405, r.text
        assert r.headers["allow"] == "GET, HEAD"


class TestAllowedInputs:
    async def test_empty_filters_are_no_filter(self, account: AccountClient) -> None:
        for url in ("/campaigns?channel=", "/campaigns?status=", "/campaigns/stats?channel=&from="):
            r = await account.get(url)
            assert r.status_code == 200, (url, r.text)
        assert (await account.get("/campaigns?channel=SMS")).status_code == 200
        assert (await account.get("/campaigns?channel=fax")).status_code == 422

    async def test_an_empty_phone_is_a_422_naming_the_field(self, account: AccountClient) -> None:
        r = await account.post("/contacts", json={"phone": ""})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "phone"
        s = (await account.client.get("/openapi.json")).json()
        assert s["components"]["schemas"]["ContactCreate"]["properties"]["phone"]["minLength"] == 1

    async def test_ids_past_2_53_are_refused_as_the_schema_says(
        self, account: AccountClient
    ) -> None:
        r = await account.get(f"/contacts/{2**53}")
        assert r.status_code == 422
        r = await account.get(f"/contacts/{2**53 - 1}")
        assert r.status_code == 404

    async def test_the_simulator_webhook_refuses_numeric_timestamps(
        self, make_api: AppFactory
    ) -> None:
        api = await make_api(simulator_url="http://127.0.0.1:9", simulator_secret="k")
        for stamp in (1700000000, "1700000000"):
            body = orjson.dumps(
                {"receipts": [{"providerMessageId": "x", "status": "read", "timestamp": stamp}]}
            )
            r = await api.client.post(
                "/webhooks/simulator",
                content=body,
                headers={"X-Simulator-Signature": sign("k", body)},
            )
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["field"] == "receipts[0].timestamp"
