"""Provider webhooks: /webhooks/whatsapp, /webhooks/twilio, /webhooks/rbm.

No API key: each request is authenticated by its provider's signature, checked on the raw
request before anything is read or written (a bad signature is 401, 403 for Meta's verify
handshake, and changes nothing). Receipts are stored and applied in the request's
transaction, so the provider gets a 2xx only once they are durable (else it redelivers).
"""

import hmac
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.config import Settings
from clarion.db.deps import SessionDep
from clarion.delivery.inbound import handle_inbound
from clarion.delivery.service import ingest_receipts
from clarion.errors import ClarionError, Forbidden, Unauthorized
from clarion.providers import rbm, twilio, whatsapp_cloud
from clarion.providers.base import InboundMessage, Receipt
from clarion.templates import service as templates_service

router = APIRouter(prefix="/webhooks", tags=["provider webhooks"])


class BadPayload(ClarionError):
    status = 400
    title = "Bad payload"


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _apply(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    items: Sequence[Receipt | InboundMessage | None],
) -> dict[str, int]:
    receipts = [x for x in items if isinstance(x, Receipt)]
    inbound = [x for x in items if isinstance(x, InboundMessage)]
    result = await ingest_receipts(session, receipts)
    # A receipt that beat the dispatcher's commit of its submit result parks; the engine's
    # scheduler applies it on its next round (delivery.service.sweep_parked).
    counts = await handle_inbound(session, inbound) if inbound else {}
    return {
        "receipts": len(receipts),
        "applied": result.applied,
        "parked": result.parked,
        "inbound": len(inbound),
        **counts,
    }


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadPayload("The body is not JSON.") from None


# -- WhatsApp (Meta) -------------------------------------------------------------------------
@router.get("/whatsapp", response_class=Response)
async def whatsapp_verify(
    request: Request,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    """Meta's subscription handshake: echo `hub.challenge` when `hub.verify_token` is
    CLARION_WHATSAPP_VERIFY_TOKEN and `hub.mode` is `subscribe`; otherwise 403."""
    expected = _settings(request).whatsapp_verify_token
    if (
        mode != "subscribe"
        or not expected
        or token is None
        or not hmac.compare_digest(token.encode(), expected.encode())
    ):
        raise Forbidden("The verify token does not match.")
    return Response(challenge or "", media_type="text/plain")


@router.post("/whatsapp")
async def whatsapp_events(request: Request, session: SessionDep) -> dict[str, int]:
    """Statuses (sent/delivered/read/failed) become receipts, inbound texts go to STOP/START
    handling, `message_template_status_update` sets the status of the templates with that
    name and language. Signed with `X-Hub-Signature-256` (HMAC-SHA256 with the app secret)."""
    settings = _settings(request)
    body = await request.body()
    secret = settings.whatsapp_app_secret
    if not secret or not whatsapp_cloud.valid_signature(
        secret, body, request.headers.get("x-hub-signature-256")
    ):
        raise Unauthorized("The X-Hub-Signature-256 signature does not match.")
    receipts, inbound, templates = whatsapp_cloud.parse_webhook(_json(body))
    counts = await _apply(request, session, settings, [*receipts, *inbound])
    counts["templates"] = await templates_service.apply_provider_statuses(session, templates)
    return counts


# -- Twilio ----------------------------------------------------------------------------------
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@router.post("/twilio", response_class=Response)
async def twilio_events(request: Request, session: SessionDep) -> Response:
    """Status callbacks (MessageStatus, ErrorCode) and inbound SMS (Body, From). Signed with
    `X-Twilio-Signature` over CLARION_PUBLIC_URL + this path (+ query) and the sorted form
    parameters. Answers empty TwiML (no auto-reply)."""
    settings = _settings(request)
    token = settings.twilio_auth_token
    form = await request.form()
    params = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    # The URL Twilio was given (StatusCallback): CLARION_PUBLIC_URL + /webhooks/twilio, as a
    # proxy in front may have rewritten the path and host this request arrived with.
    url = settings.public_url.rstrip("/") + twilio.WEBHOOK_PATH
    if request.url.query:
        url += "?" + request.url.query
    if not token or not twilio.valid_signature(
        token, url, params, request.headers.get("x-twilio-signature")
    ):
        raise Unauthorized("The X-Twilio-Signature signature does not match.")
    await _apply(request, session, settings, [twilio.parse_callback(dict(params))])
    return Response(TWIML_EMPTY, media_type="text/xml")


# -- Google RBM ------------------------------------------------------------------------------
@router.post("/rbm")
async def rbm_events(request: Request, session: SessionDep) -> dict[str, Any]:
    """Two shapes: the client-token handshake `{"clientToken", "secret"}` (answered with the
    secret when the token is CLARION_RBM_CLIENT_TOKEN), and Pub/Sub push events whose
    `message.data` (base64 JSON) is signed by `X-Goog-Signature` = base64(HMAC-SHA512 of the
    decoded data with the client token). DELIVERED/READ become receipts, UNSUBSCRIBE opts the
    phone out of rcs (SUBSCRIBE back in), user texts go to STOP/START handling."""
    settings = _settings(request)
    expected = settings.rbm_client_token
    payload = _json(await request.body())
    if not expected:
        raise Unauthorized("RBM is not configured (CLARION_RBM_CLIENT_TOKEN).")
    if isinstance(payload, dict) and "clientToken" in payload and "secret" in payload:
        if not hmac.compare_digest(str(payload["clientToken"]).encode(), expected.encode()):
            raise Unauthorized("The client token does not match.")
        return {"secret": payload["secret"]}
    data = rbm.decode_data(payload)
    if data is None or not rbm.valid_signature(
        expected, data, request.headers.get("x-goog-signature")
    ):
        raise Unauthorized("The X-Goog-Signature signature does not match.")
    event = _json(data)
    return await _apply(request, session, settings, [rbm.parse_event(event)])
