"""GET /messages: the account's messages across campaigns and of no campaign (keyword
replies), newest first, with filters; another account's messages stay invisible."""

import pytest

from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages import transitions
from clarion.messages.models import Message
from clarion.sending.scheduler import tick
from tests.conftest import AccountClient, Api
from tests.sending.conftest import phones, seed_campaign, seed_contacts

ITEM_KEYS = {
    "id",
    "campaignId",
    "contactId",
    "phone",
    "channel",
    "status",
    "units",
    "price",
    "providerMessageId",
    "errorCode",
    "errorMessage",
    "sentAt",
    "deliveredAt",
    "readAt",
    "updatedAt",
    "notBefore",
    "variant",
    "clicks",
    "firstClickedAt",
}


async def reply(db: Database, account_id: int, phone: str, channel: str = "sms") -> int:
    async with db.transaction() as s:
        return await transitions.queue_reply(
            s,
            account_id=account_id,
            phone=phone,
            country="FR",
            channel=channel,
            sender="Clarion",
            text="You will receive no more messages.",
            now=utcnow(),
        )


async def add_test_send(db: Database, account_id: int, campaign_id: int) -> None:
    async with db.transaction() as s:
        now = utcnow()
        s.add(
            Message(
                campaign_id=campaign_id,
                account_id=account_id,
                contact_id=None,
                phone="+33699999999",
                country="FR",
                channel="sms",
                status="sent",
                sent_at=now,
                next_attempt_at=now,
            )
        )


async def ids(account: AccountClient, query: str = "") -> list[int]:
    r = await account.get(f"/messages{query}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"])
    return [m["id"] for m in body["items"]]


class TestAccountMessages:
    @pytest.fixture
    async def world(self, api: Api, account: AccountClient, db: Database) -> dict[str, object]:
        numbers = phones(3)
        first = await seed_contacts(db, account.id, numbers[:2])
        second = await seed_contacts(db, account.id, numbers[2:], list_name="b")
        c1 = await seed_campaign(db, account.id, [first])
        c2 = await seed_campaign(db, account.id, [second], channel="whatsapp")
        await tick(db, 50_000)
        await add_test_send(db, account.id, c1)
        r1 = await reply(db, account.id, numbers[0])
        other = await api.new_account("other")
        other_list = await seed_contacts(db, other.id, numbers[:1])
        await seed_campaign(db, other.id, [other_list])
        await tick(db, 50_000)
        await reply(db, other.id, numbers[0])
        return {"c1": c1, "c2": c2, "reply": r1, "numbers": numbers, "other": other}

    async def test_everything_newest_first_and_filters(
        self, account: AccountClient, world: dict[str, object]
    ) -> None:
        r = await account.get("/messages")
        body = r.json()
        assert body["total"] == 4  # 3 recipients and the reply; not the test send
        items = body["items"]
        assert set(items[0]) == ITEM_KEYS
        assert [m["id"] for m in items] == sorted((m["id"] for m in items), reverse=True)
        assert items[0]["id"] == world["reply"] and items[0]["campaignId"] is None
        assert items[0]["contactId"] is None and items[0]["status"] == "queued"
        c1, c2 = world["c1"], world["c2"]
        assert {m["campaignId"] for m in items} == {None, c1, c2}
        assert await ids(account, "?campaignId=none") == [world["reply"]]
        assert len(await ids(account, f"?campaignId={c1}")) == 2
        assert len(await ids(account, "?channel=WhatsApp")) == 1
        numbers = world["numbers"]
        assert isinstance(numbers, list)
        national = numbers[0].replace("+33", "+33 ")
        assert len(await ids(account, f"?phone={national.replace('+', '%2B')}")) == 2
        assert len(await ids(account, "?status=queued&channel=sms")) == 3
        assert await ids(account, "?status=sent") == []
        page = (await account.get("/messages?limit=1&offset=1")).json()
        assert (page["total"], len(page["items"])) == (4, 1)

    async def test_other_accounts_are_invisible(
        self, account: AccountClient, world: dict[str, object]
    ) -> None:
        other = world["other"]
        assert isinstance(other, AccountClient)
        theirs = (await other.get("/messages")).json()
        assert theirs["total"] == 2
        mine = set(await ids(account))
        assert not mine & {m["id"] for m in theirs["items"]}
        r = await other.get(f"/messages?campaignId={world['c1']}")
        assert r.status_code == 404, r.text

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("campaignId=abc", "campaignId"),
            ("campaignId=0", "campaignId"),
            ("campaignId=", "campaignId"),
            ("channel=fax", "channel"),
            ("status=lost", "status"),
            ("phone=hello", "phone"),
            ("limit=0", "limit"),
        ],
    )
    async def test_bad_filters_are_422(
        self, account: AccountClient, query: str, field: str
    ) -> None:
        r = await account.get(f"/messages?{query}")
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert any(e["field"] == field for e in r.json()["errors"]), r.json()

    async def test_unknown_campaign_is_404(self, account: AccountClient) -> None:
        assert (await account.get("/messages?campaignId=999999")).status_code == 404

    async def test_needs_a_key(self, api: Api) -> None:
        assert (await api.client.get("/messages")).status_code == 401
