"""GET /campaigns/stats: sums of the campaigns' counters."""

from datetime import UTC, datetime

from tests.campaigns.conftest import World, create, fields, sms_body
from tests.conftest import AccountClient, Api


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


async def started(
    account: AccountClient, world: World, channel: str, when: datetime | None, **counters: int
) -> int:
    body = sms_body([]) | {"channel": channel}
    if channel == "whatsapp":
        tpl = await world.template(account, body="hi")
        body["message"] = {"templateId": tpl}
    c = await create(account, body)
    recipients = sum(counters.values()) - counters.get("spent", 0)
    await world.campaign_row(
        c["id"], status="completed", started_at=when, recipients=recipients, **counters
    )
    return int(c["id"])


class TestStats:
    async def test_sums_by_channel_and_day(
        self, api: Api, account: AccountClient, world: World
    ) -> None:
        await started(account, world, "sms", at(2, 23), delivered=90, failed=10, spent=70000)
        await started(account, world, "sms", at(3, 1), delivered=5, sent=5, read=0, spent=10001)
        await started(account, world, "whatsapp", at(3, 8), read=4, delivered=4, skipped=2)
        await started(account, world, "sms", at(5), delivered=1)  # out of range
        await started(account, world, "sms", None)  # never started
        other = await api.new_account("other")
        await started(other, world, "sms", at(3), delivered=1000)

        r = await account.get("/campaigns/stats?from=2026-11-02&to=2026-11-04")
        assert r.status_code == 200, r.text
        s = r.json()
        assert s["from"] == "2026-11-02" and s["to"] == "2026-11-04" and s["channel"] is None
        assert s["campaigns"] == 3
        assert s["recipients"] == 100 + 10 + 10
        assert (s["delivered"], s["read"], s["failed"], s["sent"], s["skipped"]) == (
            99, 4, 10, 5, 2,
        )  # fmt: skip
        assert s["creditsSpent"] == 8.0001
        assert s["deliveryRate"] == round(103 / 118, 6)
        assert set(s["byChannel"]) == {"sms", "whatsapp"}
        assert s["byChannel"]["sms"]["campaigns"] == 2
        assert s["byChannel"]["sms"]["delivered"] == 95
        assert s["byChannel"]["whatsapp"]["deliveryRate"] == 1.0
        days = {d["date"]: d for d in s["byDay"]}
        assert list(days) == ["2026-11-02", "2026-11-03"]
        assert days["2026-11-02"]["campaigns"] == 1 and days["2026-11-03"]["campaigns"] == 2
        assert days["2026-11-03"]["creditsSpent"] == 1.0001
        # one shape everywhere, and the breakdowns add up to the totals
        counters = {"recipients", "queued", "sending", "sent", "delivered", "read", "failed"}
        counters |= {"skipped", "expired", "campaigns", "creditsSpent"}
        assert counters | {"deliveryRate"} <= set(s)
        for part in [*s["byChannel"].values(), *s["byDay"]]:
            assert counters | {"deliveryRate"} <= set(part), part
        for breakdown in (list(s["byChannel"].values()), s["byDay"]):
            for key in counters:
                assert round(sum(p[key] for p in breakdown), 4) == s[key], key

    async def test_channel_filter_and_inclusive_bounds(
        self, account: AccountClient, world: World
    ) -> None:
        await started(account, world, "sms", at(1, 0), delivered=1)
        await started(account, world, "sms", at(30, 23), delivered=2)
        await started(account, world, "whatsapp", at(15), delivered=4)
        s = (await account.get("/campaigns/stats?from=2026-11-01&to=2026-11-30&channel=SMS")).json()
        assert s["channel"] == "sms" and s["campaigns"] == 2 and s["delivered"] == 3
        assert list(s["byChannel"]) == ["sms"]
        s = (await account.get("/campaigns/stats")).json()
        assert s["campaigns"] == 3 and s["from"] is None

    async def test_deleted_campaigns_still_count(
        self, account: AccountClient, world: World
    ) -> None:
        cid = await started(account, world, "sms", at(2), delivered=7)
        assert (await account.delete(f"/campaigns/{cid}")).status_code == 204
        s = (await account.get("/campaigns/stats")).json()
        assert s["delivered"] == 7

    async def test_empty(self, account: AccountClient) -> None:
        s = (await account.get("/campaigns/stats")).json()
        assert s["campaigns"] == 0 and s["deliveryRate"] == 0 and s["byDay"] == []

    async def test_bad_parameters(self, account: AccountClient) -> None:
        for query, field in [
            ("from=2026-11-05&to=2026-11-01", "from"),
            ("from=yesterday", "from"),
            ("to=2026-13-01", "to"),
            ("from=2026-11-01T00:00:00", "from"),
            ("channel=fax", "channel"),
        ]:
            r = await account.get(f"/campaigns/stats?{query}")
            assert r.status_code == 422, query
            assert fields(r) == [field]
