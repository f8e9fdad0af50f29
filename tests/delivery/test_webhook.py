"""`POST /webhooks/simulator`: signatures, validation, ingestion through the real app."""

import orjson
from sqlalchemy import update

from clarion.delivery.routes import sign
from clarion.messages.models import Message
from clarion.messages.tally import move
from clarion.sending import scheduler
from tests.conftest import Api, AppFactory
from tests.delivery.conftest import (
    assert_partition,
    campaign_counters,
    message_statuses,
    seed_campaign,
)


def body_of(*receipts: dict[str, object], inbound: list[dict[str, object]] | None = None) -> bytes:
    return orjson.dumps({"receipts": list(receipts), "inbound": inbound or []})


async def post(api: Api, body: bytes, signature: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Simulator-Signature"] = signature
    return await api.client.post("/webhooks/simulator", content=body, headers=headers)


class TestSignature:
    async def test_signed_body_is_applied(self, make_api: AppFactory) -> None:
        api = await make_api(simulator_secret="k")
        s = await seed_campaign(api.db, count=2)
        body = body_of({"providerMessageId": s.pmid(0), "status": "delivered"})
        r = await post(api, body, sign("k", body))
        assert r.status_code == 200, r.text
        assert r.json() == {"received": 1, "applied": 1, "unchanged": 0, "parked": 0, "inbound": 0}
        assert (await campaign_counters(api.db, s.campaign_id))["delivered"] == 1

    async def test_missing_or_bad_signature_is_401_and_changes_nothing(
        self, make_api: AppFactory
    ) -> None:
        api = await make_api(simulator_secret="k")
        s = await seed_campaign(api.db, count=1)
        body = body_of({"providerMessageId": s.pmid(0), "status": "delivered"})
        for signature in (None, "", "sha256=00", sign("other", body), sign("k", body + b" ")):
            r = await post(api, body, signature)
            assert r.status_code == 401, signature
            assert r.headers["content-type"].startswith("application/problem+json")
        # A tampered body with the original signature is refused too.
        tampered = body.replace(b"delivered", b"failed\x20\x20")
        assert (await post(api, tampered, sign("k", body))).status_code == 401
        counters = await campaign_counters(api.db, s.campaign_id)
        assert (counters["sent"], counters["delivered"]) == (1, 0)

    async def test_bad_body_with_bad_signature_is_401_not_422(self, make_api: AppFactory) -> None:
        api = await make_api(simulator_secret="k")
        assert (await post(api, b"{nope", "sha256=1")).status_code == 401

    async def test_without_a_secret_unsigned_bodies_are_accepted(self, api: Api) -> None:
        s = await seed_campaign(api.db, count=1)
        r = await post(api, body_of({"providerMessageId": s.pmid(0), "status": "read"}))
        assert r.status_code == 200 and r.json()["applied"] == 1
        await assert_partition(api.db, s.campaign_id)


class TestValidation:
    async def test_malformed_json_is_400(self, api: Api) -> None:
        r = await post(api, b"{nope")
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_bad_items_are_422_with_fields(self, api: Api) -> None:
        for body, field in (
            ({"receipts": [{"providerMessageId": "x", "status": "lost"}]}, "receipts[0].status"),
            ({"receipts": [{"status": "read"}]}, "receipts[0].providerMessageId"),
            ({"receipts": [{"providerMessageId": "x" * 200, "status": "read"}]},
             "receipts[0].providerMessageId"),
            ({"receipts": "x"}, "receipts"),
            ({"receipts": [], "extra": 1}, "extra"),
            ({"receipts": [{"providerMessageId": "x", "status": "read",
                            "timestamp": "2026-11-27T10:00:00"}]}, "receipts[0].timestamp"),
            ([], "body"),
        ):  # fmt: skip
            r = await post(api, orjson.dumps(body))
            assert r.status_code == 422, (body, r.text)
            assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())

    async def test_empty_batch_is_fine(self, api: Api) -> None:
        r = await post(api, b"{}")
        assert r.status_code == 200 and r.json()["received"] == 0


class TestIngestion:
    async def test_duplicates_out_of_order_and_unknown_ids(self, api: Api) -> None:
        s = await seed_campaign(api.db, count=3, channel="rcs")
        first = body_of(
            {"providerMessageId": s.pmid(0), "status": "read"},
            {"providerMessageId": s.pmid(1), "status": "failed", "errorCode": "X"},
            {"providerMessageId": "sim-unknown", "status": "delivered"},
        )
        r = await post(api, first)
        assert r.json() == {"received": 3, "applied": 2, "unchanged": 0, "parked": 1, "inbound": 0}
        again = body_of(
            {"providerMessageId": s.pmid(0), "status": "delivered"},
            {"providerMessageId": s.pmid(1), "status": "delivered"},
            {"providerMessageId": s.pmid(2), "status": "delivered"},
            {"providerMessageId": s.pmid(2), "status": "delivered"},
        )
        r = await post(api, again)
        assert r.json() == {"received": 4, "applied": 1, "unchanged": 3, "parked": 0, "inbound": 0}
        counters = await campaign_counters(api.db, s.campaign_id)
        assert (counters["read"], counters["failed"], counters["delivered"]) == (1, 1, 1)
        await assert_partition(api.db, s.campaign_id)

    async def test_inbound_goes_to_the_inbound_hook(self, api: Api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        from clarion.delivery import inbound

        seen = []

        async def fake(session, items):  # type: ignore[no-untyped-def]
            seen.extend(items)

        monkeypatch.setattr(inbound, "handle_inbound", fake)
        body = body_of(inbound=[{"from": "+33612345678", "channel": "sms", "text": "STOP"}])
        r = await post(api, body)
        assert r.status_code == 200 and r.json()["inbound"] == 1
        assert [(m.provider, m.channel, m.from_phone, m.text) for m in seen] == [
            ("simulator", "sms", "+33612345678", "STOP")
        ]


class TestOpenApi:
    async def test_the_webhook_body_is_documented(self, api: Api) -> None:
        spec = (await api.client.get("/openapi.json")).json()
        operation = spec["paths"]["/webhooks/simulator"]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "receipts" in body["properties"] and "inbound" in body["properties"]
        assert "#/$defs" not in orjson.dumps(operation).decode()
        assert {"401", "422"} <= set(operation["responses"])


class TestParkedReceipt:
    async def test_a_parked_receipt_is_applied_by_the_next_scheduler_round(self, api: Api) -> None:
        s = await seed_campaign(api.db, count=1, status="sending")
        r = await post(api, body_of({"providerMessageId": s.pmid(0), "status": "delivered"}))
        assert r.json()["parked"] == 1
        async with api.db.transaction() as session:  # the dispatcher's commit lands
            await session.execute(update(Message).values(status="sent"))
            await move(session, s.campaign_id, {"sending": -1, "sent": 1})
        assert await scheduler.sweep_parked(api.db) == 1
        assert (await message_statuses(api.db, s.campaign_id))[s.message_ids[0]] == "delivered"
        await assert_partition(api.db, s.campaign_id)
