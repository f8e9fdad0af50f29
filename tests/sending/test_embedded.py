"""The embedded shape: the app's lifespan runs the engine with the built-in simulator, and
receipts come back through the delivery domain's sink."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from clarion.db.base import utcnow
from clarion.messages.models import Message
from tests.conftest import assert_ledger_consistent
from tests.sending.conftest import (
    assert_partition,
    campaign,
    seed_campaign,
    seed_contacts,
    set_rates,
)


async def _wait(db, cid: int, done) -> None:
    for _ in range(600):
        c = await campaign(db, cid)
        if done(c):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"campaign {cid} did not get there: {c.status}")


async def _by_phone(db, cid: int) -> dict[str, Message]:
    async with db.session(write=False) as s:
        rows = await s.execute(select(Message).where(Message.campaign_id == cid))
        return {m.phone: m for m in rows.scalars()}


ENGINE = {"sender_enabled": True, "scheduler_interval": 0.05, "simulator_receipt_delay": 0.05}


class TestEmbeddedSimulator:
    async def test_sms_campaign_reaches_final_receipts(self, db, make_api):
        api = await make_api(**ENGINE)
        account = await api.new_account("acme", credits=100)
        await set_rates(db, [("sms", "*", "", 700)])
        nums = [f"+336123{i:05d}" for i in range(3, 43)] + ["+33612340000", "+33612340001"]
        lst = await seed_contacts(db, account.id, nums)
        cid = await seed_campaign(db, account.id, [lst], text="Hi {{firstName}}", reserve=42 * 700)
        await _wait(db, cid, lambda c: c.status == "completed" and c.delivered + c.failed == 42)
        c = await assert_partition(db, cid)
        assert (c.delivered, c.failed, c.spent, c.reserved) == (40, 2, 41 * 700, 0)
        msgs = await _by_phone(db, cid)
        assert msgs["+33612340000"].error_code == "SIM_REFUSED"
        assert msgs["+33612340000"].price == 0
        assert msgs["+33612340001"].error_code == "SIM_UNDELIVERABLE"
        assert msgs["+33612340001"].price == 700  # accepted, then undeliverable: charged
        assert all(m.provider_message_id == f"sim-{m.id}" for m in msgs.values() if m.price)
        await assert_ledger_consistent(db, account.id)

    async def test_rcs_without_capability_falls_back_to_sms(self, db, make_api):
        api = await make_api(**ENGINE)
        account = await api.new_account("acme", credits=100)
        await set_rates(db, [("sms", "*", "", 700), ("rcs", "*", "", 300)])
        nums = ["+33612340002", "+33612345678", "+33612345679"]
        lst = await seed_contacts(db, account.id, nums)
        cid = await seed_campaign(
            db,
            account.id,
            [lst],
            channel="rcs",
            text="Hi",
            fallback_channel="sms",
            reserve=3 * 700,
        )
        await _wait(db, cid, lambda c: c.status == "completed" and (c.read, c.delivered) == (2, 1))
        msgs = await _by_phone(db, cid)
        fell_back = msgs["+33612340002"]
        assert (fell_back.channel, fell_back.price, fell_back.status) == ("sms", 700, "delivered")
        assert {msgs[p].channel for p in nums[1:]} == {"rcs"}
        c = await assert_partition(db, cid)
        assert (c.read, c.delivered, c.spent) == (2, 1, 700 + 2 * 300)
        await assert_ledger_consistent(db, account.id)


class TestThroughTheApi:
    async def test_confirm_send_now_and_scheduled_both_complete(self, db, make_api):
        api = await make_api(**ENGINE)
        account = await api.new_account("acme", credits=50)
        r = await api.admin(
            "PUT",
            "/admin/rates",
            json={"rates": [{"channel": "sms", "country": "*", "price": 0.07}]},
        )
        assert r.status_code == 200, r.text
        lst = (await account.post("/lists", json={"name": "vip"})).json()["id"]
        contacts = [{"phone": f"+336123{i:05d}", "firstName": "Ann"} for i in range(10, 30)]
        contacts.append({"phone": "+33612340001"})  # accepted, then undeliverable
        r = await account.post(f"/lists/{lst}/contacts", json={"contacts": contacts})
        assert r.status_code == 200, r.text
        ids = []
        for when in (None, (utcnow() + timedelta(seconds=1)).isoformat()):
            r = await account.post(
                "/campaigns",
                json={
                    "name": "bf",
                    "channel": "sms",
                    "listIds": [lst],
                    "sender": "Clarion",
                    "message": {"text": "Hi {{firstName}}, 20% off"},
                },
            )
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            r = await account.put(
                f"/campaigns/{cid}/confirm", json={"scheduledAt": when} if when else {}
            )
            assert r.status_code == 200, r.text
            ids.append(cid)
        for cid in ids:
            await _wait(db, cid, lambda c: c.status == "completed" and c.delivered + c.failed == 21)
            body = (await account.get(f"/campaigns/{cid}")).json()
            assert body["stats"]["delivered"] == 20 and body["stats"]["failed"] == 1
            assert body["cost"] == {"reserved": 0, "spent": 1.47}
            assert body["completedAt"] is not None
            failed = (await account.get(f"/campaigns/{cid}/messages?status=failed")).json()
            assert failed["items"][0]["errorCode"] == "SIM_UNDELIVERABLE"
        account_body = (await account.get("/account")).json()
        assert account_body["balance"] == 50 - 2 * 1.47 and account_body["reserved"] == 0
        await assert_ledger_consistent(db, account.id)
