"""Who may do what: every operation of the served OpenAPI, called by every role, with an API
key and with a session, answers as this one table says."""

from typing import Any

import pytest

from tests.conftest import AccountClient, Api
from tests.people.conftest import Browser

V, E, M, OWN = "viewer", "editor", "manager", "owner"
ROLES = (V, E, M, OWN)

# The least role each operation needs. Reading is for everyone; changing content is for
# editors; committing credits or stopping a send is for managers; people, keys and account
# settings are for owners.
TABLE: dict[tuple[str, str], str] = {
    ("GET", "/account"): V,
    ("GET", "/account/ledger"): V,
    ("GET", "/account/settings"): V,
    ("PUT", "/account/settings"): OWN,
    ("GET", "/account/keys"): OWN,
    ("POST", "/account/keys"): OWN,
    ("DELETE", "/account/keys/{key_id}"): OWN,
    ("GET", "/account/audit"): M,
    ("GET", "/me"): V,
    ("GET", "/users"): V,
    ("GET", "/users/{user_id}"): V,
    ("POST", "/users"): OWN,
    ("PUT", "/users/{user_id}"): V,  # your own name and password; the rest needs owner
    ("DELETE", "/users/{user_id}"): OWN,
    ("GET", "/contacts"): V,
    ("POST", "/contacts"): E,
    ("GET", "/contacts/{contact_id}"): V,
    ("PUT", "/contacts/{contact_id}"): E,
    ("DELETE", "/contacts/{contact_id}"): E,
    ("GET", "/lists"): V,
    ("POST", "/lists"): E,
    ("GET", "/lists/{list_id}"): V,
    ("PUT", "/lists/{list_id}"): E,
    ("DELETE", "/lists/{list_id}"): E,
    ("GET", "/lists/{list_id}/contacts"): V,
    ("POST", "/lists/{list_id}/contacts"): E,
    ("DELETE", "/lists/{list_id}/contacts"): E,
    ("POST", "/lists/{list_id}/imports"): E,
    ("GET", "/imports/{import_id}"): V,
    ("GET", "/imports/{import_id}/errors"): V,
    ("GET", "/segments"): V,
    ("POST", "/segments"): M,
    ("GET", "/segments/{segment_id}"): V,
    ("PUT", "/segments/{segment_id}"): M,
    ("DELETE", "/segments/{segment_id}"): M,
    ("GET", "/segments/{segment_id}/count"): V,
    ("GET", "/templates"): V,
    ("POST", "/templates"): E,
    ("GET", "/templates/{template_id}"): V,
    ("PUT", "/templates/{template_id}"): E,
    ("DELETE", "/templates/{template_id}"): E,
    ("GET", "/rates"): V,
    ("POST", "/preview"): V,
    ("GET", "/campaigns"): V,
    ("POST", "/campaigns"): E,
    ("GET", "/campaigns/stats"): V,
    ("GET", "/campaigns/{campaign_id}"): V,
    ("PUT", "/campaigns/{campaign_id}"): E,  # a draft; past draft it takes a manager
    ("DELETE", "/campaigns/{campaign_id}"): E,  # likewise
    ("POST", "/campaigns/{campaign_id}/calculateGoal"): E,
    ("GET", "/campaigns/{campaign_id}/price"): V,
    ("PUT", "/campaigns/{campaign_id}/confirm"): M,
    ("PUT", "/campaigns/{campaign_id}/pause"): M,
    ("PUT", "/campaigns/{campaign_id}/resume"): M,
    ("PUT", "/campaigns/{campaign_id}/cancel"): M,
    ("PUT", "/campaigns/{campaign_id}/submit"): E,
    ("PUT", "/campaigns/{campaign_id}/approve"): M,  # and a signed-in person, not the submitter
    ("PUT", "/campaigns/{campaign_id}/reject"): M,
    ("PUT", "/campaigns/{campaign_id}/abTest/winner"): M,
    ("GET", "/campaigns/{campaign_id}/messages"): V,
    ("POST", "/campaigns/{campaign_id}/test"): E,
    ("GET", "/events"): V,
    ("GET", "/campaigns/{campaign_id}/events"): V,
    ("GET", "/account/compliance"): V,
    ("PUT", "/account/compliance"): M,
    ("GET", "/contacts/{contact_id}/history"): V,
    ("GET", "/messages"): V,
    ("GET", "/campaigns/{campaign_id}/links"): V,
    ("GET", "/hooks"): V,
    ("POST", "/hooks"): M,
    ("GET", "/hooks/{hook_id}"): V,
    ("PUT", "/hooks/{hook_id}"): M,
    ("DELETE", "/hooks/{hook_id}"): M,
    ("GET", "/hooks/{hook_id}/deliveries"): V,
    ("POST", "/hooks/{hook_id}/deliveries/{delivery_id}/retry"): M,
}
# Open to anyone, or guarded otherwise: the short links' redirect is public, /metrics has
# its own token (tests/operations), the admin API the admin token.
OPEN = ("/healthz", "/readyz", "/webhooks/", "/auth/", "/admin/", "/l/", "/metrics")
MISSING_ID = "999999"


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        if not path.startswith(OPEN)
        for method, op in ops.items()
    ]


def _url(path: str) -> str:
    return "/".join(MISSING_ID if p.startswith("{") else p for p in path.split("/"))


def _streams(op: dict[str, Any]) -> bool:
    return "text/event-stream" in op.get("responses", {}).get("200", {}).get("content", {})


class TestRoleTable:
    async def test_the_served_schema_states_the_table(self, api: Api) -> None:
        schema = (await api.client.get("/openapi.json")).json()
        served = {(m, p): op.get("x-required-role") for m, p, op in _operations(schema)}
        table = {k: v for k, v in TABLE.items() if k in served}
        assert served == table, "every operation needs a row in TABLE, and the same role"
        for method, path, op in _operations(schema):
            assert op["security"] == [{"apiKey": []}, {"session": []}], (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)

    @pytest.mark.parametrize("by", ["key", "session"])
    async def test_every_role_on_every_operation(
        self, api: Api, account: AccountClient, signed_in: Any, by: str
    ) -> None:
        schema = (await api.client.get("/openapi.json")).json()
        callers: dict[str, Any] = {}
        for role in ROLES:
            if by == "session":
                callers[role] = await signed_in(role)
            else:
                r = await account.post("/account/keys", json={"name": role, "role": role})
                assert r.status_code == 201, r.text
                callers[role] = AccountClient(api.client, account.id, r.json()["key"])
        checked = 0
        for method, path, op in _operations(schema):
            required = TABLE[(method, path)]
            for role in ROLES:
                allowed = ROLES.index(role) >= ROLES.index(required)
                if allowed and _streams(op) and "{" not in path:
                    continue  # an open stream; tests/events covers it
                caller: AccountClient | Browser = callers[role]
                kwargs: dict[str, Any] = {} if method == "GET" else {"json": {}}
                r = await caller.request(method, _url(path), **kwargs)
                where = (method, path, role, by, r.status_code, r.text[:200])
                if allowed:
                    assert r.status_code not in (401, 403), where
                    assert r.status_code < 500, where
                else:
                    assert r.status_code == 403, where
                    assert r.json()["requiredRole"] == required, where
                checked += 1
        assert checked > 150
