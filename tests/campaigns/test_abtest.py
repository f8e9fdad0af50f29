"""A/B campaigns over HTTP: the definition (variants, abTest) and its validation, the
estimate and reservation, and the early decision endpoint."""

from typing import Any

from clarion.campaigns import variants
from tests.campaigns.conftest import World, balance, create, fields
from tests.conftest import AccountClient, Api, assert_ledger_consistent

LONG = "x" * 200  # two GSM-7 parts


def ab_body(list_ids: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "name": "ab",
        "channel": "sms",
        "variants": [
            {"name": "A", "message": {"text": "Hello"}},
            {"name": "B", "message": {"text": LONG}},
        ],
        "abTest": {"testShare": 0.5, "metric": "delivered", "decideAfterMinutes": 60},
        "listIds": list_ids,
    } | extra


class TestDefinition:
    async def test_create_and_read_an_ab_campaign(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        c = await create(account, ab_body([lst]))
        assert c["message"] is None
        assert [v["name"] for v in c["variants"]] == ["A", "B"]
        assert c["variants"][1]["message"] == {"text": LONG}
        stats = c["variants"][0]["stats"]
        assert (stats["recipients"], stats["clicks"], stats["uniqueClicks"]) == (0, 0, 0)
        assert c["abTest"] == {
            "testShare": 0.5,
            "metric": "delivered",
            "decideAfterMinutes": 60,
            "testStartedAt": None,
            "winner": None,
            "decidedAt": None,
        }
        read = (await account.get(f"/campaigns/{c['id']}")).json()
        assert read["variants"] == c["variants"] and read["abTest"] == c["abTest"]

    async def test_shape_errors_name_their_fields(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        cases: list[tuple[dict[str, Any], str]] = [
            (ab_body([lst], message={"text": "hi"}), "message"),
            ({k: v for k, v in ab_body([lst]).items() if k != "abTest"}, "abTest"),
            (
                {k: v for k, v in ab_body([lst]).items() if k != "variants"}
                | {"message": {"text": "hi"}},
                "variants",
            ),
            (ab_body([lst], variants=[{"name": "A", "message": {"text": "a"}}]), "variants"),
            (
                ab_body(
                    [lst],
                    variants=[{"name": f"V{i}", "message": {"text": "a"}} for i in range(6)],
                ),
                "variants",
            ),
            (
                ab_body(
                    [lst],
                    variants=[
                        {"name": "A", "message": {"text": "a"}},
                        {"name": " a ", "message": {"text": "b"}},
                    ],
                ),
                "variants[1].name",
            ),
            (
                ab_body(
                    [lst],
                    variants=[
                        {"name": "A", "message": {"text": "Hi {{nickname}}"}},
                        {"name": "B", "message": {"text": "b"}},
                    ],
                ),
                "variants[0].message.text",
            ),
            (
                ab_body(
                    [lst],
                    variants=[
                        {"name": "A", "message": {"text": "a"}},
                        {"name": "B", "message": {"templateId": 1}},
                    ],
                ),
                "variants[1].message.templateId",
            ),
            (
                ab_body(
                    [lst],
                    variants=[
                        {"name": "A", "message": {"text": "a"}},
                        {"name": "", "message": {"text": "b"}},
                    ],
                ),
                "variants[1].name",
            ),
        ]
        for share in (0, 1, -0.5, 1.5, "half"):
            test = {"testShare": share, "metric": "delivered", "decideAfterMinutes": 5}
            cases.append((ab_body([lst], abTest=test), "abTest.testShare"))
        for minutes in (0, -1, 10**6):
            test = {"testShare": 0.2, "metric": "delivered", "decideAfterMinutes": minutes}
            cases.append((ab_body([lst], abTest=test), "abTest.decideAfterMinutes"))
        test = {"testShare": 0.2, "metric": "opens", "decideAfterMinutes": 5}
        cases.append((ab_body([lst], abTest=test), "abTest.metric"))
        # Clicks are counted on tracked links: the click metric needs them.
        clicks = {"testShare": 0.2, "metric": "uniqueClicks", "decideAfterMinutes": 5}
        cases.append((ab_body([lst], abTest=clicks), "abTest.metric"))
        # Tracked links stay SMS and RCS only, variants or not.
        whatsapp = ab_body([lst], channel="whatsapp", trackLinks=True, abTest=clicks)
        whatsapp["variants"] = [
            {"name": n, "message": {"templateId": await world.template(account, body=n)}}
            for n in ("A", "B")
        ]
        cases.append((whatsapp, "trackLinks"))
        for body, field in cases:
            r = await account.post("/campaigns", json=body)
            assert r.status_code == 422, (field, r.text)
            assert field in fields(r), (field, r.json())

    async def test_any_targeting_and_tracked_links_with_a_click_metric(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        segment = await account.post(
            "/segments",
            json={"name": "fr", "filter": {"field": "country", "op": "eq", "value": "FR"}},
        )
        assert segment.status_code == 201, segment.text
        clicks = {"testShare": 0.2, "metric": "uniqueClicks", "decideAfterMinutes": 5}
        gold = {"field": "attributes.tier", "op": "eq", "value": "gold"}
        bodies = [
            ab_body([lst], segmentIds=[segment.json()["id"]]),
            ab_body([], filter=gold),
            ab_body([lst], segmentIds=[segment.json()["id"]], filter=gold, excludeListIds=[lst]),
            ab_body([lst], trackLinks=True),
            ab_body([lst], trackLinks=True, abTest=clicks),
        ]
        for body in bodies:
            r = await account.post("/campaigns", json=body)
            assert r.status_code == 201, (body, r.text)
            made = r.json()
            assert made["variants"] and made["abTest"]["metric"] == body["abTest"]["metric"]
            assert made["trackLinks"] is body.get("trackLinks", False)
        # A click test turned into a test without tracked links is refused.
        r = await account.put(f"/campaigns/{made['id']}", json={"trackLinks": False})
        assert r.status_code == 422 and fields(r) == ["abTest.metric"]

    async def test_update_switches_between_a_message_and_variants(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        c = await create(account, ab_body([lst]))
        r = await account.put(f"/campaigns/{c['id']}", json={"message": {"text": "plain"}})
        assert r.status_code == 200, r.text
        plain = r.json()
        assert plain["message"] == {"text": "plain"}
        assert plain["variants"] is None and plain["abTest"] is None

        r = await account.put(f"/campaigns/{c['id']}", json={"variants": ab_body([])["variants"]})
        assert r.status_code == 422 and "abTest" in fields(r)
        r = await account.put(
            f"/campaigns/{c['id']}",
            json={"variants": ab_body([])["variants"], "abTest": ab_body([])["abTest"]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["message"] is None and r.json()["abTest"]["testShare"] == 0.5
        r = await account.put(
            f"/campaigns/{c['id']}",
            json={"abTest": {"testShare": 0.2, "metric": "delivered", "decideAfterMinutes": 5}},
        )
        assert r.status_code == 200, r.text
        assert r.json()["abTest"]["testShare"] == 0.2
        assert [v["name"] for v in r.json()["variants"]] == ["A", "B"]
        r = await account.put(
            f"/campaigns/{c['id']}",
            json={"message": {"text": "x"}, "variants": ab_body([])["variants"]},
        )
        assert r.status_code == 422 and "message" in fields(r)


class TestEstimate:
    async def test_prices_the_test_per_variant_and_the_remainder_at_the_dearest(
        self, api: Api, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 40)  # FR: 0.07 a part
        c = await create(account, ab_body([lst]))
        estimate = (await account.post(f"/campaigns/{c['id']}/calculateGoal")).json()
        split = estimate["abTest"]
        assert (split["testRecipients"], split["remainderRecipients"]) == (20, 20)
        a, b = split["variants"]
        assert (a["testRecipients"], a["testUnits"], a["testPrice"]) == (10, 10, 0.7)
        assert (b["testRecipients"], b["testUnits"], b["testPrice"]) == (10, 20, 1.4)
        assert (a["audiencePrice"], b["audiencePrice"]) == (2.8, 5.6)
        assert (split["remainderUnits"], split["remainderPrice"]) == (40, 2.8)
        assert estimate["price"] == 4.9 and estimate["units"] == 70
        assert estimate["maxParts"] == 2 and estimate["recipients"] == 40

        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 200, r.text
        assert r.json()["cost"]["reserved"] == 4.9
        assert (await balance(account))["reserved"] == 4.9
        await assert_ledger_consistent(api.db, account.id)

    async def test_tracked_links_are_priced_at_their_short_length_for_every_variant(
        self, api: Api, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 40)  # FR: 0.07 a part
        body = ab_body([lst])
        # A: 173 characters as written, 33 with its short link (31 characters:
        # http://127.0.0.1:8000/l/ and a 7-character code). B: 143 as written, 162 tracked.
        body["variants"] = [
            {"name": "A", "message": {"text": "A https://shop.example/" + "p" * 150}},
            {"name": "B", "message": {"text": "B" * 130 + " https://b.co"}},
        ]
        c = await create(account, body)
        as_written = (await account.post(f"/campaigns/{c['id']}/calculateGoal")).json()
        a, b = as_written["abTest"]["variants"]
        assert (a["audienceUnits"], b["audienceUnits"]) == (80, 40)

        r = await account.put(f"/campaigns/{c['id']}", json={"trackLinks": True})
        assert r.status_code == 200, r.text
        estimate = (await account.post(f"/campaigns/{c['id']}/calculateGoal")).json()
        split = estimate["abTest"]
        a, b = split["variants"]
        assert (a["audienceUnits"], b["audienceUnits"]) == (40, 80)
        assert (a["testUnits"], a["testPrice"], b["testUnits"], b["testPrice"]) == (
            10,
            0.7,
            20,
            1.4,
        )
        # The remainder is held at the dearest variant, B once its link is counted.
        assert (split["remainderUnits"], split["remainderPrice"]) == (40, 2.8)
        assert estimate["price"] == 4.9 and estimate["units"] == 70 and estimate["maxParts"] == 2
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 200, r.text
        assert r.json()["cost"]["reserved"] == 4.9
        await assert_ledger_consistent(api.db, account.id)

    async def test_a_variant_over_ten_parts_is_refused_at_confirm(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 3)
        body = ab_body([lst])
        body["variants"][1]["message"]["text"] = "y" * 1600
        c = await create(account, body)
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 422 and fields(r) == ["variants[1].message.text"]
        assert (await balance(account))["reserved"] == 0


class TestEarlyDecision:
    async def test_decide_once_by_a_known_name_while_sending(
        self, api: Api, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 40)
        c = await create(account, ab_body([lst]))
        url = f"/campaigns/{c['id']}/abTest/winner"
        r = await account.put(url, json={"name": "A"})
        assert r.status_code == 409 and r.json()["currentStatus"] == "draft"
        assert (await account.put(f"/campaigns/{c['id']}/confirm", json={})).status_code == 200

        r = await account.put(url, json={"name": "C"})
        assert r.status_code == 422 and fields(r) == ["name"]
        assert (await account.put(url, json={})).status_code == 422
        other = await api.new_account("other", credits=10)
        assert (await other.put(url, json={"name": "A"})).status_code == 404

        r = await account.put(url, json={"name": "A"})
        assert r.status_code == 200, r.text
        assert r.json()["abTest"]["winner"] == "A" and r.json()["abTest"]["decidedAt"]
        # The remainder was held at B's price (2 parts), it now costs A's (1 part).
        assert r.json()["cost"]["reserved"] == 3.5
        r = await account.put(url, json={"name": "B"})
        assert r.status_code == 409 and r.json()["winner"] == "A"
        assert (await account.get(f"/campaigns/{c['id']}")).json()["abTest"]["winner"] == "A"
        await assert_ledger_consistent(api.db, account.id)
        # Audited like every change: one row for the decision that was made.
        trail = (await account.get("/account/audit", params={"limit": 100})).json()["items"]
        decisions = [i for i in trail if i["action"] == "campaign.abTest.winner"]
        assert len(decisions) == 1
        assert decisions[0]["target"] == {"type": "campaign", "id": c["id"]}
        assert decisions[0]["detail"] == {"request": {"name": "A"}}

    async def test_a_campaign_without_a_test_cannot_be_decided(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 2)
        body = {"name": "c", "channel": "sms", "message": {"text": "hi"}, "listIds": [lst]}
        c = await create(account, body)
        assert (await account.put(f"/campaigns/{c['id']}/confirm", json={})).status_code == 200
        r = await account.put(f"/campaigns/{c['id']}/abTest/winner", json={"name": "A"})
        assert r.status_code == 409


class TestArithmetic:
    def test_test_size_and_even_split(self) -> None:
        assert variants.test_size(101, 0.3, 3) == 30
        assert variants.test_size(5, 0.1, 2) == 2  # at least one per variant
        assert variants.test_size(1, 0.5, 2) == 1
        assert variants.split(31, 3) == [11, 10, 10]
        assert variants.winner(["A", "B"], {"A": 1, "B": 2}, {"A": 2, "B": 4}) == "A"
        assert variants.winner(["A", "B"], {"A": 1, "B": 3}, {"A": 2, "B": 4}) == "B"
        assert variants.winner(["A", "B", "C"], {}, {"A": 2, "B": 4}) == "A"


class TestTemplates:
    async def test_a_template_a_variant_sends_cannot_be_deleted(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 4)
        first = await world.template(account, body="Hi")
        second = await world.template(account, body="Hello")
        body = ab_body([lst], channel="whatsapp")
        body["variants"] = [
            {"name": "A", "message": {"templateId": first}},
            {"name": "B", "message": {"templateId": second}},
        ]
        c = await create(account, body)
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 200, r.text
        r = await account.delete(f"/templates/{second}")
        assert r.status_code == 409 and r.json()["campaignId"] == c["id"]
        unused = await world.template(account, body="Unused")
        assert (await account.delete(f"/templates/{unused}")).status_code == 204
