"""Provider webhooks of the delivery domain: the simulator's receipts and inbound messages."""

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from clarion.config import Settings
from clarion.db.session import Database
from clarion.delivery.schemas import SimulatorWebhookIn, WebhookAck
from clarion.delivery.service import ingest_in_transaction
from clarion.errors import Unauthorized
from clarion.providers.base import InboundMessage, Receipt

router = APIRouter(tags=["webhooks"])


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` inlined (the body is validated by hand,
    after the signature check, so FastAPI does not register the model's components)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


SIGNATURE_HEADER = "X-Simulator-Signature"
PROVIDER = "simulator"


def sign(secret: str, body: bytes) -> str:
    """The simulator's signature of a webhook body: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _signed(secret: str, body: bytes) -> bytes:
    return sign(secret, body).encode()


class BadSignature(Unauthorized):
    default_headers = {
        "WWW-Authenticate": 'Signature realm="simulator", header="X-Simulator-Signature"'
    }


def _verify(settings: Settings, body: bytes, signature: str | None) -> None:
    secret = settings.simulator_secret
    if not secret:
        # `clarion serve` and `clarion worker` refuse to start so; an app built otherwise
        # still never takes an unsigned receipt.
        raise BadSignature("No CLARION_SIMULATOR_SECRET is set: simulator receipts are refused.")
    if not signature or not hmac.compare_digest(_signed(secret, body), signature.encode()):
        raise BadSignature("Missing or bad simulator signature.")


@router.post(
    "/webhooks/simulator",
    response_model=WebhookAck,
    responses={
        400: {"description": "The body is not JSON"},
        401: {"description": "Missing or bad `X-Simulator-Signature`"},
        422: {"description": "A receipt or inbound item is malformed (nothing is applied)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline_schema(SimulatorWebhookIn)}},
        }
    },
)
async def simulator_webhook(request: Request) -> WebhookAck:
    """Receipts and inbound messages from `clarion simulator`, in batches.

    This route exists only when an external simulator is configured
    (`CLARION_SIMULATOR_URL`); the in-process simulator needs no webhook. The body must
    carry `X-Simulator-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the secret
    `CLARION_SIMULATOR_SECRET` shared with `clarion simulator` (both refuse to start without
    it); a missing or bad signature is 401 and changes nothing. Receipts only ever match
    messages sent through the simulator provider.

    Receipts are stored, then applied monotonically: duplicates and late receipts change
    nothing, and a receipt for a message whose submit is not recorded yet is parked and
    applied when it is (see `parked` in the answer).
    """
    body = await request.body()
    _verify(request.app.state.settings, body, request.headers.get(SIGNATURE_HEADER))
    try:
        payload = SimulatorWebhookIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    receipts = [
        Receipt(
            PROVIDER,
            item.provider_message_id,
            item.status,
            item.error_code,
            item.error_message,
            item.timestamp,
        )
        for item in payload.receipts
    ]
    inbound = [
        InboundMessage(
            PROVIDER,
            item.channel,
            item.from_,
            item.text,
            None,
            item.timestamp,
            provider_message_id=item.id,
            to=item.to,
        )
        for item in payload.inbound
    ]
    db: Database = request.app.state.db
    # The transaction opens only once the body is read and verified: on SQLite a write
    # transaction holds the single writer lock, so it must not wait on the network.
    result = await ingest_in_transaction(db, receipts, inbound)
    return WebhookAck(
        received=result.received,
        applied=result.applied,
        unchanged=result.unchanged,
        parked=result.parked,
        inbound=len(inbound),
    )
