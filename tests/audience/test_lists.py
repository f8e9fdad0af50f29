import pytest
from sqlalchemy import select

from clarion.audience.models import Contact
from tests.audience.conftest import FR, GB, US, new_contact, new_list
from tests.conftest import AccountClient, Api


class TestListCrud:
    async def test_create_get_update_delete(self, account: AccountClient) -> None:
        r = await account.post("/lists", json={"name": "VIP", "description": "best"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert set(body) == {"id", "name", "description", "contactCount", "createdAt", "updatedAt"}
        assert body["contactCount"] == 0 and body["description"] == "best"
        r = await account.put(f"/lists/{body['id']}", json={"name": "VIPs"})
        assert r.json()["name"] == "VIPs" and r.json()["description"] == "best"
        page = (await account.get("/lists")).json()
        assert page["total"] == 1 and page["items"][0]["name"] == "VIPs"

        contact = await new_contact(account, FR)
        await account.post(f"/lists/{body['id']}/contacts", json={"contactIds": [contact["id"]]})
        assert (await account.delete(f"/lists/{body['id']}")).status_code == 204
        assert (await account.get(f"/lists/{body['id']}")).status_code == 404
        assert (await account.get(f"/contacts/{contact['id']}")).status_code == 200

    @pytest.mark.parametrize(
        "body", [{}, {"name": ""}, {"name": "x" * 201}, {"name": 5}, {"name": "a", "x": 1}]
    )
    async def test_bad_bodies(self, account: AccountClient, body: dict) -> None:
        assert (await account.post("/lists", json=body)).status_code == 422

    async def test_other_account_is_404(self, api: Api, account: AccountClient) -> None:
        other = await api.new_account("other")
        list_id = await new_list(account)
        contact = await new_contact(other, FR)
        for method, url, kwargs in [
            ("GET", f"/lists/{list_id}", {}),
            ("PUT", f"/lists/{list_id}", {"json": {"name": "x"}}),
            ("DELETE", f"/lists/{list_id}", {}),
            ("GET", f"/lists/{list_id}/contacts", {}),
            ("POST", f"/lists/{list_id}/contacts", {"json": {"contactIds": [contact["id"]]}}),
            ("DELETE", f"/lists/{list_id}/contacts", {"json": {"contactIds": [1]}}),
            (
                "POST",
                f"/lists/{list_id}/imports",
                {"files": {"file": ("a.csv", b"phone\n+33612345678\n", "text/csv")}},
            ),
        ]:
            r = await other.request(method, url, **kwargs)
            assert r.status_code == 404, (method, url, r.text)
        assert (await account.get(f"/lists/{list_id}")).status_code == 200

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 10**9}, {"offset": -1}])
    async def test_absurd_paging(self, account: AccountClient, params: dict) -> None:
        list_id = await new_list(account)
        for url in ("/lists", f"/lists/{list_id}/contacts"):
            assert (await account.get(url, params=params)).status_code == 422


class TestMembership:
    async def test_add_by_ids_and_rows_with_counts(self, api: Api, account: AccountClient) -> None:
        list_id = await new_list(account)
        existing = await new_contact(account, FR, firstName="Old", attributes={"a": 1, "b": 1})
        member = await new_contact(account, GB)
        other = await api.new_account("other")
        foreign = await new_contact(other, US)
        await account.post(f"/lists/{list_id}/contacts", json={"contactIds": [member["id"]]})
        before = (await account.get(f"/lists/{list_id}")).json()

        r = await account.post(
            f"/lists/{list_id}/contacts",
            json={
                "contactIds": [member["id"], foreign["id"], 999999],
                "contacts": [
                    {"phone": "06 12 34 56 78", "defaultCountry": "FR", "attributes": {"b": 2}},
                    {"phone": "not a phone"},
                    {"phone": "(650) 253-0000", "defaultCountry": "us", "firstName": "New"},
                    {"phone": 33612345678},
                    {"phone": "+1 650 253 0000", "lastName": "Later"},
                    "just a string",
                    {"phone": "+33 6"},
                    {"phone": GB, "unknown": 1},
                ],
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        # valid: FR (existing, not member) -> added; US new -> added; US again -> repeated
        assert body["added"] == 2
        assert body["alreadyMembers"] == 2  # the US repeat and member["id"]
        invalid = [(i["field"], i["index"]) for i in body["invalid"]]
        assert invalid == [
            ("contacts", 1),
            ("contacts", 3),
            ("contacts", 5),
            ("contacts", 6),
            ("contacts", 7),
            ("contactIds", 1),
            ("contactIds", 2),
        ]
        by_index = {(i["field"], i["index"]): i for i in body["invalid"]}
        assert by_index[("contacts", 1)]["phone"] == "not a phone"
        assert by_index[("contacts", 6)]["reason"].startswith("too short")
        assert by_index[("contactIds", 1)]["contactId"] == foreign["id"]
        assert by_index[("contactIds", 1)]["reason"] == by_index[("contactIds", 2)][
            "reason"
        ].replace("999999", str(foreign["id"]))
        rows = 3 + 8
        assert body["added"] + body["alreadyMembers"] + len(body["invalid"]) == rows

        after = (await account.get(f"/lists/{list_id}")).json()
        assert after["contactCount"] == 3
        assert after["updatedAt"] > before["updatedAt"]
        fr = (await account.get(f"/contacts/{existing['id']}")).json()
        assert fr["firstName"] == "Old" and fr["attributes"] == {"a": 1, "b": 2}
        members = (await account.get(f"/lists/{list_id}/contacts")).json()
        us = next(m for m in members["items"] if m["phone"] == US)
        assert us["firstName"] == "New" and us["lastName"] == "Later" and us["country"] == "US"
        async with api.db.session(write=False) as session:
            owners = (await session.execute(select(Contact.account_id, Contact.phone))).all()
        assert sorted(tuple(o) for o in owners) == sorted(
            [(account.id, FR), (account.id, GB), (account.id, US), (other.id, US)]
        )

    async def test_adding_again_changes_nothing(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        rows = {"contacts": [{"phone": FR}, {"phone": US}]}
        first = (await account.post(f"/lists/{list_id}/contacts", json=rows)).json()
        assert (first["added"], first["alreadyMembers"]) == (2, 0)
        before = (await account.get(f"/lists/{list_id}")).json()
        again = (await account.post(f"/lists/{list_id}/contacts", json=rows)).json()
        assert (again["added"], again["alreadyMembers"]) == (0, 2)
        after = (await account.get(f"/lists/{list_id}")).json()
        assert after["updatedAt"] == before["updatedAt"]

    async def test_10001_rows_is_422(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        rows = [{"phone": f"+3361234{i:04d}"} for i in range(10_001)]
        r = await account.post(f"/lists/{list_id}/contacts", json={"contacts": rows})
        assert r.status_code == 422
        r = await account.post(
            f"/lists/{list_id}/contacts",
            json={"contacts": rows[:5_001], "contactIds": list(range(1, 5_001))},
        )
        assert r.status_code == 422
        assert (await account.get(f"/lists/{list_id}")).json()["contactCount"] == 0

    async def test_10000_rows_upserted(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        rows = [{"phone": f"+336{i:08d}", "attributes": {"n": i}} for i in range(10_000)]
        r = await account.post(f"/lists/{list_id}/contacts", json={"contacts": rows})
        assert r.status_code == 200, r.text
        assert r.json() == {"added": 10_000, "alreadyMembers": 0, "invalid": []}
        page = (await account.get("/contacts", params={"search": "+33600000042"})).json()
        assert page["items"][0]["attributes"] == {"n": 42}

    async def test_remove(self, api: Api, account: AccountClient) -> None:
        list_id = await new_list(account)
        a = await new_contact(account, FR)
        b = await new_contact(account, US)
        await account.post(f"/lists/{list_id}/contacts", json={"contactIds": [a["id"], b["id"]]})
        before = (await account.get(f"/lists/{list_id}")).json()
        r = await account.request(
            "DELETE", f"/lists/{list_id}/contacts", json={"contactIds": [a["id"], 12345]}
        )
        assert r.status_code == 200 and r.json() == {"removed": 1}
        after = (await account.get(f"/lists/{list_id}")).json()
        assert after["contactCount"] == 1 and after["updatedAt"] > before["updatedAt"]
        assert (await account.get(f"/contacts/{a['id']}")).status_code == 200
        members = (await account.get(f"/lists/{list_id}/contacts")).json()
        assert [m["id"] for m in members["items"]] == [b["id"]]

    @pytest.mark.parametrize(
        "body",
        [
            {"contactIds": ["x"]},
            {"contactIds": [0]},
            {"contactIds": [2**70]},
            {"contactIds": "1"},
            {"contacts": {"phone": FR}},
            {"other": []},
        ],
    )
    async def test_bad_bodies_are_422(self, account: AccountClient, body: dict) -> None:
        list_id = await new_list(account)
        r = await account.post(f"/lists/{list_id}/contacts", json=body)
        assert r.status_code == 422, r.text
