"""calculateGoal and GET /price: audience resolution and exact pricing."""

from typing import Any

from tests.campaigns.conftest import World, create, sms_body
from tests.conftest import AccountClient

ESTIMATE_KEYS = {
    "campaignId", "channel", "recipients", "excluded", "units", "price", "maxPrice",
    "worstCase", "breakdown", "encoding", "maxParts", "balance", "available", "sufficient",
    "computedAt", "abTest", "schedule", "unitsWithoutSmartEncoding",
}  # fmt: skip


async def goal(account: AccountClient, campaign_id: int) -> dict[str, Any]:
    r = await account.post(f"/campaigns/{campaign_id}/calculateGoal")
    assert r.status_code == 200, r.text
    return dict(r.json())


def by_country(estimate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {(row["country"] + "/" + (row["category"] or "")): row for row in estimate["breakdown"]}


class TestAudience:
    async def test_union_minus_exclusions_opt_outs_and_unpriced(
        self, account: AccountClient, world: World
    ) -> None:
        a, b, x = [await world.new_list(account) for _ in range(3)]
        only_a = await world.people(account, [a], 2)
        both = await world.people(account, [a, b], 2)  # two duplicates
        de = await world.people(account, [b], 1, "DE")
        await world.people(account, [a, x], 1)  # excluded by list x
        out = await world.people(account, [a], 1)
        await world.opt_out(out, "sms")
        wa_only = await world.people(account, [a], 1)
        await world.opt_out(wa_only, "whatsapp")  # other channel: still in
        await world.people(account, [a], 1, "ZZ")  # no rate: invalid
        assert only_a and both and de
        c = await create(account, sms_body([a, b], excludeListIds=[x]))
        e = await goal(account, c["id"])
        assert set(e) == ESTIMATE_KEYS
        assert e["campaignId"] == c["id"] and e["channel"] == "sms"
        assert e["recipients"] == 6
        assert e["excluded"] == {
            "duplicates": 2, "optedOut": 1, "noConsent": 0, "frequencyCapped": 0, "invalid": 1,
        }  # fmt: skip
        assert e["units"] == 6
        assert e["price"] == 0.44  # 5 x 0.07 + 1 x 0.09
        assert by_country(e) == {
            "DE/": {
                "country": "DE", "category": None, "recipients": 1, "units": 1,
                "unitPrice": 0.09, "price": 0.09,
            },
            "FR/": {
                "country": "FR", "category": None, "recipients": 5, "units": 5,
                "unitPrice": 0.07, "price": 0.35,
            },
        }  # fmt: skip
        assert e["encoding"] == "GSM-7" and e["maxParts"] == 1
        assert e["balance"] == 1000 and e["available"] == 1000 and e["sufficient"] is True
        assert e["maxPrice"] is None
        stored = (await account.get(f"/campaigns/{c['id']}")).json()["estimate"]
        assert stored == e

    async def test_empty_lists_price_nothing(self, account: AccountClient, world: World) -> None:
        c = await create(account, sms_body([]))
        e = await goal(account, c["id"])
        assert e["recipients"] == 0 and e["price"] == 0 and e["breakdown"] == []
        assert e["maxParts"] == 1

    async def test_exact_to_the_ten_thousandth(self, account: AccountClient, world: World) -> None:
        await world.rates([("sms", "FR", "", "0.0333")])
        lst = await world.new_list(account)
        await world.people(account, [lst], 3)
        c = await create(account, sms_body([lst], "x" * 161))  # 2 parts
        e = await goal(account, c["id"])
        assert e["units"] == 6 and e["price"] == 0.1998

    async def test_insufficient_is_reported(self, account: AccountClient, world: World) -> None:
        await world.rates([("sms", "FR", "", "600")])
        lst = await world.new_list(account)
        await world.people(account, [lst], 2)
        c = await create(account, sms_body([lst]))
        e = await goal(account, c["id"])
        assert e["price"] == 1200 and e["sufficient"] is False

    async def test_available_is_net_of_other_reservations(
        self, account: AccountClient, world: World
    ) -> None:
        """available = balance - reserved; a scheduled campaign's own reservation still
        counts as available to it, another campaign's does not."""
        await world.rates([("sms", "FR", "", "400")])
        lst = await world.new_list(account)
        await world.people(account, [lst], 2)
        held = await create(account, sms_body([lst]))
        r = await account.put(
            f"/campaigns/{held['id']}/confirm", json={"scheduledAt": "2099-01-01T00:00:00Z"}
        )
        assert r.status_code == 200 and r.json()["cost"]["reserved"] == 800
        own = await goal(account, held["id"])
        assert (own["balance"], own["available"], own["sufficient"]) == (1000, 200, True)
        other = await goal(account, (await create(account, sms_body([lst])))["id"])
        assert (other["price"], other["available"], other["sufficient"]) == (800, 200, False)
        one = await world.new_list(account, "one")
        await world.people(account, [one], 1)
        fits = await goal(account, (await create(account, sms_body([one], "x")))["id"])
        assert (fits["price"], fits["sufficient"]) == (400, False)  # 400 > 200 available
        await world.rates([("sms", "FR", "", "200")])
        fits = await goal(account, (await create(account, sms_body([one], "y")))["id"])
        assert (fits["price"], fits["available"], fits["sufficient"]) == (200, 200, True)


class TestPersonalizedSms:
    async def test_segments_counted_per_recipient(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.contacts(
            account,
            [lst],
            [
                {"firstName": "Al"},  # 148 chars: 1 part
                {"firstName": "Al"},
                {"firstName": "Bartholomew-Maximilian"},  # 168: 2 parts
                {"firstName": "Łukasz"},  # UCS-2, 152: 3 parts
                {"firstName": None},  # falls back to templateParams: "friend" -> 152: 1 part
            ],
        )
        text = "Hi {{firstName}}, " + "x" * 140
        body = sms_body([lst]) | {
            "message": {"text": text, "templateParams": {"firstName": "friend"}}
        }
        c = await create(account, body)
        e = await goal(account, c["id"])
        assert e["recipients"] == 5
        assert e["units"] == 1 + 1 + 2 + 3 + 1
        assert e["encoding"] == "mixed" and e["maxParts"] == 3
        assert e["price"] == 0.56  # 8 x 0.07

    async def test_exclusions_are_the_same_as_unpersonalized(
        self, account: AccountClient, world: World
    ) -> None:
        a, b, x = [await world.new_list(account) for _ in range(3)]
        people = [{"firstName": "Al"}, {"firstName": "Bo"}, {"firstName": "Al", "country": "DE"}]
        await world.contacts(account, [a, b], people)  # 3 duplicates
        await world.contacts(account, [a, x], [{"firstName": "Al"}])  # excluded
        out = await world.contacts(account, [a], [{"firstName": "Al"}, {"firstName": "Cy"}])
        await world.opt_out(out)
        await world.contacts(account, [b], [{"firstName": "Al", "country": "ZZ"}])  # invalid
        plain = await create(account, sms_body([a, b], excludeListIds=[x]))
        personal = await create(account, sms_body([a, b], "Hi {{firstName}}", excludeListIds=[x]))
        e1, e2 = await goal(account, plain["id"]), await goal(account, personal["id"])
        assert e1["excluded"] == e2["excluded"] == {
            "duplicates": 3, "optedOut": 2, "noConsent": 0, "frequencyCapped": 0, "invalid": 1,
        }  # fmt: skip
        assert e1["recipients"] == e2["recipients"] == 3
        assert e1["breakdown"] == e2["breakdown"]

    async def test_extension_characters_in_attributes(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.contacts(
            account,
            [lst],
            [{"attributes": {"deal": "5€"}}, {"attributes": {"deal": "5E"}}],
        )
        text = "x" * 158 + "{{attributes.deal}}"  # 160 with "5E", 161 with "5€"
        c = await create(account, sms_body([lst], text))
        e = await goal(account, c["id"])
        assert e["units"] == 1 + 2 and e["maxParts"] == 2 and e["encoding"] == "GSM-7"

    async def test_phone_variable(self, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        await world.contacts(
            account, [lst], [{"phone": "+33612345678"}, {"phone": "+1202555012", "country": "US"}]
        )
        text = "y" * 148 + "{{phone}}"  # 160 with 12 characters, 159 with 11
        c = await create(account, sms_body([lst], text))
        e = await goal(account, c["id"])
        assert by_country(e)["FR/"]["units"] == 1 and by_country(e)["US/"]["units"] == 1
        text = "y" * 149 + "{{phone}}"  # 161 with 12: 2 parts, 160 with 11: 1 part
        await account.put(f"/campaigns/{c['id']}", json={"message": {"text": text}})
        e = await goal(account, c["id"])
        assert by_country(e)["FR/"]["units"] == 2 and by_country(e)["US/"]["units"] == 1


class TestWhatsApp:
    async def test_priced_by_country_and_category(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 2, "FR")
        await world.people(account, [lst], 1, "DE")
        tpl = await world.template(account, body="Hi {{firstName}}", category="marketing")
        c = await create(
            account,
            {"name": "w", "channel": "whatsapp", "message": {"templateId": tpl}, "listIds": [lst]},
        )
        e = await goal(account, c["id"])
        assert e["recipients"] == 3 and e["units"] == 3
        assert e["price"] == 0.3  # 2 x 0.11 + 0.08 (DE any category)
        assert by_country(e)["FR/marketing"]["unitPrice"] == 0.11
        assert e["encoding"] is None and e["maxParts"] is None
        await world.set_template(tpl, category="utility")
        e = await goal(account, c["id"])
        assert e["price"] == 0.12  # 2 x 0.02 + 0.08


class TestRcs:
    async def test_basic_single_and_fallback_worst_case(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 2, "FR")
        c = await create(account, sms_body([lst]) | {"channel": "rcs"})
        e = await goal(account, c["id"])
        assert e["price"] == 0.06 and by_country(e)["FR/basic"]["units"] == 2
        assert e["maxPrice"] is None
        # 81 x "é" = 162 UTF-8 bytes: a single, not basic, message
        await account.put(f"/campaigns/{c['id']}", json={"message": {"text": "é" * 81}})
        e = await goal(account, c["id"])
        assert e["price"] == 0.1 and "FR/single" in by_country(e)
        # With SMS fallback: maxPrice = all by SMS (81 chars GSM-7: 1 part at 0.07)
        await account.put(
            f"/campaigns/{c['id']}",
            json={"fallbackChannel": "sms", "message": {"text": "hello"}},
        )
        e = await goal(account, c["id"])
        assert e["price"] == 0.06 and e["maxPrice"] == 0.14 and e["worstCase"] == 0.14
        assert e["encoding"] == "GSM-7" and e["maxParts"] == 1

    async def test_rich_card_template_is_single(self, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 1, "FR")
        tpl = await world.template(
            account, channel="rcs", body="Hi", rich_card={"title": "Sale"}, category=None
        )
        c = await create(
            account,
            {"name": "r", "channel": "rcs", "message": {"templateId": tpl}, "listIds": [lst]},
        )
        e = await goal(account, c["id"])
        assert e["price"] == 0.05


class TestGetPrice:
    async def test_reprices_only_when_inputs_change(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        people = await world.people(account, [lst], 2)
        c = await create(account, sms_body([lst]))
        first = await goal(account, c["id"])
        p = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert p == {
            "price": 0.14,
            "units": 2,
            "recipients": 2,
            "computedAt": first["computedAt"],
            "reserved": 0,
            "spent": 0,
        }
        # audience grows
        await world.people(account, [lst], 1)
        p = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert p["recipients"] == 3 and p["computedAt"] != first["computedAt"]
        again = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert again == p  # nothing changed: not re-priced
        # opt-out
        await world.opt_out(people[:1])
        p = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert p["recipients"] == 2
        # rates
        await world.rates([("sms", "FR", "", "0.5")])
        p = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert p["price"] == 1.0
        # message
        await account.put(f"/campaigns/{c['id']}", json={"message": {"text": "z" * 200}})
        p = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert p["units"] == 4 and p["price"] == 2.0
        stored = (await account.get(f"/campaigns/{c['id']}")).json()["estimate"]
        assert stored["price"] == 2.0

    async def test_price_without_estimate_computes_one(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 1)
        c = await create(account, sms_body([lst]))
        p = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert p["price"] == 0.07 and p["recipients"] == 1

    async def test_template_change_reprices(self, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 2, "FR")
        tpl = await world.template(account, body="Hi", category="marketing")
        c = await create(
            account,
            {"name": "w", "channel": "whatsapp", "message": {"templateId": tpl}, "listIds": [lst]},
        )
        assert (await account.get(f"/campaigns/{c['id']}/price")).json()["price"] == 0.22
        await world.set_template(tpl, category="utility")
        assert (await account.get(f"/campaigns/{c['id']}/price")).json()["price"] == 0.04

    async def test_a_sending_campaign_is_not_repriced(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 2)
        c = await create(account, sms_body([lst]))
        assert (await account.put(f"/campaigns/{c['id']}/confirm", json={})).status_code == 200
        confirmed = (await account.get(f"/campaigns/{c['id']}")).json()["estimate"]
        await world.rates([("sms", "FR", "", "0.5")])
        await world.people(account, [lst], 1)
        p = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert (p["price"], p["recipients"], p["computedAt"]) == (
            0.14,
            2,
            confirmed["computedAt"],
        )
        fresh = await goal(account, c["id"])  # a what-if: priced now, not stored
        assert (fresh["price"], fresh["recipients"]) == (1.5, 3)
        assert (await account.get(f"/campaigns/{c['id']}")).json()["estimate"] == confirmed

    async def test_scheduled_price_rise_only_reports(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 2)
        c = await create(account, sms_body([lst]))
        r = await account.put(
            f"/campaigns/{c['id']}/confirm", json={"scheduledAt": "2099-01-01T00:00:00Z"}
        )
        assert r.status_code == 200 and r.json()["cost"]["reserved"] == 0.14
        await world.rates([("sms", "FR", "", "0.1")])
        p = (await account.get(f"/campaigns/{c['id']}/price")).json()
        assert p["price"] == 0.2 and p["reserved"] == 0.14
        me = (await account.get("/account")).json()
        assert me["reserved"] == 0.14
