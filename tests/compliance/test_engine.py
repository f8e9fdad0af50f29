"""Sending hours, expiry and the frequency cap through the API and the embedded engine,
driven by a clock that starts at a chosen instant."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.compliance.conftest import (
    ENGINE,
    EVERY_DAY,
    NEW_YORK,
    PARIS,
    MovingClock,
    audience,
    campaign,
    local,
    messages,
    rates,
    wait_for,
    z,
)
from tests.conftest import assert_ledger_consistent

FR_ROW = {"country": "FR", "days": EVERY_DAY[:6], "start": "08:00", "end": "20:00"}
FR_NO_HOLIDAYS = {**FR_ROW, "holidays": False}
US_NO_HOLIDAYS = {
    "country": "US",
    "days": EVERY_DAY,
    "start": "08:00",
    "end": "21:00",
    "holidays": False,
}
PARIS_PHONE = "+33612345003"
NY_PHONE = "+12125550123"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def start(make_api, clock: MovingClock, hours: list[dict], **compliance):
    api = await make_api(clock=clock, **ENGINE)
    await rates(api)
    account = await api.new_account("acme", credits=100)
    r = await account.put("/account/compliance", json={"sendingHours": hours, **compliance})
    assert r.status_code == 200, r.text
    return api, account


def queued_with_not_before(items, _body) -> bool:
    return bool(items) and all(m["status"] == "queued" and m["notBefore"] for m in items)


def all_final(items, body) -> bool:
    return body["status"] == "completed" and all(
        m["status"] in ("delivered", "failed", "skipped") for m in items
    )


class TestSendingHours:
    async def test_friday_evening_in_paris_is_held_until_saturday_and_leaves_on_time(
        self, make_api, db
    ):
        clock = MovingClock(local(PARIS, 2026, 12, 4, 20, 30))
        _api, account = await start(make_api, clock, [FR_NO_HOLIDAYS])
        list_id, _ = await audience(account, [{"phone": PARIS_PHONE}])
        cid = await campaign(account, list_id)
        items, body = await wait_for(account, cid, queued_with_not_before)
        saturday_8 = local(PARIS, 2026, 12, 5, 8, 0)
        assert items[0]["notBefore"] == z(saturday_8)
        assert body["status"] == "sending" and body["cost"]["reserved"] == 0.05
        # The window opens while the campaign is sending: a second before it, the clock jumps.
        clock.jump(saturday_8 - timedelta(seconds=1))
        jumped = time.monotonic()
        items, body = await wait_for(account, cid, all_final)
        sent_at = parse(items[0]["sentAt"])
        assert saturday_8 <= sent_at < saturday_8 + timedelta(seconds=1)
        assert time.monotonic() - jumped < 5
        assert body["cost"] == {"reserved": 0, "spent": 0.05}
        await assert_ledger_consistent(db, account.id)

    async def test_a_us_public_holiday_waits_for_the_next_day(self, make_api):
        clock = MovingClock(local(NEW_YORK, 2026, 11, 26, 10, 0))  # Thanksgiving
        _api, account = await start(make_api, clock, [US_NO_HOLIDAYS])
        list_id, _ = await audience(account, [{"phone": NY_PHONE}, {"phone": PARIS_PHONE}])
        cid = await campaign(account, list_id)
        items, _ = await wait_for(
            account,
            cid,
            lambda items, _b: (
                {m["status"] for m in items} >= {"queued"}
                and any(m["notBefore"] for m in items)
                and any(m["status"] == "delivered" for m in items)
            ),
        )
        by_phone = {m["phone"]: m for m in items}
        assert by_phone[NY_PHONE]["notBefore"] == z(local(NEW_YORK, 2026, 11, 27, 8, 0))
        # No row for France: the French recipient is not restricted.
        assert by_phone[PARIS_PHONE]["status"] == "delivered"

    async def test_the_contact_time_zone_wins_over_the_number(self, make_api):
        # 21:00 in Paris is 12:00 in Los Angeles: a contact living there is inside "*" hours.
        clock = MovingClock(local(PARIS, 2026, 12, 2, 21, 0))
        anywhere = {"country": "*", "days": EVERY_DAY, "start": "08:00", "end": "20:00"}
        _api, account = await start(make_api, clock, [anywhere])
        list_id, _ = await audience(
            account,
            [{"phone": PARIS_PHONE, "timezone": "America/Los_Angeles"}, {"phone": "+33612345004"}],
        )
        cid = await campaign(account, list_id)
        items, _ = await wait_for(
            account,
            cid,
            lambda items, _b: (
                any(m["status"] == "delivered" for m in items)
                and any(m["notBefore"] for m in items)
            ),
        )
        by_phone = {m["phone"]: m for m in items}
        assert by_phone[PARIS_PHONE]["status"] == "delivered"
        assert by_phone["+33612345004"]["notBefore"] == z(local(PARIS, 2026, 12, 3, 8, 0))

    async def test_a_send_window_applies_without_account_rows(self, make_api):
        clock = MovingClock(local(PARIS, 2026, 12, 2, 18, 30))
        _api, account = await start(make_api, clock, [])
        list_id, _ = await audience(account, [{"phone": PARIS_PHONE}])
        window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
        cid = await campaign(account, list_id, sendWindow=window)
        items, _ = await wait_for(account, cid, queued_with_not_before)
        assert items[0]["notBefore"] == z(local(PARIS, 2026, 12, 3, 9, 0))

    async def test_transactional_campaigns_ignore_hours_and_cap(self, make_api):
        clock = MovingClock(local(PARIS, 2026, 12, 4, 23, 0))
        cap = {"messages": 1, "periodHours": 24}
        _api, account = await start(make_api, clock, [FR_ROW], frequencyCap=cap)
        list_id, _ = await audience(account, [{"phone": PARIS_PHONE}])
        first = await campaign(account, list_id, purpose="transactional")
        second = await campaign(account, list_id, purpose="transactional")
        for cid in (first, second):
            items, _ = await wait_for(account, cid, all_final)
            assert items[0]["status"] == "delivered" and items[0]["notBefore"] is None

    async def test_the_worker_time_zone_does_not_matter(self, make_api, monkeypatch):
        # The process believes it is in Kiritimati (UTC+14): nothing may read local time.
        monkeypatch.setenv("TZ", "Pacific/Kiritimati")
        time.tzset()
        try:
            clock = MovingClock(local(PARIS, 2026, 12, 4, 20, 30))
            _api, account = await start(make_api, clock, [FR_ROW])
            list_id, _ = await audience(account, [{"phone": PARIS_PHONE}])
            cid = await campaign(account, list_id)
            items, _ = await wait_for(account, cid, queued_with_not_before)
            assert items[0]["notBefore"] == z(local(PARIS, 2026, 12, 5, 8, 0))
        finally:
            monkeypatch.undo()
            time.tzset()


class TestExpiry:
    async def test_held_messages_are_skipped_when_the_campaign_expires(self, make_api, db):
        clock = MovingClock(local(PARIS, 2026, 12, 4, 20, 30))
        _api, account = await start(make_api, clock, [FR_ROW])
        list_id, _ = await audience(account, [{"phone": PARIS_PHONE}, {"phone": "+33612345004"}])
        expires = local(PARIS, 2026, 12, 5, 9, 0)
        cid = await campaign(account, list_id, expiresAt=z(expires))
        await wait_for(account, cid, queued_with_not_before)
        r = await account.put(f"/campaigns/{cid}/pause")
        assert r.status_code == 200, r.text
        clock.jump(expires + timedelta(seconds=1))  # it expired while paused and held
        items, _ = await wait_for(
            account, cid, lambda items, _b: all(m["status"] == "skipped" for m in items)
        )
        assert {m["errorCode"] for m in items} == {"EXPIRED"}
        assert all(m["price"] == 0 for m in items)
        r = await account.put(f"/campaigns/{cid}/resume")
        assert r.status_code == 200, r.text
        _, body = await wait_for(account, cid, all_final)
        assert body["stats"]["skipped"] == 2
        assert body["cost"] == {"reserved": 0, "spent": 0}
        await assert_ledger_consistent(db, account.id)

    async def test_a_window_opening_after_expiry_is_never_sent(self, make_api, db):
        clock = MovingClock(local(PARIS, 2026, 12, 4, 20, 30))
        _api, account = await start(make_api, clock, [FR_ROW])
        list_id, _ = await audience(account, [{"phone": PARIS_PHONE}])
        expires = local(PARIS, 2026, 12, 4, 23, 0)  # before Saturday 08:00
        cid = await campaign(account, list_id, expiresAt=z(expires))
        await wait_for(account, cid, queued_with_not_before)
        clock.jump(expires + timedelta(seconds=1))
        items, body = await wait_for(account, cid, all_final)
        assert (items[0]["status"], items[0]["errorCode"]) == ("skipped", "EXPIRED")
        assert items[0]["sentAt"] is None
        assert body["cost"] == {"reserved": 0, "spent": 0}
        await assert_ledger_consistent(db, account.id)

    async def test_expires_at_is_validated(self, make_api):
        clock = MovingClock(datetime.now(UTC))
        _api, account = await start(make_api, clock, [])
        list_id, _ = await audience(account, [{"phone": PARIS_PHONE}])
        body = {"name": "c", "channel": "sms", "message": {"text": "Hi"}, "listIds": [list_id]}
        r = await account.post("/campaigns", json={**body, "expiresAt": "2026-12-01T10:00:00"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "expiresAt"
        r = await account.post("/campaigns", json={**body, "expiresAt": "2020-01-01T00:00:00Z"})
        cid = r.json()["id"]
        r = await account.put(f"/campaigns/{cid}/confirm", json={})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "expiresAt"


class TestFrequencyCap:
    @pytest.mark.parametrize("cap", [1, 2])
    async def test_two_campaigns_racing_for_contacts_when_a_window_opens(self, make_api, db, cap):
        # Both campaigns are materialized while the window is closed (nobody is capped yet),
        # then race for the same contacts the moment it opens.
        clock = MovingClock(local(PARIS, 2026, 12, 4, 20, 30))
        _api, account = await start(
            make_api, clock, [FR_ROW], frequencyCap={"messages": cap, "periodHours": 24}
        )
        phones = [f"+336123450{i:02d}" for i in range(10, 30)]
        list_id, _ = await audience(account, [{"phone": p} for p in phones])
        campaigns = [await campaign(account, list_id) for _ in range(3)]
        for cid in campaigns:
            await wait_for(account, cid, queued_with_not_before)
        clock.jump(local(PARIS, 2026, 12, 5, 8, 0))
        done = {}
        for cid in campaigns:
            done[cid], _ = await wait_for(account, cid, all_final)
        for phone in phones:
            outcomes = sorted(
                next(m for m in done[cid] if m["phone"] == phone)["status"] for cid in campaigns
            )
            assert outcomes == sorted(["delivered"] * cap + ["skipped"] * (3 - cap)), phone
        skipped = [m for cid in done for m in done[cid] if m["status"] == "skipped"]
        assert {m["errorCode"] for m in skipped} == {"FREQUENCY_CAP"}
        assert all(m["price"] == 0 for m in skipped)
        await assert_ledger_consistent(db, account.id)

    async def test_the_cap_counts_the_period_before_the_moment_of_sending(self, make_api, db):
        clock = MovingClock(local(PARIS, 2026, 12, 2, 10, 0))
        _api, account = await start(
            make_api, clock, [], frequencyCap={"messages": 1, "periodHours": 24}
        )
        list_id, _ = await audience(account, [{"phone": PARIS_PHONE}])
        first = await campaign(account, list_id)
        await wait_for(account, first, all_final)
        clock.jump(local(PARIS, 2026, 12, 3, 10, 1))  # 24 h and a minute later
        second = await campaign(account, list_id)
        items, _ = await wait_for(account, second, all_final)
        assert items[0]["status"] == "delivered"
        assert (await messages(account, first))[0]["status"] == "delivered"
