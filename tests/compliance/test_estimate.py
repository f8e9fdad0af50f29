"""The estimate with compliance rules: contacts over the frequency cap left out (neither
priced nor materialized), and the schedule of the recipients' sending hours."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.compliance.conftest import (
    ENGINE,
    EVERY_DAY,
    PARIS,
    MovingClock,
    audience,
    local,
    messages,
    rates,
    wait_for,
    z,
)
from tests.conftest import assert_ledger_consistent

FR_ROW = {"country": "FR", "days": EVERY_DAY[:6], "start": "08:00", "end": "20:00"}
US_ROW = {"country": "US", "days": EVERY_DAY, "start": "08:00", "end": "21:00"}
PARIS_PHONES = ["+33612345003", "+33612345004"]
NY_PHONE = "+12125550123"


async def draft(account, list_id: int, **fields) -> int:
    body = {"name": "c", "channel": "sms", "message": {"text": "Hi"}, "listIds": [list_id]}
    r = await account.post("/campaigns", json={**body, **fields})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def goal(account, cid: int) -> dict:
    r = await account.post(f"/campaigns/{cid}/calculateGoal")
    assert r.status_code == 200, r.text
    return dict(r.json())


class TestSchedule:
    async def test_held_and_sendable_recipients_by_their_local_time(self, make_api):
        clock = MovingClock(local(PARIS, 2026, 12, 4, 20, 30))  # 14:30 in New York
        api = await make_api(clock=clock)
        await rates(api)
        account = await api.new_account("acme", credits=100)
        r = await account.put("/account/compliance", json={"sendingHours": [FR_ROW, US_ROW]})
        assert r.status_code == 200, r.text
        list_id, _ = await audience(account, [{"phone": p} for p in [*PARIS_PHONES, NY_PHONE]])
        e = await goal(account, await draft(account, list_id))
        assert e["recipients"] == 3
        schedule = e["schedule"]
        assert (schedule["sendableNow"], schedule["held"]) == (1, 2)
        assert schedule["firstSendAt"] == e["computedAt"]
        assert schedule["lastWindowOpensAt"] == z(local(PARIS, 2026, 12, 5, 8, 0))

    async def test_nobody_may_go_now(self, make_api):
        clock = MovingClock(local(PARIS, 2026, 12, 5, 21, 0))  # Saturday evening
        api = await make_api(clock=clock)
        await rates(api)
        account = await api.new_account("acme", credits=100)
        await account.put("/account/compliance", json={"sendingHours": [FR_ROW]})
        list_id, _ = await audience(account, [{"phone": p} for p in PARIS_PHONES])
        schedule = (await goal(account, await draft(account, list_id)))["schedule"]
        monday = z(local(PARIS, 2026, 12, 7, 8, 0))
        assert schedule == {
            "sendableNow": 0, "held": 2, "firstSendAt": monday, "lastWindowOpensAt": monday,
        }  # fmt: skip

    async def test_transactional_campaigns_are_sendable_now(self, make_api):
        clock = MovingClock(local(PARIS, 2026, 12, 5, 21, 0))
        api = await make_api(clock=clock)
        await rates(api)
        account = await api.new_account("acme", credits=100)
        await account.put("/account/compliance", json={"sendingHours": [FR_ROW]})
        list_id, _ = await audience(account, [{"phone": p} for p in PARIS_PHONES])
        e = await goal(account, await draft(account, list_id, purpose="transactional"))
        assert (e["schedule"]["sendableNow"], e["schedule"]["held"]) == (2, 0)


class TestFrequencyCapInEstimate:
    async def test_capped_contacts_are_neither_priced_nor_materialized(self, make_api, db):
        clock = MovingClock(datetime.now(UTC))
        api = await make_api(clock=clock, **ENGINE)
        await rates(api)
        account = await api.new_account("acme", credits=100)
        cap = {"messages": 1, "periodHours": 24}
        await account.put("/account/compliance", json={"frequencyCap": cap})
        first_list, _ = await audience(account, [{"phone": p} for p in PARIS_PHONES])
        first = await draft(account, first_list)
        assert (await account.put(f"/campaigns/{first}/confirm", json={})).status_code == 200
        await wait_for(account, first, lambda _i, body: body["status"] == "completed")

        r = await account.post("/lists", json={"name": "everyone"})
        everyone = r.json()["id"]
        r = await account.post(
            f"/lists/{everyone}/contacts",
            json={"contacts": [{"phone": p} for p in [*PARIS_PHONES, NY_PHONE]]},
        )
        assert r.status_code == 200, r.text
        second = await draft(account, everyone)
        e = await goal(account, second)
        assert e["recipients"] == 1 and e["price"] == 0.05
        assert e["excluded"]["frequencyCapped"] == 2
        assert e["excluded"]["duplicates"] == 0
        transactional = await goal(account, await draft(account, everyone, purpose="transactional"))
        assert transactional["recipients"] == 3
        assert transactional["excluded"]["frequencyCapped"] == 0

        r = await account.put(f"/campaigns/{second}/confirm", json={})
        assert r.status_code == 200, r.text
        assert r.json()["cost"]["reserved"] == 0.05
        _, body = await wait_for(account, second, lambda _i, body: body["status"] == "completed")
        assert body["stats"]["recipients"] == 1
        assert [m["phone"] for m in await messages(account, second)] == [NY_PHONE]
        await assert_ledger_consistent(db, account.id)
