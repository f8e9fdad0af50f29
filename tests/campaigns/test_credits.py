"""Confirm, reservations, scheduled edits, cancel and delete: credits move exactly and the
ledger stays consistent."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from clarion.accounts.models import Account
from clarion.audience.models import ContactList
from clarion.campaigns.credits import check_invariants
from tests.campaigns.conftest import World, balance, create, fields, sms_body
from tests.conftest import AccountClient, Api, assert_ledger_consistent


def future(hours: float = 24) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def sms_campaign(
    account: AccountClient, world: World, n: int = 10, text: str = "Hello"
) -> dict:
    lst = await world.new_list(account)
    await world.people(account, [lst], n)
    return await create(account, sms_body([lst], text))


class TestConfirmNow:
    async def test_reserves_the_price_and_starts(
        self, account: AccountClient, world: World
    ) -> None:
        c = await sms_campaign(account, world, 10)  # 10 x 0.07
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "sending"
        assert body["startedAt"] and body["confirmedAt"] and body["scheduledAt"] is None
        assert body["cost"] == {"reserved": 0.7, "spent": 0}
        assert body["estimate"]["price"] == 0.7
        me = await balance(account)
        assert me["balance"] == 1000 and me["reserved"] == 0.7 and me["available"] == 999.3
        await assert_ledger_consistent(world.db, account.id)
        again = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert again.status_code == 409 and "sending" in again.json()["detail"]

    async def test_schedule(self, account: AccountClient, world: World) -> None:
        c = await sms_campaign(account, world, 3)
        when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        local = when.astimezone(__import__("datetime").timezone(timedelta(hours=2)))
        r = await account.put(
            f"/campaigns/{c['id']}/confirm", json={"scheduledAt": local.isoformat()}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "scheduled" and body["startedAt"] is None
        assert body["scheduledAt"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert body["cost"]["reserved"] == 0.21
        await assert_ledger_consistent(world.db, account.id)

    async def test_rcs_fallback_reserves_the_worst_case(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 2)
        c = await create(account, sms_body([lst]) | {"channel": "rcs", "fallbackChannel": "sms"})
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 200
        assert r.json()["cost"]["reserved"] == 0.14  # SMS at 0.07 beats RCS basic at 0.03
        assert r.json()["estimate"]["price"] == 0.06
        await assert_ledger_consistent(world.db, account.id)


class TestConfirmRejects:
    async def test_402_changes_nothing(self, api: Api, world: World) -> None:
        poor = await api.new_account("poor", credits=0.5)
        c = await sms_campaign(poor, world, 10)  # needs 0.7
        r = await poor.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 402
        assert r.json()["required"] == 0.7 and r.json()["available"] == 0.5
        after = (await poor.get(f"/campaigns/{c['id']}")).json()
        assert after["status"] == "draft" and after["cost"]["reserved"] == 0
        assert after["estimate"] is None and after["confirmedAt"] is None
        assert (await balance(poor))["reserved"] == 0
        await assert_ledger_consistent(world.db, poor.id)

    async def test_past_or_naive_schedule(self, account: AccountClient, world: World) -> None:
        c = await sms_campaign(account, world, 1)
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={"scheduledAt": future(-1)})
        assert r.status_code == 422 and fields(r) == ["scheduledAt"]
        for bad in ("2099-01-01T09:00:00", "next tuesday", 12):
            r = await account.put(f"/campaigns/{c['id']}/confirm", json={"scheduledAt": bad})
            assert r.status_code == 422 and fields(r) == ["scheduledAt"], bad
        assert (await balance(account))["reserved"] == 0
        # the same rules when a scheduled campaign is moved
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={"scheduledAt": future()})
        assert r.status_code == 200
        for bad in ("2099-01-01T09:00:00", "next tuesday", future(-1)):
            r = await account.put(f"/campaigns/{c['id']}", json={"scheduledAt": bad})
            assert r.status_code == 422 and fields(r) == ["scheduledAt"], bad
        assert (await account.get(f"/campaigns/{c['id']}")).json()["scheduledAt"] is not None

    async def test_empty_audience(self, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        opted = await world.people(account, [lst], 2)
        await world.opt_out(opted)
        c = await create(account, sms_body([lst]))
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 422 and fields(r) == ["listIds"]
        c = await create(account, sms_body([]))
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 422 and fields(r) == ["listIds"]

    async def test_list_deleted_since_create(self, account: AccountClient, world: World) -> None:
        c = await sms_campaign(account, world, 2)
        async with world.db.transaction() as s:
            await s.execute(delete(ContactList).where(ContactList.id == c["listIds"][0]))
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 422 and fields(r) == ["listIds"]
        assert str(c["listIds"][0]) in r.json()["detail"]
        assert (await balance(account))["reserved"] == 0

    async def test_empty_message(self, account: AccountClient, world: World) -> None:
        c = await sms_campaign(account, world, 1, text="  ")
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 422 and fields(r) == ["message.text"]

    async def test_over_ten_parts(self, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        await world.contacts(account, [lst], [{"firstName": "A"}, {"firstName": "B" * 10}])
        text = "x" * (153 * 10 - 1) + "{{firstName}}"  # 1530 with A, 1539 with B*10
        c = await create(account, sms_body([lst], text))
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 422 and fields(r) == ["message.text"]
        assert "11 parts" in r.json()["detail"]
        await account.put(f"/campaigns/{c['id']}", json={"message": {"text": "x" * 1530}})
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 200

    async def test_unapproved_template(self, account: AccountClient, world: World) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 1)
        tpl = await world.template(account, status="pending")
        c = await create(
            account,
            {"name": "w", "channel": "whatsapp", "message": {"templateId": tpl}, "listIds": [lst]},
        )
        for status in ("pending", "rejected", "paused"):
            await world.set_template(tpl, status=status)
            r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
            assert r.status_code == 422 and fields(r) == ["message.templateId"], status
        assert (await balance(account))["reserved"] == 0
        await world.set_template(tpl, status="approved")
        r = await account.put(f"/campaigns/{c['id']}/confirm", json={})
        assert r.status_code == 200, r.text
        await assert_ledger_consistent(world.db, account.id)


class TestScheduledEdit:
    async def test_edit_reprices_and_replaces_the_reservation(
        self, account: AccountClient, world: World
    ) -> None:
        c = await sms_campaign(account, world, 10)
        await account.put(f"/campaigns/{c['id']}/confirm", json={"scheduledAt": future()})
        r = await account.put(f"/campaigns/{c['id']}", json={"message": {"text": "y" * 200}})
        assert r.status_code == 200, r.text
        assert r.json()["cost"]["reserved"] == 1.4 and r.json()["status"] == "scheduled"
        assert r.json()["estimate"]["units"] == 20
        assert (await balance(account))["reserved"] == 1.4
        await assert_ledger_consistent(world.db, account.id)
        r = await account.put(f"/campaigns/{c['id']}", json={"scheduledAt": future(48)})
        assert r.status_code == 200
        r = await account.put(f"/campaigns/{c['id']}", json={"scheduledAt": future(-1)})
        assert r.status_code == 422

    async def test_402_when_the_new_price_does_not_fit(self, api: Api, world: World) -> None:
        acct = await api.new_account("tight", credits=1)
        c = await sms_campaign(acct, world, 10)  # 0.7
        await acct.put(f"/campaigns/{c['id']}/confirm", json={"scheduledAt": future()})
        before = (await acct.get(f"/campaigns/{c['id']}")).json()
        r = await acct.put(f"/campaigns/{c['id']}", json={"message": {"text": "y" * 200}})
        assert r.status_code == 402
        assert r.json()["required"] == 1.4 and r.json()["available"] == 1
        assert (await acct.get(f"/campaigns/{c['id']}")).json() == before
        me = await balance(acct)
        assert me["reserved"] == 0.7
        await assert_ledger_consistent(world.db, acct.id)


class TestCancel:
    async def test_cancel_scheduled_releases_everything(
        self, account: AccountClient, world: World
    ) -> None:
        c = await sms_campaign(account, world, 10)
        await account.put(f"/campaigns/{c['id']}/confirm", json={"scheduledAt": future()})
        r = await account.put(f"/campaigns/{c['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert r.json()["cost"]["reserved"] == 0
        assert (await balance(account))["reserved"] == 0
        await assert_ledger_consistent(world.db, account.id)

    @pytest.mark.parametrize("paused", [False, True])
    async def test_cancel_sending_skips_queued_and_releases(
        self, account: AccountClient, world: World, paused: bool
    ) -> None:
        c = await sms_campaign(account, world, 5)
        await account.put(f"/campaigns/{c['id']}/confirm", json={})
        await world.messages(account, c["id"], ["queued", "queued", "queued", "sent", "failed"])
        if paused:
            assert (await account.put(f"/campaigns/{c['id']}/pause")).status_code == 200
        r = await account.put(f"/campaigns/{c['id']}/cancel")
        assert r.status_code == 200
        stats = r.json()["stats"]
        assert stats["queued"] == 0 and stats["skipped"] == 3
        assert stats["sent"] == 1 and stats["failed"] == 1 and stats["recipients"] == 5
        assert r.json()["cost"]["reserved"] == 0
        assert (await balance(account))["reserved"] == 0
        await assert_ledger_consistent(world.db, account.id)

    async def test_in_flight_messages_keep_the_reservation(
        self, account: AccountClient, world: World
    ) -> None:
        c = await sms_campaign(account, world, 3)
        await account.put(f"/campaigns/{c['id']}/confirm", json={})
        await world.messages(account, c["id"], ["queued", "sending", "queued"])
        r = await account.put(f"/campaigns/{c['id']}/cancel")
        assert r.status_code == 200
        assert r.json()["stats"]["skipped"] == 2 and r.json()["stats"]["sending"] == 1
        # the engine settles when the in-flight message is recorded
        assert r.json()["cost"]["reserved"] == 0.21
        assert (await balance(account))["reserved"] == 0.21


class TestDeleteScheduled:
    async def test_delete_cancels_and_releases(self, account: AccountClient, world: World) -> None:
        c = await sms_campaign(account, world, 10)
        await account.put(f"/campaigns/{c['id']}/confirm", json={"scheduledAt": future()})
        assert (await balance(account))["reserved"] == 0.7
        r = await account.delete(f"/campaigns/{c['id']}")
        assert r.status_code == 204
        assert (await balance(account))["reserved"] == 0
        assert (await account.get(f"/campaigns/{c['id']}")).status_code == 404
        await assert_ledger_consistent(world.db, account.id)

    async def test_delete_sending_is_409(self, account: AccountClient, world: World) -> None:
        c = await sms_campaign(account, world, 1)
        await account.put(f"/campaigns/{c['id']}/confirm", json={})
        r = await account.delete(f"/campaigns/{c['id']}")
        assert r.status_code == 409 and "sending" in r.json()["detail"]
        await assert_ledger_consistent(world.db, account.id)


class TestRacingConfirms:
    async def test_exactly_one_wins_the_last_credits(self, api: Api, world: World) -> None:
        acct = await api.new_account("race", credits=1)
        first = await sms_campaign(acct, world, 10)  # 0.7 each: only one fits
        second = await sms_campaign(acct, world, 10)
        results = await asyncio.gather(
            acct.put(f"/campaigns/{first['id']}/confirm", json={}),
            acct.put(f"/campaigns/{second['id']}/confirm", json={}),
        )
        assert sorted(r.status_code for r in results) == [200, 402], [r.text for r in results]
        me = await balance(acct)
        assert me["reserved"] == 0.7 and me["balance"] == 1
        statuses = sorted(
            [(await acct.get(f"/campaigns/{c['id']}")).json()["status"] for c in (first, second)]
        )
        assert statuses == ["draft", "sending"]
        await assert_ledger_consistent(world.db, acct.id)

    async def test_same_campaign_confirmed_twice_at_once(
        self, account: AccountClient, world: World
    ) -> None:
        c = await sms_campaign(account, world, 10)
        results = await asyncio.gather(
            *(account.put(f"/campaigns/{c['id']}/confirm", json={}) for _ in range(3))
        )
        assert sorted(r.status_code for r in results) == [200, 409, 409]
        assert (await balance(account))["reserved"] == 0.7
        await assert_ledger_consistent(world.db, account.id)


class TestInvariantCheck:
    """The check behind assert_ledger_consistent finds what it is there to find."""

    async def problems(self, world: World, account: AccountClient) -> list[str]:
        async with world.db.session(write=False) as session:
            return await check_invariants(session, account.id)

    async def test_a_held_reservation_must_belong_to_an_open_campaign(
        self, account: AccountClient, world: World
    ) -> None:
        c = await sms_campaign(account, world, 10)  # 10 x 0.07 = 7,000 units
        assert (await account.put(f"/campaigns/{c['id']}/confirm", json={})).status_code == 200
        assert await self.problems(world, account) == []
        await world.campaign_row(c["id"], status="completed")  # closed without settling
        assert await self.problems(world, account) == [
            f"open reservations 0 != reserved {7_000}",
            f"closed campaign {c['id']} still holds {7_000} in reserve",
        ]

    async def test_the_account_row_must_match_its_ledger(
        self, account: AccountClient, world: World
    ) -> None:
        async with world.db.transaction() as s:
            await s.execute(
                update(Account).where(Account.id == account.id).values(reserved=Account.balance + 1)
            )
        problems = await self.problems(world, account)
        assert problems[0].startswith("sum(ledger reserved) 0 != reserved")
        assert problems[1].startswith("reserved ") and "outside [0, balance" in problems[1]
        assert problems[2].startswith("open reservations 0 != reserved")
