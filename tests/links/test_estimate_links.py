"""The estimate counts a tracked URL as long as its short link, per recipient."""

from tests.campaigns.conftest import World, create, sms_body
from tests.conftest import AccountClient

SHORT_LENGTH = len("http://127.0.0.1:8000/l/") + 7  # the default base, a 7-character code


async def _estimate(account: AccountClient, world: World, text: str, **extra: object) -> dict:  # type: ignore[type-arg]
    await world.rates()
    lst = await world.new_list(account)
    await world.people(account, [lst], 3)
    c = await create(account, sms_body([lst], text, **extra))
    r = await account.post(f"/campaigns/{c['id']}/calculateGoal")
    assert r.status_code == 200, r.text
    return dict(r.json())


class TestShortLinkLength:
    async def test_a_short_url_that_its_link_pushes_to_two_parts(self, account, world):
        text = "a" * 140 + " https://a.io"  # 153 characters: one part as written
        assert len(text) <= 160 < len(text) - len("https://a.io") + SHORT_LENGTH
        plain = await _estimate(account, world, text)
        assert (plain["units"], plain["maxParts"]) == (3, 1)
        tracked = await _estimate(account, world, text, trackLinks=True)
        assert (tracked["units"], tracked["maxParts"]) == (6, 2)

    async def test_a_long_url_that_its_link_brings_back_to_one_part(self, account, world):
        text = "Sale: https://shop.example/" + "p" * 150
        assert (await _estimate(account, world, text))["maxParts"] == 2
        assert (await _estimate(account, world, text, trackLinks=True))["maxParts"] == 1

    async def test_the_configured_base_is_counted(self, make_api, world):
        api = await make_api(link_base_url="https://go.example.com/track/very/long/prefix")
        account = await api.new_account("acme", credits=100)
        text = "a" * 110 + " https://a.io"
        tracked = await _estimate(account, world, text, trackLinks=True)
        assert tracked["maxParts"] == 2  # 111 + 45 + 1 + 7 > 160
        c = (await account.get(f"/campaigns/{tracked['campaignId']}")).json()
        assert c["trackLinks"] is True

    async def test_personalized_urls_count_per_recipient(self, account, world):
        await world.rates()
        lst = await world.new_list(account)
        await world.contacts(account, [lst], [{"firstName": "Al"}, {"firstName": "B" * 150}])
        c = await create(
            account, sms_body([lst], "https://x.example/{{firstName}}", trackLinks=True)
        )
        e = (await account.post(f"/campaigns/{c['id']}/calculateGoal")).json()
        # Both URLs become a 31-character link: one part each, whatever the name's length.
        assert (e["units"], e["maxParts"]) == (2, 1)
