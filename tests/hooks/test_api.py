"""The hooks endpoints: creation with its one-time secret, the URL rules, validation,
pagination, updates and deletion, and another account's hooks answering 404."""

import base64

import pytest

from clarion.config import Settings
from clarion.hooks.addresses import AddressRefused, GuardedResolver, check_resolved
from tests.conftest import AccountClient, Api, AppFactory
from tests.hooks.conftest import ALLOW

PUBLIC = "https://93.184.216.34/hooks"  # a global address: no DNS needed


async def test_create_shows_the_secret_once(acme: AccountClient) -> None:
    r = await acme.post(
        "/hooks", json={"url": PUBLIC, "events": ["message.delivered"], "description": "crm"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["enabled"] is True and body["events"] == ["message.delivered"]
    assert body["url"] == PUBLIC and body["description"] == "crm" and body["createdAt"]
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"][len("whsec_") :])) == 24
    got = await acme.get(f"/hooks/{body['id']}")
    assert got.status_code == 200 and "secret" not in got.json()
    listed = (await acme.get("/hooks")).json()
    assert listed["total"] == 1 and "secret" not in listed["items"][0]


async def test_list_is_paginated(acme: AccountClient) -> None:
    for i in range(3):
        r = await acme.post("/hooks", json={"url": f"{PUBLIC}/{i}", "events": ["*"]})
        assert r.status_code == 201
    page = (await acme.get("/hooks", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 1
    assert [h["url"] for h in page["items"]] == [f"{PUBLIC}/1", f"{PUBLIC}/2"]


@pytest.mark.parametrize(
    "events",
    [[], ["message.bounced"], ["*", 3], "message.sent", None],
)
async def test_events_are_validated(acme: AccountClient, events: object) -> None:
    r = await acme.post("/hooks", json={"url": PUBLIC, "events": events})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # plain http to a host not allowed
        "https://127.0.0.1/hook",
        "https://127.8.9.10:8443/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://0.0.0.0/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "https://api.localhost/hook",
        "https://clarion.test/hook",  # the server's own name (public_url)
        "ftp://93.184.216.34/hook",
        "not a url",
        "https://user:pw@93.184.216.34/hook",
        "https://93.184.216.34:99999/hook",
    ],
)
async def test_internal_and_plain_urls_are_refused(make_api: AppFactory, url: str) -> None:
    api = await make_api(public_url="https://clarion.test")
    client = await api.new_account("acme")
    r = await client.post("/hooks", json={"url": url, "events": ["*"]})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] in ("url", "body.url")


async def test_allowed_hosts_may_use_http_and_loopback(make_api: AppFactory) -> None:
    plain = await (await make_api()).new_account("a")
    r = await plain.post("/hooks", json={"url": "http://127.0.0.1:9/h", "events": ["*"]})
    assert r.status_code == 422
    allowed = await (await make_api(**ALLOW)).new_account("b")
    r = await allowed.post("/hooks", json={"url": "http://127.0.0.1:9/h", "events": ["*"]})
    assert r.status_code == 201, r.text


async def test_update_changes_only_the_fields_given(acme: AccountClient) -> None:
    hook = (
        await acme.post("/hooks", json={"url": PUBLIC, "events": ["*"], "description": "d"})
    ).json()
    r = await acme.put(f"/hooks/{hook['id']}", json={"events": ["campaign.completed"]})
    assert r.status_code == 200, r.text
    assert r.json()["events"] == ["campaign.completed"] and r.json()["description"] == "d"
    r = await acme.put(f"/hooks/{hook['id']}", json={"url": "https://10.0.0.1/x"})
    assert r.status_code == 422
    r = await acme.put(f"/hooks/{hook['id']}", json={"enabled": False, "description": None})
    assert r.json()["enabled"] is False and r.json()["description"] is None
    r = await acme.put(f"/hooks/{hook['id']}", json={"secret": "whsec_x"})
    assert r.status_code == 422


async def test_delete(acme: AccountClient) -> None:
    hook = (await acme.post("/hooks", json={"url": PUBLIC, "events": ["*"]})).json()
    assert (await acme.delete(f"/hooks/{hook['id']}")).status_code == 204
    assert (await acme.get(f"/hooks/{hook['id']}")).status_code == 404
    assert (await acme.delete(f"/hooks/{hook['id']}")).status_code == 404


async def test_another_accounts_hook_is_404(hook_api: Api, acme: AccountClient) -> None:
    other = await hook_api.new_account("other")
    hook = (await acme.post("/hooks", json={"url": PUBLIC, "events": ["*"]})).json()
    path = f"/hooks/{hook['id']}"
    assert (await other.get(path)).status_code == 404
    assert (await other.put(path, json={"enabled": False})).status_code == 404
    assert (await other.delete(path)).status_code == 404
    assert (await other.get(f"{path}/deliveries")).status_code == 404
    assert (await other.post(f"{path}/deliveries/1/retry")).status_code == 404
    assert (await other.get("/hooks")).json()["total"] == 0
    assert (await acme.get(path)).status_code == 200


async def test_a_name_resolving_to_an_internal_address_is_refused() -> None:
    """The check made when a hook is saved and the resolver every delivery connects
    through (so a name re-pointed at an internal address later is refused too)."""
    settings = Settings()
    with pytest.raises(AddressRefused):
        await check_resolved("localhost", settings)
    resolver = GuardedResolver(settings)
    try:
        with pytest.raises(OSError, match="internal address"):
            await resolver.resolve("localhost", 443)
        allowed = GuardedResolver(Settings(hooks_allow_http_hosts=["localhost"]))
        assert await allowed.resolve("localhost", 443)
        await allowed.close()
    finally:
        await resolver.close()
