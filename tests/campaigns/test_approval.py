"""Maker/checker: submit, approve by another signed-in person, reject."""

from datetime import timedelta
from typing import Any

from clarion.db.base import utcnow
from tests.campaigns.conftest import World, balance, create, sms_body
from tests.conftest import AccountClient, Api, assert_ledger_consistent
from tests.people.conftest import Browser


async def _require_approval(account: AccountClient) -> None:
    r = await account.put("/account/settings", json={"approvalRequired": True})
    assert r.status_code == 200, r.text
    assert r.json() == {"approvalRequired": True, "timezone": "UTC"}


async def _draft(world: World, account: AccountClient, n: int = 10) -> dict[str, Any]:
    lst = await world.new_list(account)
    await world.people(account, [lst], n)
    return await create(account, sms_body([lst]))


class TestApprovalRequired:
    async def test_confirm_is_409_for_everyone(
        self, world: World, account: AccountClient, signed_in: Any
    ) -> None:
        campaign = await _draft(world, account)
        await _require_approval(account)
        manager: Browser = await signed_in("manager")
        for caller in (account, manager):
            r = await caller.put(f"/campaigns/{campaign['id']}/confirm", json={})
            assert r.status_code == 409, r.text
            assert r.json()["type"].endswith("/approval-required")
        assert (await account.get(f"/campaigns/{campaign['id']}")).json()["status"] == "draft"

    async def test_without_the_setting_confirm_works(
        self, world: World, account: AccountClient
    ) -> None:
        campaign = await _draft(world, account)
        r = await account.put(f"/campaigns/{campaign['id']}/confirm", json={})
        assert r.status_code == 200 and r.json()["status"] == "sending"


class TestSubmitApprove:
    async def test_submit_then_another_person_approves(
        self, world: World, account: AccountClient, signed_in: Any, db: Any
    ) -> None:
        campaign = await _draft(world, account)
        cid = campaign["id"]
        await _require_approval(account)
        maker: Browser = await signed_in("editor", "maker@example.com")
        checker: Browser = await signed_in("manager", "checker@example.com")
        before = await balance(account)
        r = await maker.put(f"/campaigns/{cid}/submit", json={"note": "for Friday"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "awaiting_approval"
        assert body["cost"]["reserved"] == 0  # nothing reserved yet
        approval = body["approval"]
        assert approval["submittedBy"]["email"] == "maker@example.com"
        assert approval["submittedBy"]["name"] == "maker"
        assert approval["note"] == "for Friday" and approval["decision"] is None
        assert (await balance(account))["reserved"] == before["reserved"]
        # It can no longer be edited or confirmed.
        assert (await maker.put(f"/campaigns/{cid}", json={"name": "x"})).status_code == 409
        listed = await account.get("/campaigns", params={"status": "awaiting_approval"})
        assert [c["id"] for c in listed.json()["items"]] == [cid]

        # The maker (even promoted) is not the checker; an editor lacks the role.
        r = await maker.put(f"/campaigns/{cid}/approve")
        assert r.status_code == 403 and r.json()["requiredRole"] == "manager"

        r = await checker.put(f"/campaigns/{cid}/approve")
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "sending"
        assert done["cost"]["reserved"] == 0.7  # 10 x 0.07, as confirm reserves
        assert done["approval"]["decision"] == "approved"
        assert done["approval"]["decidedBy"]["email"] == "checker@example.com"
        assert done["approval"]["submittedBy"]["email"] == "maker@example.com"
        assert (await balance(account))["reserved"] == before["reserved"] + 0.7
        await assert_ledger_consistent(db, account.id)

    async def test_the_submitter_and_api_keys_cannot_approve(
        self, world: World, account: AccountClient, signed_in: Any
    ) -> None:
        campaign = await _draft(world, account)
        cid = campaign["id"]
        manager: Browser = await signed_in("manager")
        assert (await manager.put(f"/campaigns/{cid}/submit", json={})).status_code == 200
        r = await manager.put(f"/campaigns/{cid}/approve")
        assert r.status_code == 403 and "another person" in r.json()["detail"]
        r = await account.put(f"/campaigns/{cid}/approve")  # an owner key
        assert r.status_code == 403 and "API key" in r.json()["detail"]
        status = (await account.get(f"/campaigns/{cid}")).json()["status"]
        assert status == "awaiting_approval"

    async def test_a_key_may_submit_and_any_other_manager_approves(
        self, world: World, account: AccountClient, signed_in: Any
    ) -> None:
        campaign = await _draft(world, account)
        cid = campaign["id"]
        at = (utcnow() + timedelta(days=2)).isoformat()
        r = await account.put(f"/campaigns/{cid}/submit", json={"scheduledAt": at})
        assert r.status_code == 200
        assert r.json()["approval"]["submittedBy"]["type"] == "key"
        checker: Browser = await signed_in("manager")
        r = await checker.put(f"/campaigns/{cid}/approve")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "scheduled"
        assert r.json()["scheduledAt"] is not None

    async def test_a_passed_time_is_422_and_changes_nothing(
        self, world: World, account: AccountClient, signed_in: Any
    ) -> None:
        campaign = await _draft(world, account)
        cid = campaign["id"]
        past = (utcnow() - timedelta(minutes=1)).isoformat()
        r = await account.put(f"/campaigns/{cid}/submit", json={"scheduledAt": past})
        assert r.status_code == 422
        soon = utcnow() + timedelta(hours=1)
        r = await account.put(f"/campaigns/{cid}/submit", json={"scheduledAt": soon.isoformat()})
        assert r.status_code == 200
        await world.campaign_row(cid, approval_scheduled_at=utcnow() - timedelta(seconds=1))
        checker: Browser = await signed_in("manager")
        r = await checker.put(f"/campaigns/{cid}/approve")
        assert r.status_code == 422, r.text
        after = (await account.get(f"/campaigns/{cid}")).json()
        assert after["status"] == "awaiting_approval" and after["approval"]["decision"] is None

    async def test_short_credits_are_402_and_nothing_changes(
        self, api: Api, world: World, signed_in: Any, db: Any, browsers: Any
    ) -> None:
        poor = await api.new_account("poor", credits=0.5)
        campaign = await _draft(world, poor)  # 0.7 needed
        cid = campaign["id"]
        assert (await poor.put(f"/campaigns/{cid}/submit", json={})).status_code == 200
        r = await api.admin(
            "POST",
            f"/admin/accounts/{poor.id}/users",
            json={"email": "boss@poor.example", "password": "0123456789ab", "role": "manager"},
        )
        assert r.status_code == 201
        boss: Browser = browsers()
        assert (await boss.login("boss@poor.example", "0123456789ab")).status_code == 200
        r = await boss.put(f"/campaigns/{cid}/approve")
        assert r.status_code == 402, r.text
        assert r.json()["required"] == 0.7 and r.json()["available"] == 0.5
        after = (await poor.get(f"/campaigns/{cid}")).json()
        assert after["status"] == "awaiting_approval" and after["approval"]["decision"] is None
        assert (await balance(poor))["reserved"] == 0
        await assert_ledger_consistent(db, poor.id)


class TestReject:
    async def test_reject_returns_it_to_draft_with_the_reason(
        self, world: World, account: AccountClient, signed_in: Any
    ) -> None:
        campaign = await _draft(world, account)
        cid = campaign["id"]
        assert (await account.put(f"/campaigns/{cid}/submit", json={})).status_code == 200
        checker: Browser = await signed_in("manager")
        assert (await checker.put(f"/campaigns/{cid}/reject", json={})).status_code == 422
        r = await checker.put(f"/campaigns/{cid}/reject", json={"note": "typo in the text"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "draft"
        assert body["approval"]["decision"] == "rejected"
        assert body["approval"]["decisionNote"] == "typo in the text"
        assert (await account.put(f"/campaigns/{cid}", json={"name": "fixed"})).status_code == 200
        assert (
            await checker.put(f"/campaigns/{cid}/reject", json={"note": "x"})
        ).status_code == 409
        assert (await checker.put(f"/campaigns/{cid}/approve")).status_code == 409

    async def test_submit_needs_a_draft(self, world: World, account: AccountClient) -> None:
        campaign = await _draft(world, account)
        cid = campaign["id"]
        assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
        r = await account.put(f"/campaigns/{cid}/submit", json={})
        assert r.status_code == 409 and r.json()["currentStatus"] == "sending"
        assert (await account.put("/campaigns/999999/submit", json={})).status_code == 404
