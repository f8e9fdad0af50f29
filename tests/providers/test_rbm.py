"""Google RBM: service-account tokens against a fake token endpoint, the adapter against a
fake RBM API, the events webhook through the app."""

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt
from sqlalchemy import select

from clarion.config import Settings
from clarion.delivery.models import ReceiptEvent
from clarion.providers.base import OutboundMessage, Outcome
from clarion.providers.rbm import RbmProvider, agent_message, valid_signature
from tests.conftest import AccountClient, Api, AppFactory
from tests.providers.conftest import FakeServer, RecordingSink, add_contact, opt_outs

CLIENT_TOKEN = "rbm-client-token"
AGENT = "clarion_agent"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def google(
    http_server: Callable[..., Awaitable[FakeServer]], rsa_key: rsa.RSAPrivateKey
) -> FakeServer:
    """A fake OAuth2 token endpoint (checks the signed JWT assertion) and a fake RBM API.
    Phones ending 0002 have no RCS, 0429 throttles, 0500 fails, 0409 was sent already;
    `state["expire"]` makes the next API call answer 401 once."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    state: dict[str, Any] = {"issued": 0, "expire": False}

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        # google-auth signs its assertion for Google's token audience whatever the token_uri
        claims = jwt.decode(
            str(form["assertion"]), certs=public_pem, audience="https://oauth2.googleapis.com/token"
        )
        assert claims["scope"] == "https://www.googleapis.com/auth/rcsbusinessmessaging"
        state["issued"] += 1
        return web.json_response(
            {
                "access_token": f"ya29.token-{state['issued']}",
                "expires_in": 3600,
                "token_type": "Bearer",
            }
        )

    def authorized(request: web.Request) -> bool:
        if state["expire"]:
            state["expire"] = False
            return False
        return request.headers.get("Authorization") == f"Bearer ya29.token-{state['issued']}"

    def error(status: int, message: str) -> web.Response:
        return web.json_response({"error": {"code": status, "message": message}}, status=status)

    async def capabilities(request: web.Request) -> web.Response:
        if not authorized(request):
            return error(401, "unauthenticated")
        if request.match_info["phone"].endswith("0002"):
            return error(404, "Requested entity was not found.")
        return web.json_response({"features": ["RICHCARD_STANDALONE", "ACTION_DIAL"]})

    async def send(request: web.Request) -> web.Response:
        if not authorized(request):
            return error(401, "unauthenticated")
        phone = request.match_info["phone"]
        for suffix, status in (("0002", 404), ("0429", 429), ("0500", 500), ("0409", 409)):
            if phone.endswith(suffix):
                return error(status, f"status {status}")
        return web.json_response(
            {"name": f"phones/{phone}/agentMessages/{request.query['messageId']}"}
        )

    server = await http_server(
        [
            ("POST", "/token", token),
            ("GET", "/v1/phones/{phone}/capabilities", capabilities),
            ("POST", "/v1/phones/{phone}/agentMessages", send),
        ]
    )
    state["token_uri"] = f"{server.url}/token"
    server.state = state  # type: ignore[attr-defined]
    return server


@pytest.fixture
def service_account_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, google: FakeServer) -> str:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "clarion-test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "rbm@clarion-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{google.url}/token",
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(info))
    return str(path)


@pytest.fixture
async def provider(google: FakeServer, service_account_file: str) -> Any:
    settings = Settings(
        rcs_provider="rbm",
        rbm_api_url=google.url,
        rbm_agent_id=AGENT,
        rbm_service_account_file=service_account_file,
        rbm_client_token=CLIENT_TOKEN,
    )
    rbm = RbmProvider(settings)
    await rbm.start(RecordingSink())
    yield rbm
    await rbm.close()


def rcs(i: int, to: str = "+33612345678", **kw: Any) -> OutboundMessage:
    return OutboundMessage(id=i, channel="rcs", to=to, sender=None, **kw)


class TestSend:
    async def test_text_with_suggestions_and_our_message_id(
        self, provider: RbmProvider, google: FakeServer
    ) -> None:
        [result] = await provider.submit(
            [
                rcs(
                    41,
                    text="Hi Ada",
                    suggestions=["Yes", {"reply": {"text": "No", "postbackData": "n"}}],
                )
            ]
        )
        assert result.outcome == Outcome.ACCEPTED and result.provider_message_id == "41"
        [call] = [r for r in google.requests if r.path.endswith("agentMessages")]
        assert call.path == "/v1/phones/+33612345678/agentMessages"
        assert call.query == {"messageId": "41", "agentId": AGENT}
        assert call.headers["Authorization"] == "Bearer ya29.token-1"
        assert orjson.loads(call.body) == {
            "contentMessage": {
                "text": "Hi Ada",
                "suggestions": [
                    {"reply": {"text": "Yes", "postbackData": "Yes"}},
                    {"reply": {"text": "No", "postbackData": "n"}},
                ],
            }
        }

    def test_rich_card(self) -> None:
        body = agent_message(
            rcs(
                1,
                rich_card={
                    "title": "Sale",
                    "description": "20% off",
                    "mediaUrl": "https://x.test/a.png",
                },
                suggestions=["Shop"],
            )
        )
        card = body["contentMessage"]["richCard"]["standaloneCard"]
        assert card["cardOrientation"] == "VERTICAL"
        assert card["cardContent"]["title"] == "Sale"
        assert card["cardContent"]["media"]["contentInfo"]["fileUrl"] == "https://x.test/a.png"
        assert card["cardContent"]["suggestions"] == [
            {"reply": {"text": "Shop", "postbackData": "Shop"}}
        ]

    async def test_outcomes(self, provider: RbmProvider) -> None:
        results = {
            r.message_id: r
            for r in await provider.submit(
                [
                    rcs(1, "+330002", text="a"),
                    rcs(2, "+330429", text="a"),
                    rcs(3, "+330500", text="a"),
                    rcs(4, "+330409", text="a"),
                ]
            )
        }
        assert results[1].outcome == Outcome.NO_CAPABILITY
        assert results[2].outcome == Outcome.THROTTLED
        assert results[3].outcome == Outcome.RETRY
        # 409: this messageId was sent already (a resend after a crash): accepted once
        assert results[4].outcome == Outcome.ACCEPTED
        assert results[4].provider_message_id == "4"

    async def test_token_is_reused_then_refreshed_on_401(
        self, provider: RbmProvider, google: FakeServer
    ) -> None:
        await provider.submit([rcs(1, text="a"), rcs(2, text="b")])
        assert google.state["issued"] == 1  # type: ignore[attr-defined]
        google.state["expire"] = True  # type: ignore[attr-defined]
        [result] = await provider.submit([rcs(3, text="c")])
        assert result.outcome == Outcome.ACCEPTED
        assert google.state["issued"] == 2  # type: ignore[attr-defined]

    async def test_capability_check(self, provider: RbmProvider, google: FakeServer) -> None:
        answer = await provider.check_capability(["+33612345678", "+33600000002"])
        assert answer == {"+33612345678": True, "+33600000002": False}
        calls = [r for r in google.requests if r.path.endswith("/capabilities")]
        assert all(c.query["agentId"] == AGENT and c.query["requestId"] for c in calls)


def push(event: dict[str, Any], token: str = CLIENT_TOKEN) -> tuple[bytes, dict[str, str]]:
    data = orjson.dumps(event)
    signature = base64.b64encode(hmac.new(token.encode(), data, hashlib.sha512).digest()).decode()
    body = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": "1",
            "publishTime": "2026-11-27T06:00:00Z",
        },
        "subscription": "projects/rbm/subscriptions/clarion",
    }
    return orjson.dumps(body), {"X-Goog-Signature": signature, "Content-Type": "application/json"}


@pytest.fixture
async def rbm_api(make_api: AppFactory) -> Api:
    return await make_api(rbm_client_token=CLIENT_TOKEN)


class TestWebhook:
    def test_signature_is_over_the_decoded_data(self) -> None:
        data = b'{"eventType":"DELIVERED"}'
        good = base64.b64encode(hmac.new(b"k", data, hashlib.sha512).digest()).decode()
        assert valid_signature("k", data, good)
        assert not valid_signature("k", base64.b64encode(data), good)
        assert not valid_signature("other", data, good)

    async def test_client_token_handshake(self, rbm_api: Api) -> None:
        response = await rbm_api.client.post(
            "/webhooks/rbm", json={"clientToken": CLIENT_TOKEN, "secret": "s3cr3t"}
        )
        assert response.status_code == 200 and response.json() == {"secret": "s3cr3t"}
        response = await rbm_api.client.post(
            "/webhooks/rbm", json={"clientToken": "wrong", "secret": "s3cr3t"}
        )
        assert response.status_code == 401

    async def test_delivered_and_read_become_receipts(self, rbm_api: Api) -> None:
        for kind in ("READ", "DELIVERED"):
            body, headers = push(
                {
                    "senderPhoneNumber": "+33612345678",
                    "eventType": kind,
                    "eventId": f"e-{kind}",
                    "messageId": "41",
                    "sendTime": "2026-11-27T06:00:01.123Z",
                    "agentId": AGENT,
                }
            )
            response = await rbm_api.client.post("/webhooks/rbm", content=body, headers=headers)
            assert response.status_code == 200, response.text
        async with rbm_api.db.session(write=False) as session:
            events = list(
                (await session.execute(select(ReceiptEvent).order_by(ReceiptEvent.id))).scalars()
            )
        assert [(e.provider, e.provider_message_id, e.status) for e in events] == [
            ("rbm", "41", "read"),
            ("rbm", "41", "delivered"),
        ]

    async def test_unsubscribe_event_and_user_text(
        self, rbm_api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(rbm_api.db, account.id, "+33611111111")
        body, headers = push(
            {
                "senderPhoneNumber": "+33611111111",
                "eventType": "UNSUBSCRIBE",
                "eventId": "e1",
                "sendTime": "2026-11-27T06:00:01Z",
            }
        )
        assert (
            await rbm_api.client.post("/webhooks/rbm", content=body, headers=headers)
        ).status_code == 200
        assert await opt_outs(rbm_api.db, contact) == ["rcs"]
        body, headers = push(
            {
                "senderPhoneNumber": "+33611111111",
                "messageId": "m1",
                "text": "start",
                "sendTime": "2026-11-27T06:00:02Z",
            }
        )
        assert (
            await rbm_api.client.post("/webhooks/rbm", content=body, headers=headers)
        ).status_code == 200
        assert await opt_outs(rbm_api.db, contact) == []
        body, headers = push(
            {
                "senderPhoneNumber": "+33611111111",
                "messageId": "m2",
                "text": "QUIT",
                "sendTime": "2026-11-27T06:00:03Z",
            }
        )
        assert (
            await rbm_api.client.post("/webhooks/rbm", content=body, headers=headers)
        ).status_code == 200
        assert await opt_outs(rbm_api.db, contact) == ["rcs"]

    async def test_bad_signature_changes_nothing(
        self, rbm_api: Api, account: AccountClient
    ) -> None:
        contact = await add_contact(rbm_api.db, account.id, "+33611111111")
        for event in (
            {"senderPhoneNumber": "+33611111111", "eventType": "UNSUBSCRIBE", "eventId": "e"},
            {"senderPhoneNumber": "+33611111111", "eventType": "DELIVERED", "messageId": "x"},
        ):
            body, headers = push(event, token="wrong-token")
            response = await rbm_api.client.post("/webhooks/rbm", content=body, headers=headers)
            assert response.status_code == 401
            body, _ = push(event)
            response = await rbm_api.client.post("/webhooks/rbm", content=body)
            assert response.status_code == 401
        response = await rbm_api.client.post(
            "/webhooks/rbm", json={"message": {"data": "***"}}, headers={"X-Goog-Signature": "x"}
        )
        assert response.status_code == 401
        assert await opt_outs(rbm_api.db, contact) == []
        async with rbm_api.db.session(write=False) as session:
            assert (await session.execute(select(ReceiptEvent))).first() is None
