import pytest
from sqlalchemy import select

from clarion.audience.models import OptOutEvent
from tests.audience.conftest import FR, GB, US, new_contact, new_list
from tests.conftest import AccountClient, Api

CONTACT_KEYS = {
    "id",
    "phone",
    "country",
    "firstName",
    "lastName",
    "region",
    "timezone",
    "attributes",
    "optOuts",
    "consent",
    "createdAt",
    "updatedAt",
}


class TestCreateContact:
    async def test_created_in_e164_with_country(self, account: AccountClient) -> None:
        r = await account.post(
            "/contacts",
            json={
                "phone": "06 12 34 56 78",
                "defaultCountry": "fr",
                "firstName": "Léa",
                "attributes": {"plan": "gold", "age": 31},
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert set(body) == CONTACT_KEYS
        assert body["phone"] == FR and body["country"] == "FR"
        assert body["firstName"] == "Léa" and body["lastName"] is None
        assert body["attributes"] == {"plan": "gold", "age": 31}
        assert body["optOuts"] == []
        assert body["consent"] == {}
        assert body["createdAt"].endswith("Z")
        got = await account.get(f"/contacts/{body['id']}")
        assert got.json() == body

    async def test_duplicate_phone_is_409_with_existing_id(self, account: AccountClient) -> None:
        first = await new_contact(account, FR)
        r = await account.post("/contacts", json={"phone": "+33 6 12 34 56 78"})
        assert r.status_code == 409
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["id"] == first["id"]

    async def test_same_phone_in_two_accounts(self, api: Api, account: AccountClient) -> None:
        other = await api.new_account("other")
        await new_contact(account, FR)
        await new_contact(other, FR)

    @pytest.mark.parametrize(
        "phone", ["0612345678", "+33 6", "hello", "", "+999123456789", "+1 555 0100 999"]
    )
    async def test_invalid_phone_is_422_on_phone(self, account: AccountClient, phone: str) -> None:
        r = await account.post("/contacts", json={"phone": phone})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "phone"

    @pytest.mark.parametrize(
        "body",
        [
            {"phone": FR, "attributes": [1, 2]},
            {"phone": FR, "attributes": "x"},
            {"phone": 33612345678},
            {"phone": FR, "defaultCountry": "XX"},
            {"phone": FR, "defaultCountry": "FRA"},
            {"phone": FR, "nickname": "x"},
            {"phone": FR, "firstName": "x" * 201},
            {},
        ],
    )
    async def test_bad_bodies_are_422(self, account: AccountClient, body: dict) -> None:
        r = await account.post("/contacts", json=body)
        assert r.status_code == 422, r.text

    async def test_needs_api_key(self, api: Api) -> None:
        r = await api.client.post("/contacts", json={"phone": FR})
        assert r.status_code == 401


class TestReadUpdateDelete:
    async def test_other_account_is_404(self, api: Api, account: AccountClient) -> None:
        other = await api.new_account("other")
        contact = await new_contact(account, FR)
        for method in ("GET", "DELETE"):
            r = await other.request(method, f"/contacts/{contact['id']}")
            assert r.status_code == 404
        r = await other.put(f"/contacts/{contact['id']}", json={"firstName": "x"})
        assert r.status_code == 404
        assert (await account.get(f"/contacts/{contact['id']}")).status_code == 200

    @pytest.mark.parametrize("cid", ["abc", "0", "-1", "99999999999999999999999", "1.5"])
    async def test_absurd_ids_are_4xx(self, account: AccountClient, cid: str) -> None:
        r = await account.get(f"/contacts/{cid}")
        assert r.status_code == 422

    async def test_partial_update(self, account: AccountClient) -> None:
        contact = await new_contact(
            account, FR, firstName="Ann", lastName="Lee", attributes={"a": 1}
        )
        r = await account.put(f"/contacts/{contact['id']}", json={"lastName": None})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["firstName"] == "Ann" and body["lastName"] is None
        assert body["attributes"] == {"a": 1}
        r = await account.put(
            f"/contacts/{contact['id']}",
            json={"phone": "(650) 253-0000", "defaultCountry": "US", "attributes": {"b": 2}},
        )
        body = r.json()
        assert body["phone"] == US and body["country"] == "US"
        assert body["attributes"] == {"b": 2}
        assert body["updatedAt"] >= contact["updatedAt"]

    async def test_phone_of_another_contact_is_409(self, account: AccountClient) -> None:
        a = await new_contact(account, FR)
        b = await new_contact(account, US)
        r = await account.put(f"/contacts/{b['id']}", json={"phone": FR})
        assert r.status_code == 409
        assert r.json()["id"] == a["id"]
        r = await account.put(f"/contacts/{b['id']}", json={"phone": "nope"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phone"
        r = await account.put(f"/contacts/{b['id']}", json={"phone": US})
        assert r.status_code == 200

    async def test_opt_outs_set_by_put(self, api: Api, account: AccountClient) -> None:
        contact = await new_contact(account, FR)
        url = f"/contacts/{contact['id']}"
        r = await account.put(url, json={"optOuts": ["SMS", "WhatsApp"]})
        assert r.status_code == 200, r.text
        assert r.json()["optOuts"] == ["sms", "whatsapp"]
        r = await account.put(url, json={"optOuts": ["rcs"]})
        assert r.json()["optOuts"] == ["rcs"]
        assert (await account.get(url)).json()["optOuts"] == ["rcs"]
        async with api.db.session(write=False) as session:
            events = (
                await session.execute(
                    select(OptOutEvent.channel, OptOutEvent.action, OptOutEvent.source).order_by(
                        OptOutEvent.id
                    )
                )
            ).all()
        assert [tuple(e) for e in events] == [
            ("sms", "out", "api"),
            ("whatsapp", "out", "api"),
            ("rcs", "out", "api"),
            ("sms", "in", "api"),
            ("whatsapp", "in", "api"),
        ]

    @pytest.mark.parametrize("opt_outs", [["email"], "sms", [1], None])
    async def test_bad_opt_outs_are_422(self, account: AccountClient, opt_outs: object) -> None:
        contact = await new_contact(account, FR)
        r = await account.put(f"/contacts/{contact['id']}", json={"optOuts": opt_outs})
        assert r.status_code == 422, r.text

    async def test_delete(self, account: AccountClient) -> None:
        contact = await new_contact(account, FR)
        list_id = await new_list(account)
        await account.post(f"/lists/{list_id}/contacts", json={"contactIds": [contact["id"]]})
        before = (await account.get(f"/lists/{list_id}")).json()
        r = await account.delete(f"/contacts/{contact['id']}")
        assert r.status_code == 204
        assert (await account.get(f"/contacts/{contact['id']}")).status_code == 404
        after = (await account.get(f"/lists/{list_id}")).json()
        assert after["contactCount"] == 0
        assert after["updatedAt"] > before["updatedAt"]


class TestListContacts:
    async def test_pagination_and_filters(self, account: AccountClient) -> None:
        a = await new_contact(account, FR, firstName="Marie", lastName="Curie")
        b = await new_contact(account, US, firstName="Grace", lastName="Hopper")
        c = await new_contact(account, GB, firstName="Ada", lastName="LOVELACE")
        list_id = await new_list(account)
        await account.post(f"/lists/{list_id}/contacts", json={"contactIds": [a["id"], c["id"]]})

        page = (await account.get("/contacts", params={"limit": 2})).json()
        assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
        assert [x["id"] for x in page["items"]] == [a["id"], b["id"]]
        page = (await account.get("/contacts", params={"limit": 2, "offset": 2})).json()
        assert [x["id"] for x in page["items"]] == [c["id"]]

        async def ids(**params: object) -> list[int]:
            r = await account.get("/contacts", params=params)
            assert r.status_code == 200, r.text
            return [x["id"] for x in r.json()["items"]]

        assert await ids(listId=list_id) == [a["id"], c["id"]]
        assert await ids(search="lovelace") == [c["id"]]
        assert await ids(search="GRACE") == [b["id"]]
        assert await ids(search="ada love") == [c["id"]]
        assert await ids(search="+1 650") == [b["id"]]
        assert await ids(search="3361") == [a["id"]]
        assert await ids(search="%") == []
        assert await ids(search="mar", listId=list_id) == [a["id"]]

    async def test_other_accounts_are_invisible(self, api: Api, account: AccountClient) -> None:
        other = await api.new_account("other")
        await new_contact(other, FR)
        other_list = await new_list(other)
        page = (await account.get("/contacts")).json()
        assert page["total"] == 0 and page["items"] == []
        r = await account.get("/contacts", params={"listId": other_list})
        assert r.status_code == 404

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 0},
            {"limit": 10**9},
            {"limit": -5},
            {"offset": -1},
            {"offset": 10**30},
            {"listId": "abc"},
            {"listId": 0},
            {"limit": "ten"},
            {"search": "x" * 1000},
        ],
    )
    async def test_absurd_query_values_are_4xx(self, account: AccountClient, params: dict) -> None:
        r = await account.get("/contacts", params=params)
        assert 400 <= r.status_code < 500, r.text
        assert r.headers["content-type"].startswith("application/problem+json")


class TestRead:
    """GET /contacts/{id} answers what POST and the list answer; everything else is the
    route's problem document."""

    async def test_same_contact_as_the_list(self, account: AccountClient) -> None:
        contact = await new_contact(account, FR, firstName="Zoé", attributes={"k": [1, "x"]})
        await account.put(f"/contacts/{contact['id']}", json={"optOuts": ["whatsapp", "sms"]})
        first = await account.get(f"/contacts/{contact['id']}")
        second = await account.get(f"/contacts/{contact['id']}")
        assert first.status_code == second.status_code == 200
        assert first.content == second.content
        assert first.headers["content-type"] == "application/json"
        assert int(first.headers["content-length"]) == len(first.content)
        read = first.json()
        assert read["optOuts"] == ["sms", "whatsapp"]
        assert read["attributes"] == {"k": [1, "x"]}
        listed = (await account.get("/contacts")).json()["items"][0]
        assert read == listed

    async def test_everything_else_is_a_problem(self, api: Api, account: AccountClient) -> None:
        mine = await new_contact(account, FR)
        other = await api.new_account("other")
        theirs = await new_contact(other, GB)
        cases = [
            (account, f"/contacts/{theirs['id']}", 404),  # another account's contact
            (account, "/contacts/999999999", 404),
            (account, f"/contacts/{2**63}", 422),
            (account, "/contacts/0", 422),
            (
                AccountClient(account.client, account.id, "clk_unknown"),
                f"/contacts/{mine['id']}",
                401,
            ),
        ]
        for client, url, status in cases:
            r = await client.get(url)
            assert r.status_code == status, (url, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await account.client.get(f"/contacts/{mine['id']}")  # no key at all
        assert r.status_code == 401

    async def test_a_revoked_key_is_refused_at_once(self, api: Api, account: AccountClient) -> None:
        contact = await new_contact(account, US)
        assert (await account.get(f"/contacts/{contact['id']}")).status_code == 200
        keys = (await api.admin("GET", f"/admin/accounts/{account.id}/keys")).json()
        await api.admin("DELETE", f"/admin/accounts/{account.id}/keys/{keys[0]['id']}")
        assert (await account.get(f"/contacts/{contact['id']}")).status_code == 401


class TestUnstorableInput:
    """What no database can store (U+0000 for PostgreSQL, lone surrogates, numbers beyond
    float) is a 422 that names where it is, on both backends, and nothing is stored."""

    @pytest.mark.parametrize(
        ("method", "url", "body", "field"),
        [
            ("POST", "/contacts", {"phone": FR, "firstName": "A\x00nn"}, "firstName"),
            (
                "POST",
                "/contacts",
                {"phone": FR, "attributes": {"k": ["x", "\x00"]}},
                "attributes.k[1]",
            ),
            ("POST", "/contacts", {"phone": FR, "attributes": {"k\x00": 1}}, "attributes"),
            ("POST", "/lists", {"name": "vip\x00"}, "name"),
            ("POST", "/campaigns", {"name": "\x00", "channel": "sms"}, "name"),
        ],
    )
    async def test_in_a_body(
        self, account: AccountClient, method: str, url: str, body: dict, field: str
    ) -> None:
        r = await account.request(method, url, json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == field
        assert "NUL" in r.json()["errors"][0]["message"]

    async def test_the_text_backslash_u0000_is_storable(self, account: AccountClient) -> None:
        body = {"phone": FR, "firstName": "a\\u0000b", "attributes": {"k": None, "n": 1.5}}
        r = await account.post("/contacts", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["firstName"] == "a\\u0000b"
        assert r.json()["attributes"] == {"k": None, "n": 1.5}

    async def test_in_a_bulk_row_names_the_row(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        rows = [{"phone": FR}, {"phone": GB, "lastName": "x\x00"}]
        r = await account.post(f"/lists/{list_id}/contacts", json={"contacts": rows})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "contacts[1].lastName"
        assert (await account.get("/contacts")).json()["total"] == 0

    async def test_in_an_update_keeps_what_was_stored(self, account: AccountClient) -> None:
        contact = await new_contact(account, FR, firstName="Ann")
        r = await account.put(f"/contacts/{contact['id']}", json={"firstName": "B\x00b"})
        assert r.status_code == 422
        assert (await account.get(f"/contacts/{contact['id']}")).json() == contact

    @pytest.mark.parametrize(
        ("raw", "field", "message"),
        [
            (b'{"attributes": {"k": "\\ud800"}}', "attributes.k", "lone surrogate"),
            (b'{"attributes": {"\\udfff": 1}}', "attributes", "keys must be valid Unicode"),
            (b'{"attributes": {"k": [1, 1e400]}}', "attributes.k[1]", "finite"),
            (b'{"attributes": {"k": -1e999}}', "attributes.k", "finite"),
            # beside a plain null, which the fast check also sees as a possible infinity
            (b'{"attributes": {"a": null, "k": [1, 1e400]}}', "attributes.k[1]", "finite"),
            (b'{"attributes": {"a": null, "k": {"n": NaN}}}', "attributes.k.n", "finite"),
        ],
    )
    async def test_other_unstorable_json_is_422(
        self, account: AccountClient, raw: bytes, field: str, message: str
    ) -> None:
        """JSON can spell what no database stores: a lone surrogate, a number beyond float."""
        contact = await new_contact(account, FR, attributes={"k": "v"})
        r = await account.put(
            f"/contacts/{contact['id']}",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field
        assert message in r.json()["errors"][0]["message"]
        assert (await account.get(f"/contacts/{contact['id']}")).json() == contact

    async def test_nulls_and_the_words_for_infinity_are_stored(
        self, account: AccountClient
    ) -> None:
        contact = await new_contact(account, FR, attributes={"k": "v"})
        attributes = {"a": None, "b": "NaN", "c": "-Infinity", "d": [None, 1.5]}
        r = await account.put(f"/contacts/{contact['id']}", json={"attributes": attributes})
        assert r.status_code == 200, r.text
        assert r.json()["attributes"] == attributes

    @pytest.mark.parametrize(
        ("url", "field"),
        [("/contacts?search=a%00b", "query"), ("/lists/%00", "path"), ("/contacts/1%00", "path")],
    )
    async def test_in_the_url(self, account: AccountClient, url: str, field: str) -> None:
        r = await account.get(url)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == field


class TestAttributeLimits:
    TOO_MANY = {f"k{i}": i for i in range(101)}
    TOO_BIG = {"note": "z" * 65_600}

    async def test_create_update_and_bulk_refuse_oversized_attributes(
        self, account: AccountClient
    ) -> None:
        at_limit = {f"k{i}": i for i in range(100)}
        r = await account.post("/contacts", json={"phone": FR, "attributes": at_limit})
        assert r.status_code == 201, r.text
        contact_id = r.json()["id"]
        for attributes, words in ((self.TOO_MANY, "at most 100"), (self.TOO_BIG, "65,536 bytes")):
            r = await account.post("/contacts", json={"phone": US, "attributes": attributes})
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["field"] == "attributes"
            assert words in r.json()["detail"]
            r = await account.put(f"/contacts/{contact_id}", json={"attributes": attributes})
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "attributes"
        list_id = await new_list(account)
        r = await account.post(
            f"/lists/{list_id}/contacts",
            json={"contacts": [{"phone": GB, "attributes": self.TOO_MANY}, {"phone": US}]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 1 and len(r.json()["invalid"]) == 1
        assert (await account.get(f"/contacts/{contact_id}")).json()["attributes"] == at_limit
