"""smartEncoding on SMS campaigns: the estimate counts, and the sender sends, the replaced
text; POST /preview shows the replacement."""

from tests.campaigns.conftest import World, create, sms_body
from tests.conftest import AccountClient
from tests.sending.conftest import (  # noqa: F401 (fixtures)
    drain,
    engine_settings,
    make_dispatcher,
    phones,
    seed_contacts,
    set_rates,
    sms,
)

# 100 characters with typographic apostrophes: UCS-2 (2 parts) as typed, GSM-7 (1 part) once
# replaced.
TEXT = "It\u2019s {{firstName}}\u2019s day \u2013 " + "x" * 80


class TestPreview:
    async def test_replaced_and_what_still_forces_ucs2(self, account: AccountClient) -> None:
        body = {"channel": "sms", "text": "L\u2019\u00e9t\u00e9 \u2019 \U0001f600 \u2026"}
        r = await account.post("/preview", json={**body, "smartEncoding": True})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["text"] == "L'\u00e9t\u00e9 ' \U0001f600 ..."
        assert out["replaced"] == [
            {"from": "\u2019", "to": "'", "count": 2},
            {"from": "\u2026", "to": "...", "count": 1},
        ]
        assert out["ucs2Characters"] == ["\U0001f600"]
        assert out["encoding"] == "UCS-2" and out["characters"] == len(out["text"])
        plain = (await account.post("/preview", json=body)).json()
        assert plain["replaced"] == [] and plain["text"] == body["text"]
        assert plain["ucs2Characters"] == ["\u2019", "\U0001f600", "\u2026"]

    async def test_saves_parts(self, account: AccountClient) -> None:
        text = "\u201cDeal\u201d \u2014 " + "y" * 90
        plain = (await account.post("/preview", json={"channel": "sms", "text": text})).json()
        smart = (
            await account.post(
                "/preview", json={"channel": "sms", "text": text, "smartEncoding": True}
            )
        ).json()
        assert (plain["encoding"], plain["parts"]) == ("UCS-2", 2)
        assert (smart["encoding"], smart["parts"], smart["units"]) == ("GSM-7", 1, 1)


class TestCampaign:
    async def test_estimate_reports_units_with_and_without(
        self, account: AccountClient, world: World
    ) -> None:
        await world.rates()
        lst = await world.new_list(account)
        await world.contacts(account, [lst], [{"firstName": "Ann"}, {"firstName": "Bob"}])
        plain = await create(account, sms_body([lst], TEXT))
        e = (await account.post(f"/campaigns/{plain['id']}/calculateGoal")).json()
        assert (e["units"], e["unitsWithoutSmartEncoding"], e["encoding"]) == (4, 4, "UCS-2")
        smart = await create(account, sms_body([lst], TEXT, smartEncoding=True))
        assert smart["smartEncoding"] is True
        e = (await account.post(f"/campaigns/{smart['id']}/calculateGoal")).json()
        assert (e["units"], e["unitsWithoutSmartEncoding"], e["encoding"]) == (2, 4, "GSM-7")
        assert e["price"] == 0.14

    async def test_only_on_sms(self, account: AccountClient, world: World) -> None:
        r = await account.post(
            "/campaigns",
            json={"name": "r", "channel": "rcs", "message": {"text": "hi"}, "smartEncoding": True},
        )
        assert r.status_code == 422
        assert [e["field"] for e in r.json()["errors"]] == ["smartEncoding"]
        c = await create(account, sms_body([], "hi", smartEncoding=True))
        r = await account.put(f"/campaigns/{c['id']}", json={"channel": "rcs"})
        assert r.status_code == 422
        r = await account.put(f"/campaigns/{c['id']}", json={"smartEncoding": False})
        assert r.status_code == 200 and r.json()["smartEncoding"] is False

    async def test_the_replaced_text_is_sent(self, db, account, make_dispatcher, sms) -> None:  # noqa: F811
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, phones(2), first_names=["Ann", "Zo\u00e9"])
        body = sms_body([lst], TEXT, smartEncoding=True)
        c = await create(account, body)
        assert (await account.put(f"/campaigns/{c['id']}/confirm", json={})).status_code == 200
        await drain(db, make_dispatcher(), [c["id"]])
        texts = sorted(m.text or "" for m in sms.sent)
        assert texts == sorted(f"It's {name}'s day - " + "x" * 80 for name in ("Ann", "Zo\u00e9"))
        items = (await account.get(f"/campaigns/{c['id']}/messages")).json()["items"]
        assert [i["units"] for i in items] == [1, 1]
