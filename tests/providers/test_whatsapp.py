"""WhatsApp Cloud API: the adapter against a fake Graph API, the webhook through the app."""

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from sqlalchemy import select

from clarion.config import Settings
from clarion.db.session import Database
from clarion.delivery.models import ReceiptEvent
from clarion.providers.base import OutboundMessage, Outcome, TemplateRef
from clarion.providers.cli import sync_templates
from clarion.providers.whatsapp_cloud import WhatsAppCloudProvider, valid_signature
from clarion.templates.models import Template
from clarion.templates.render import same_message, variables_of
from tests.conftest import AccountClient, Api, AppFactory
from tests.providers.conftest import (
    FakeServer,
    RecordingSink,
    add_contact,
    add_sent_message,
    message_state,
    opt_outs,
)

SECRET = "meta-app-secret"
VERIFY = "verify-me"


def wa(i: int, to: str = "+33612345678", params: list[str] | None = None) -> OutboundMessage:
    return OutboundMessage(
        id=i,
        channel="whatsapp",
        to=to,
        sender=None,
        template=TemplateRef("black_friday", "en_US", "marketing", params or ["Ada", "BF20"]),
    )


def graph_error(code: int, status: int = 400) -> web.Response:
    body = {
        "error": {
            "message": f"error {code}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"details": "details here"},
            "fbtrace_id": "x",
        }
    }
    return web.json_response(body, status=status)


@pytest.fixture
async def graph(http_server: Callable[..., Awaitable[FakeServer]]) -> FakeServer:
    """Answers by the recipient: ...0429 throttled, ...1056 pair limit, ...1026 undeliverable,
    ...2000 bad parameters, ...0500 HTTP 500; else a wamid."""

    async def messages(request: web.Request) -> web.Response:
        body = await request.json()
        to = body["to"]
        for suffix, code in (
            ("0429", 130429),
            ("1056", 131056),
            ("1026", 131026),
            ("2000", 132000),
            ("0131", 131000),
        ):
            if to.endswith(suffix):
                return graph_error(code)
        if to.endswith("0500"):
            return web.Response(status=500, text="oops")
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.HBgL{to}"}],
            }
        )

    templates = [
        {
            "name": f"t{i}",
            "language": "en_US",
            "category": "MARKETING",
            "status": "APPROVED",
            "id": str(1000 + i),
            "components": [{"type": "BODY", "text": "Hi {{1}}, code {{2}}"}],
        }
        for i in range(5)
    ]
    templates[1]["status"] = "REJECTED"

    async def list_templates(request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        page = templates[after : after + 2]
        body: dict[str, Any] = {"data": page, "paging": {}}
        if after + 2 < len(templates):
            body["paging"]["next"] = str(request.url.update_query({"after": str(after + 2)}))
        return web.json_response(body)

    return await http_server(
        [
            ("POST", "/v21.0/{phone}/messages", messages),
            ("GET", "/v21.0/{waba}/message_templates", list_templates),
        ]
    )


def settings_for(graph: FakeServer, **extra: Any) -> Settings:
    return Settings(
        whatsapp_provider="cloud",
        whatsapp_api_url=f"{graph.url}/v21.0",
        whatsapp_token="tok",
        whatsapp_phone_number_id="1055",
        whatsapp_app_secret=SECRET,
        whatsapp_verify_token=VERIFY,
        **extra,
    )


class TestSend:
    async def test_template_message_on_the_wire(
        self, graph: FakeServer, sink: RecordingSink
    ) -> None:
        provider = WhatsAppCloudProvider(settings_for(graph))
        await provider.start(sink)
        try:
            [result] = await provider.submit([wa(1)])
        finally:
            await provider.close()
        assert result.outcome == Outcome.ACCEPTED
        assert result.provider_message_id == "wamid.HBgL33612345678"
        [request] = graph.requests
        assert request.path == "/v21.0/1055/messages"
        assert request.headers["Authorization"] == "Bearer tok"
        assert orjson.loads(request.body) == {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "33612345678",
            "type": "template",
            "template": {
                "name": "black_friday",
                "language": {"policy": "deterministic", "code": "en_US"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ada"},
                            {"type": "text", "text": "BF20"},
                        ],
                    }
                ],
            },
        }

    async def test_error_codes_are_mapped(self, graph: FakeServer, sink: RecordingSink) -> None:
        provider = WhatsAppCloudProvider(settings_for(graph))
        await provider.start(sink)
        try:
            results = await provider.submit(
                [
                    wa(1, "+330429"),
                    wa(2, "+331056"),
                    wa(3, "+331026"),
                    wa(4, "+332000"),
                    wa(5, "+330500"),
                    wa(6, "+330131"),
                ]
            )
        finally:
            await provider.close()
        by_id = {r.message_id: r for r in results}
        assert by_id[1].outcome == Outcome.THROTTLED and by_id[1].error_code == "130429"
        assert by_id[2].outcome == Outcome.RETRY and by_id[2].error_code == "131056"
        assert by_id[2].retry_after == 60
        assert by_id[3].outcome == Outcome.REFUSED and by_id[3].error_code == "131026"
        assert "details here" in (by_id[3].error_message or "")
        assert by_id[4].outcome == Outcome.REFUSED and by_id[4].error_code == "132000"
        assert by_id[5].outcome == Outcome.RETRY
        assert by_id[6].outcome == Outcome.RETRY and by_id[6].error_code == "131000"

    async def test_unreachable_api_is_retry(self, sink: RecordingSink) -> None:
        settings = Settings(
            whatsapp_api_url="http://127.0.0.1:9", whatsapp_token="t", whatsapp_phone_number_id="1"
        )
        provider = WhatsAppCloudProvider(settings)
        await provider.start(sink)
        try:
            [result] = await provider.submit([wa(1)])
        finally:
            await provider.close()
        assert result.outcome == Outcome.RETRY


class TestSignature:
    def test_known_vector(self) -> None:
        # computed independently: printf '%s' BODY | openssl dgst -sha256 -hmac meta-app-secret
        body = b'{"object":"whatsapp_business_account"}'
        header = "sha256=81176fcf9ac718ce2812972d013a8e62f99e6d50aee56fd0e9d9d954c7c0c1b0"
        assert valid_signature(SECRET, body, header)
        assert not valid_signature(SECRET, body + b" ", header)
        assert not valid_signature("other", body, header)
        assert not valid_signature(SECRET, body, header.removeprefix("sha256="))
        assert not valid_signature(SECRET, body, None)


def signed(payload: Any, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def change(value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"value": value, "field": field}]}],
    }


@pytest.fixture
async def wa_api(make_api: AppFactory) -> Api:
    return await make_api(
        whatsapp_provider="cloud", whatsapp_app_secret=SECRET, whatsapp_verify_token=VERIFY
    )


async def receipt_events(db: Database) -> list[ReceiptEvent]:
    async with db.session(write=False) as session:
        rows = await session.execute(select(ReceiptEvent).order_by(ReceiptEvent.id))
        return list(rows.scalars())


class TestVerifyHandshake:
    async def test_echoes_the_challenge(self, wa_api: Api) -> None:
        response = await wa_api.client.get(
            "/webhooks/whatsapp",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY,
                "hub.challenge": "1158201444",
            },
        )
        assert response.status_code == 200 and response.text == "1158201444"

    async def test_wrong_token_is_403(self, wa_api: Api) -> None:
        response = await wa_api.client.get(
            "/webhooks/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
        )
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")


class TestWebhookEvents:
    STATUSES = change(
        {
            "messaging_product": "whatsapp",
            "metadata": {"phone_number_id": "1055"},
            "statuses": [
                {
                    "id": "wamid.A",
                    "status": "delivered",
                    "timestamp": "1764226800",
                    "recipient_id": "33612345678",
                },
                {
                    "id": "wamid.B",
                    "status": "failed",
                    "timestamp": "1764226801",
                    "recipient_id": "33612345679",
                    "errors": [{"code": 131050, "title": "User stopped marketing messages"}],
                },
                {"id": "wamid.A", "status": "read", "timestamp": "1764226802"},
            ],
        }
    )

    async def test_statuses_become_receipts(self, wa_api: Api) -> None:
        body, headers = signed(self.STATUSES)
        response = await wa_api.client.post("/webhooks/whatsapp", content=body, headers=headers)
        assert response.status_code == 200, response.text
        events = await receipt_events(wa_api.db)
        assert [(e.provider, e.provider_message_id, e.status) for e in events] == [
            ("cloud", "wamid.A", "delivered"),
            ("cloud", "wamid.B", "failed"),
            ("cloud", "wamid.A", "read"),
        ]
        assert events[1].error_code == "131050"
        assert events[1].error_message == "User stopped marketing messages"
        assert events[0].occurred_at is not None and events[0].occurred_at.year == 2025

    async def test_read_before_delivered_ends_read_and_failures_keep_the_code(
        self, wa_api: Api, account: AccountClient
    ) -> None:
        a = await add_sent_message(wa_api.db, account.id, "cloud", "wamid.A", "whatsapp")
        b = await add_sent_message(wa_api.db, account.id, "cloud", "wamid.B", "whatsapp")
        body, headers = signed(self.STATUSES)
        response = await wa_api.client.post("/webhooks/whatsapp", content=body, headers=headers)
        assert response.status_code == 200
        assert await message_state(wa_api.db, a) == ("read", None)
        assert await message_state(wa_api.db, b) == ("failed", "131050")

    async def test_bad_signature_is_401_and_changes_nothing(
        self, wa_api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(wa_api.db, account.id, "+33611111111")
        payload = self.STATUSES
        payload_stop = change(
            {
                "messages": [
                    {
                        "from": "33611111111",
                        "id": "wamid.in",
                        "timestamp": "1764226800",
                        "type": "text",
                        "text": {"body": "STOP"},
                    }
                ]
            }
        )
        for bad_payload in (payload, payload_stop):
            body, headers = signed(bad_payload, secret="not-the-secret")
            response = await wa_api.client.post("/webhooks/whatsapp", content=body, headers=headers)
            assert response.status_code == 401
            body, _ = signed(bad_payload)
            response = await wa_api.client.post("/webhooks/whatsapp", content=body)
            assert response.status_code == 401
        assert await receipt_events(wa_api.db) == []
        assert await opt_outs(wa_api.db, contact) == []

    async def test_inbound_stop_and_start(self, wa_api: Api, account: AccountClient) -> None:
        contact = await add_contact(wa_api.db, account.id, "+33611111111")

        def inbound(text: str) -> dict[str, Any]:
            return change(
                {
                    "contacts": [{"wa_id": "33611111111"}],
                    "messages": [
                        {
                            "from": "33611111111",
                            "id": f"wamid.in.{text.strip()}",  # each inbound has its own id
                            "timestamp": "1764226800",
                            "type": "text",
                            "text": {"body": text},
                        }
                    ],
                }
            )

        body, headers = signed(inbound("  stop "))
        assert (
            await wa_api.client.post("/webhooks/whatsapp", content=body, headers=headers)
        ).status_code == 200
        assert await opt_outs(wa_api.db, contact) == ["whatsapp"]
        body, headers = signed(inbound("START"))
        assert (
            await wa_api.client.post("/webhooks/whatsapp", content=body, headers=headers)
        ).status_code == 200
        assert await opt_outs(wa_api.db, contact) == []

    async def test_template_status_update(self, wa_api: Api, account: AccountClient) -> None:
        async with wa_api.db.transaction() as session:
            for language in ("en_US", "fr"):
                session.add(
                    Template(
                        account_id=account.id,
                        name="black_friday",
                        channel="whatsapp",
                        language=language,
                        category="marketing",
                        body="Hi {{1}}",
                        status="approved",
                        variables=[],
                    )
                )
        payload = change(
            {
                "event": "PAUSED",
                "message_template_id": 123,
                "message_template_name": "black_friday",
                "message_template_language": "en_US",
                "reason": "LOW_QUALITY",
            },
            field="message_template_status_update",
        )
        body, headers = signed(payload)
        response = await wa_api.client.post("/webhooks/whatsapp", content=body, headers=headers)
        assert response.status_code == 200 and response.json()["templates"] == 1
        async with wa_api.db.session(write=False) as session:
            rows = dict((await session.execute(select(Template.language, Template.status))).all())
        assert rows == {"en_US": "paused", "fr": "approved"}

    async def test_not_json_is_400(self, wa_api: Api) -> None:
        body = b"not json"
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = await wa_api.client.post(
            "/webhooks/whatsapp", content=body, headers={"X-Hub-Signature-256": f"sha256={digest}"}
        )
        assert response.status_code == 400

    async def test_unconfigured_is_401(self, api: Api) -> None:
        body, headers = signed(self.STATUSES)
        response = await api.client.post("/webhooks/whatsapp", content=body, headers=headers)
        assert response.status_code == 401


class TestTemplateSync:
    async def test_pulls_every_page_and_upserts(
        self, graph: FakeServer, settings: Settings, account: AccountClient, api: Api
    ) -> None:
        sync_settings = settings_for(graph, database_url=settings.database_url)
        assert await sync_templates(sync_settings, account.id, "WABA1") == (5, 0, [])
        pages = [r for r in graph.requests if r.path.endswith("/message_templates")]
        assert len(pages) == 3 and pages[0].path == "/v21.0/WABA1/message_templates"
        assert pages[0].headers["Authorization"] == "Bearer tok"
        async with api.db.transaction() as session:
            t1 = await session.scalar(select(Template).where(Template.name == "t1"))
            assert t1 is not None
            assert (t1.status, t1.category, t1.language) == ("rejected", "marketing", "en_US")
            assert t1.body == "Hi {{1}}, code {{2}}" and t1.variables == ["1", "2"]
            t1.status = "approved"
        assert await sync_templates(sync_settings, account.id, "WABA1") == (0, 5, [])
        async with api.db.session(write=False) as session:
            t1 = await session.scalar(select(Template).where(Template.name == "t1"))
            assert t1 is not None and t1.status == "rejected"

    async def test_same_rules_and_defaults_as_the_api(
        self,
        http_server: Callable[..., Awaitable[FakeServer]],
        settings: Settings,
        account: AccountClient,
    ) -> None:
        def item(name: str, language: str, text: str, **extra: Any) -> dict[str, Any]:
            body = {"type": "BODY", "text": text}
            return {"name": name, "language": language, "components": [body], **extra}

        templates = [
            item("no_category", "fr", "Bonjour {{1}}", status="APPROVED", id="77"),
            item("legacy", "en", "x", category="TRANSACTIONAL", status="APPROVED"),
            item("too_long", "en", "x" * 1025, category="UTILITY", status="APPROVED"),
            item("odd_language", "not a language", "x", category="UTILITY"),
        ]

        async def list_templates(request: web.Request) -> web.Response:
            return web.json_response({"data": templates, "paging": {}})

        server = await http_server([("GET", "/v21.0/{waba}/message_templates", list_templates)])
        sync_settings = settings_for(server, database_url=settings.database_url)
        result = await sync_templates(sync_settings, account.id, "WABA1")
        assert (result.created, result.updated) == (1, 0)
        assert [s.split(" (")[0] for s in result.refused] == ["legacy", "too_long", "odd_language"]
        assert "category" in result.refused[0] and "1024" in result.refused[1]
        assert "language" in result.refused[2]
        listed = (await account.get("/templates")).json()["items"]
        assert [(t["name"], t["category"], t["status"], t["variables"]) for t in listed] == [
            ("no_category", "marketing", "approved", ["1"])
        ]
        assert await sync_templates(sync_settings, account.id, "WABA1") == (0, 1, result.refused)
        assert (await account.get("/templates")).json()["items"] == listed  # nothing moved
        templates[0]["category"] = "UTILITY"
        assert await sync_templates(sync_settings, account.id, "WABA1") == (0, 1, result.refused)
        updated = (await account.get("/templates")).json()["items"]
        assert [t["category"] for t in updated] == ["utility"]
        assert updated[0]["updatedAt"] > listed[0]["updatedAt"]

    async def _local(self, api: Api, account_id: int, name: str, body: str) -> None:
        async with api.db.transaction() as session:
            session.add(
                Template(
                    account_id=account_id,
                    channel="whatsapp",
                    name=name,
                    language="en_US",
                    category="marketing",
                    status="pending",
                    body=body,
                    variables=variables_of(body),
                )
            )

    async def _template(self, api: Api, name: str) -> Template:
        async with api.db.session(write=False) as session:
            t = await session.scalar(select(Template).where(Template.name == name))
            assert t is not None
            return t

    async def test_local_variable_names_are_kept(
        self, graph: FakeServer, settings: Settings, account: AccountClient, api: Api
    ) -> None:
        await self._local(api, account.id, "t0", "Hi {{firstName}}, code {{ code }}")
        sync_settings = settings_for(graph, database_url=settings.database_url)
        result = await sync_templates(sync_settings, account.id, "WABA1")
        assert (result.created, result.updated, result.refused) == (4, 1, [])
        t0 = await self._template(api, "t0")
        assert t0.body == "Hi {{firstName}}, code {{ code }}"
        assert t0.variables == ["firstName", "code"]
        assert (t0.status, t0.provider_template_id) == ("approved", "1000")

    async def test_a_template_that_would_send_something_else_is_refused(
        self, graph: FakeServer, settings: Settings, account: AccountClient, api: Api
    ) -> None:
        await self._local(api, account.id, "t2", "Code {{code}} for {{firstName}}!")
        sync_settings = settings_for(graph, database_url=settings.database_url)
        result = await sync_templates(sync_settings, account.id, "WABA1")
        assert (result.created, result.updated) == (4, 0)
        [reason] = result.refused
        assert "'t2' (en_US) left unchanged" in reason and "Hi {{1}}, code {{2}}" in reason
        t2 = await self._template(api, "t2")
        assert (t2.body, t2.status) == ("Code {{code}} for {{firstName}}!", "pending")

    def test_same_message(self) -> None:
        assert same_message("Hi {{1}}, code {{2}}", "Hi {{1}}, code {{2}}")
        assert same_message("Hi {{name}}, {{code}} {{name}}", "Hi {{1}}, {{2}} {{ 1 }}")
        assert not same_message("Hi {{code}}, {{name}}", "Hi {{2}}, {{1}}")
        assert not same_message("Hello {{name}}", "Hi {{1}}")
        assert not same_message("Hi {{a}} {{b}}", "Hi {{1}}")
