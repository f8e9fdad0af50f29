"""Idempotency-Key on POST /campaigns and PUT /campaigns/{id}/confirm."""

import asyncio
from datetime import timedelta

from sqlalchemy import update

from clarion.accounts.models import IdempotencyRecord
from clarion.db.base import utcnow
from tests.campaigns.conftest import World, balance, create, fields, sms_body
from tests.conftest import AccountClient, Api, assert_ledger_consistent


def key(k: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Idempotency-Key": k}}


class TestCreateIdempotency:
    async def test_same_key_same_body_replays(self, account: AccountClient, world: World) -> None:
        body = sms_body([])
        first = await account.post("/campaigns", json=body, **key("k1"))
        assert first.status_code == 201
        # same JSON, other key order and spacing: same body
        raw = '{"listIds": [], "message": {"text": "Hello there"}, "channel": "sms", "name": "c"}'
        second = await account.post(
            "/campaigns",
            content=raw,
            headers={"Idempotency-Key": "k1", "content-type": "application/json"},
        )
        assert second.status_code == 201
        assert second.json() == first.json()
        assert second.headers.get("idempotent-replayed") == "true"
        assert (await account.get("/campaigns")).json()["total"] == 1
        other = await account.post("/campaigns", json=body, **key("k2"))
        assert other.json()["id"] != first.json()["id"]
        plain = await account.post("/campaigns", json=body)
        assert plain.status_code == 201
        assert (await account.get("/campaigns")).json()["total"] == 3

    async def test_same_key_other_body_is_422(self, account: AccountClient, world: World) -> None:
        await account.post("/campaigns", json=sms_body([]), **key("k"))
        r = await account.post("/campaigns", json=sms_body([], "other"), **key("k"))
        assert r.status_code == 422 and fields(r) == ["Idempotency-Key"]
        assert (await account.get("/campaigns")).json()["total"] == 1

    async def test_keys_are_per_account(self, api: Api, account: AccountClient) -> None:
        other = await api.new_account("other")
        a = await account.post("/campaigns", json=sms_body([]), **key("shared"))
        b = await other.post("/campaigns", json=sms_body([]), **key("shared"))
        assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]

    async def test_expires_after_24_hours(self, account: AccountClient, world: World) -> None:
        first = await account.post("/campaigns", json=sms_body([]), **key("old"))
        async with world.db.transaction() as s:
            await s.execute(
                update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=25))
            )
        again = await account.post("/campaigns", json=sms_body([], "new"), **key("old"))
        assert again.status_code == 201 and again.json()["id"] != first.json()["id"]

    async def test_errors_are_not_stored(self, account: AccountClient, world: World) -> None:
        bad = sms_body([424242])
        assert (await account.post("/campaigns", json=bad, **key("e"))).status_code == 422
        lst = await world.new_list(account)
        good = await account.post("/campaigns", json=sms_body([lst]), **key("e"))
        assert good.status_code == 201

    async def test_bad_key(self, account: AccountClient) -> None:
        r = await account.post("/campaigns", json=sms_body([]), **key("x" * 256))
        assert r.status_code == 422 and fields(r) == ["Idempotency-Key"]

    async def test_concurrent_duplicates_create_once(
        self, account: AccountClient, world: World
    ) -> None:
        results = await asyncio.gather(
            *(account.post("/campaigns", json=sms_body([]), **key("race")) for _ in range(4))
        )
        assert [r.status_code for r in results] == [201] * 4, [r.text for r in results]
        assert len({r.json()["id"] for r in results}) == 1
        assert (await account.get("/campaigns")).json()["total"] == 1


class TestConfirmIdempotency:
    async def test_replay_does_not_reserve_twice(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 10)
        c = await create(account, sms_body([lst]))
        url = f"/campaigns/{c['id']}/confirm"
        first = await account.put(url, json={}, **key("c1"))
        second = await account.put(url, json={}, **key("c1"))
        assert first.status_code == second.status_code == 200
        assert second.json() == first.json()
        assert (await balance(account))["reserved"] == 0.7
        # without the key the second confirm is a state conflict
        assert (await account.put(url, json={})).status_code == 409
        r = await account.put(url, json={"scheduledAt": "2099-01-01T00:00:00Z"}, **key("c1"))
        assert r.status_code == 422
        await assert_ledger_consistent(world.db, account.id)

    async def test_concurrent_confirms_with_one_key(
        self, account: AccountClient, world: World
    ) -> None:
        lst = await world.new_list(account)
        await world.people(account, [lst], 10)
        c = await create(account, sms_body([lst]))
        url = f"/campaigns/{c['id']}/confirm"
        results = await asyncio.gather(*(account.put(url, json={}, **key("cc")) for _ in range(3)))
        assert [r.status_code for r in results] == [200] * 3, [r.text for r in results]
        assert (await balance(account))["reserved"] == 0.7
        await assert_ledger_consistent(world.db, account.id)
