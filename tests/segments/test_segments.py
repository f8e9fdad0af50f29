"""Segment CRUD, roles, 404 across accounts, and every kind of bad filter (422 naming the
path)."""

from typing import Any

import pytest

from tests.conftest import Api

GOOD = {"all": [{"field": "country", "op": "in", "value": ["FR", "BE"]}]}


def c(field: Any, op: Any, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def nested(levels: int) -> dict[str, Any]:
    """A filter `levels` objects deep: all-groups around one condition."""
    raw: dict[str, Any] = c("country", "eq", "FR")
    for _ in range(levels - 1):
        raw = {"all": [raw]}
    return raw


class TestCrud:
    async def test_create_read_list_replace_delete(self, account):
        created = await account.post("/segments", json={"name": "French", "filter": GOOD})
        assert created.status_code == 201, created.text
        body = created.json()
        assert set(body) == {"id", "name", "filter", "createdAt", "updatedAt"}
        assert body["name"] == "French" and body["filter"] == GOOD
        sid = body["id"]
        assert (await account.get(f"/segments/{sid}")).json() == body
        listed = (await account.get("/segments?limit=10")).json()
        assert listed == {"items": [body], "total": 1, "limit": 10, "offset": 0}

        other = {"not": c("attributes.tier", "exists", True)}
        put = await account.put(f"/segments/{sid}", json={"name": "No tier", "filter": other})
        assert put.status_code == 200, put.text
        assert put.json()["filter"] == other and put.json()["name"] == "No tier"
        # PUT replaces both: a missing field is 422
        partial = await account.put(f"/segments/{sid}", json={"name": "x"})
        assert partial.status_code == 422

        assert (await account.delete(f"/segments/{sid}")).status_code == 204
        assert (await account.get(f"/segments/{sid}")).status_code == 404
        assert (await account.get("/segments")).json()["total"] == 0

    async def test_another_accounts_segment_is_404(self, api: Api, account):
        sid = (await account.post("/segments", json={"name": "s", "filter": GOOD})).json()["id"]
        other = await api.new_account("other")
        for method, url, body in (
            ("GET", f"/segments/{sid}", None),
            ("GET", f"/segments/{sid}/count", None),
            ("PUT", f"/segments/{sid}", {"name": "mine", "filter": GOOD}),
            ("DELETE", f"/segments/{sid}", None),
        ):
            r = await other.request(method, url, json=body)
            assert r.status_code == 404, (method, url, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        assert (await other.get("/segments")).json()["total"] == 0
        assert (await account.get(f"/segments/{sid}")).status_code == 200

    async def test_viewers_read_and_managers_write(self, api: Api, account):
        sid = (await account.post("/segments", json={"name": "s", "filter": GOOD})).json()["id"]
        for role, can_write in (("viewer", False), ("editor", False), ("manager", True)):
            made = await account.post("/account/keys", json={"name": role, "role": role})
            assert made.status_code == 201, made.text
            key = made.json()["key"]
            headers = {"Authorization": f"Bearer {key}"}
            read = await api.client.get(f"/segments/{sid}/count", headers=headers)
            assert read.status_code == 200
            write = await api.client.put(
                f"/segments/{sid}", json={"name": role, "filter": GOOD}, headers=headers
            )
            assert write.status_code == (200 if can_write else 403), (role, write.text)
            if not can_write:
                assert write.json()["requiredRole"] == "manager"


BAD: list[tuple[Any, str, str]] = [
    # (filter, the path named, a word of the message)
    (c("colour", "eq", "red"), "filter.field", "unknown field"),
    (c("country", "like", "FR"), "filter.op", "unknown op"),
    (
        {"all": [c("country", "eq", "FR"), {"any": [c("phone", "eq", "+1"), c("x", "eq", 1)]}]},
        "filter.all[1].any[1].field",
        "unknown field",
    ),
    (
        {
            "all": [
                c("country", "eq", "FR"),
                {"any": [c("phone", "eq", "+1"), c("phone", "has", 1)]},
            ]
        },
        "filter.all[1].any[1].op",
        "unknown op",
    ),
    ({"all": []}, "filter.all", "non-empty"),
    ({"any": []}, "filter.any", "non-empty"),
    ({"all": {"field": "country"}}, "filter.all", "non-empty array"),
    ({"not": []}, "filter.not", "must be an object"),
    (
        {"all": [c("country", "eq", "FR")], "any": [c("country", "eq", "FR")]},
        "filter",
        "exactly one key",
    ),
    ("country = 'FR'", "filter", "valid dictionary"),
    ({"field": "country", "op": "eq"}, "filter.value", "required"),
    ({"field": "country", "op": "eq", "value": "FR", "extra": 1}, "filter.extra", "unknown key"),
    (c("country", "eq", 3), "filter.value", "must be a string"),
    (c("firstName", "eq", True), "filter.value", "must be a string"),
    (c("firstName", "eq", None), "filter.value", "must be a string"),
    (c("firstName", "eq", "x" * 1001), "filter.value", "at most 1000"),
    (c("firstName", "in", []), "filter.value", "array of 1 to 500"),
    (c("firstName", "in", "Ann"), "filter.value", "array of 1 to 500"),
    (c("firstName", "in", ["a"] * 501), "filter.value", "array of 1 to 500"),
    (c("firstName", "in", ["Ann", 2]), "filter.value[1]", "must be a string"),
    (c("firstName", "contains", ""), "filter.value", "must not be empty"),
    (c("createdAt", "gte", "2026-01-01"), "filter.value", "RFC 3339"),
    (c("createdAt", "gte", "2026-01-01T00:00:00"), "filter.value", "RFC 3339"),
    (c("createdAt", "gte", "yesterday"), "filter.value", "RFC 3339"),
    (c("createdAt", "gte", 1767225600), "filter.value", "RFC 3339"),
    (c("createdAt", "contains", "2026"), "filter.op", "createdAt"),
    (c("createdAt", "exists", "yes"), "filter.value", "true or false"),
    (c("attributes.age", "exists", 1), "filter.value", "true or false"),
    (c("attributes.age", "gt", True), "filter.value", "a string or a number"),
    (c("attributes.age", "eq", {"a": 1}), "filter.value", "a string, a number or a boolean"),
    (c("attributes.age", "eq", [1]), "filter.value", "a string, a number or a boolean"),
    (c("attributes.age", "gt", 1e300), "filter.value", "below 10^15"),
    (c("attributes.age", "contains", 1), "filter.value", "must be a string"),
    (c("attributes.", "eq", "x"), "filter.field", "1 to 100"),
    (c("attributes." + "n" * 101, "eq", "x"), "filter.field", "1 to 100"),
    (c('attributes.a"b', "eq", "x"), "filter.field", "quotes"),
    (c("attributes.a\\b", "eq", "x"), "filter.field", "quotes"),
    (c(7, "eq", "x"), "filter.field", "must be a string"),
    (nested(9), "filter" + ".all[0]" * 8, "8 levels"),
]


class TestBadFilters:
    @pytest.mark.parametrize(("raw", "path", "word"), BAD, ids=[b[1] + " " + b[2] for b in BAD])
    async def test_is_422_naming_the_path(self, account, raw, path, word):
        r = await account.post("/segments", json={"name": "bad", "filter": raw})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        errors = r.json()["errors"]
        assert any(e["field"] == path and word in e["message"] for e in errors), errors
        assert (await account.get("/segments")).json()["total"] == 0

    async def test_every_problem_is_named_at_once(self, account):
        raw = {"any": [c("colour", "eq", 1), c("country", "like", "FR"), {"all": []}]}
        r = await account.post("/segments", json={"name": "bad", "filter": raw})
        assert r.status_code == 422
        fields = [e["field"] for e in r.json()["errors"]]
        assert fields == ["filter.any[0].field", "filter.any[1].op", "filter.any[2].all"]

    async def test_eight_levels_are_accepted(self, account):
        r = await account.post("/segments", json={"name": "deep", "filter": nested(8)})
        assert r.status_code == 201, r.text
        count = await account.get(f"/segments/{r.json()['id']}/count")
        assert count.json() == {"contacts": 0}

    async def test_a_bad_filter_on_put_changes_nothing(self, account):
        sid = (await account.post("/segments", json={"name": "s", "filter": GOOD})).json()["id"]
        r = await account.put(
            f"/segments/{sid}", json={"name": "t", "filter": {"not": c("x", "eq", 1)}}
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "filter.not.field"
        assert (await account.get(f"/segments/{sid}")).json()["filter"] == GOOD

    async def test_too_many_conditions(self, account):
        raw = {"any": [c("country", "eq", "FR")] * 101}
        r = await account.post("/segments", json={"name": "big", "filter": raw})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "filter.any[100]"
