"""WhatsApp Business Cloud API (Meta Graph API): template messages, webhook parsing, template
sync. Every URL derives from CLARION_WHATSAPP_API_URL (a pinned Graph API version by default)
so tests and staging point at a local peer."""

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson

from clarion.config import Settings
from clarion.providers.base import (
    Capabilities,
    InboundMessage,
    OutboundMessage,
    Outcome,
    Receipt,
    SubmitResult,
)
from clarion.providers.http import PooledHttpProvider, new_session, retry_after

log = logging.getLogger("clarion.whatsapp")

THROTTLE_CODES = {130429, 4, 80007, 131048}  # cloud API / app / WABA rate limits, spam limit
PAIR_RATE_LIMIT = 131056  # too many messages to this one recipient: retry it later
PAIR_RETRY_SECONDS = 60.0
PERMANENT_CODES = {
    131026,
    131047,
    131049,
    131050,
    131051,
    131052,
    131053,
    470,
    100,
    131009,
    131008,
    131021,
    131030,
    131031,
    131042,
    133010,
    368,
}
TRANSIENT_CODES = {1, 2, 131000, 131016, 133004}

# Meta's template events -> our template statuses (approved, pending, rejected, paused).
TEMPLATE_STATUS = {
    "APPROVED": "approved",
    "REINSTATED": "approved",
    "UNPAUSED": "approved",
    "PENDING": "pending",
    "IN_APPEAL": "pending",
    "REJECTED": "rejected",
    "DISABLED": "rejected",
    "DELETED": "rejected",
    "PENDING_DELETION": "rejected",
    "ARCHIVED": "rejected",
    "LIMIT_EXCEEDED": "rejected",
    "PAUSED": "paused",
}
RECEIPT_STATUS = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}


def classify_error(http_status: int, body: Any) -> tuple[Outcome, str | None, str | None]:
    """(outcome, error code, error message) for a Graph API error answer."""
    error = body.get("error") if isinstance(body, dict) else None
    code: int | None = None
    message = None
    if isinstance(error, dict):
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        details = (error.get("error_data") or {}).get("details")
        message = str(error.get("message") or "") + (f" ({details})" if details else "")
    code_text = str(code) if code is not None else f"http-{http_status}"
    if http_status == 429 or code in THROTTLE_CODES:
        return Outcome.THROTTLED, code_text, message
    if code == PAIR_RATE_LIMIT:
        return Outcome.RETRY, code_text, message
    if code in PERMANENT_CODES or (code is not None and 132000 <= code < 133000):
        return Outcome.REFUSED, code_text, message
    if http_status >= 500 or code in TRANSIENT_CODES:
        return Outcome.RETRY, code_text, message
    return Outcome.REFUSED, code_text, message or f"HTTP {http_status}"


def template_payload(message: OutboundMessage) -> dict[str, Any]:
    assert message.template is not None
    template: dict[str, Any] = {
        "name": message.template.name,
        # "deterministic": the language asked for, never a fallback Meta would pick instead.
        "language": {"policy": "deterministic", "code": message.template.language},
    }
    if message.template.parameters:
        template["components"] = [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": v} for v in message.template.parameters],
            }
        ]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to.lstrip("+"),
        "type": "template",
        "template": template,
    }


def text_payload(message: OutboundMessage) -> dict[str, Any]:
    """Free text: only inside the 24 h customer-service window (tests, replies)."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to.lstrip("+"),
        "type": "text",
        "text": {"body": message.text or ""},
    }


class WhatsAppCloudProvider(PooledHttpProvider):
    name = "cloud"
    channel = "whatsapp"

    def __init__(self, settings: Settings, *, concurrency: int | None = None) -> None:
        self.settings = settings
        self.capabilities = Capabilities(max_batch=500)
        self.url = (
            f"{settings.whatsapp_api_url.rstrip('/')}/{settings.whatsapp_phone_number_id}/messages"
        )
        self._headers = {
            "Authorization": f"Bearer {settings.whatsapp_token}",
            "Content-Type": "application/json",
        }
        super().__init__(concurrency or settings.worker_concurrency)

    async def _send(self, message: OutboundMessage) -> SubmitResult:
        payload = template_payload(message) if message.template else text_payload(message)
        async with self.session.post(
            self.url, data=orjson.dumps(payload), headers=self._headers
        ) as response:
            raw = await response.read()
            status = response.status
            after = retry_after(response.headers.get("Retry-After"))
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = {}
        if status == 200 and isinstance(body, dict) and body.get("messages"):
            return SubmitResult(message.id, Outcome.ACCEPTED, str(body["messages"][0]["id"]))
        outcome, code, text = classify_error(status, body)
        if code == str(PAIR_RATE_LIMIT) and after is None:
            after = PAIR_RETRY_SECONDS
        return SubmitResult(
            message.id, outcome, error_code=code, error_message=text, retry_after=after
        )


# -- webhooks --------------------------------------------------------------------------------
def valid_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed by the app
    secret>`, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def _when(timestamp: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(timestamp), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def parse_webhook(
    payload: Any,
) -> tuple[list[Receipt], list[InboundMessage], list[dict[str, str]]]:
    """(receipts, inbound text messages, template status changes {name, language, status,
    event}) from a webhook body. Unknown shapes are skipped, never an error."""
    receipts: list[Receipt] = []
    inbound: list[InboundMessage] = []
    templates: list[dict[str, str]] = []
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                continue
            value = change["value"]
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            if change.get("field") == "message_template_status_update":
                event = str(value.get("event", "")).upper()
                if event in TEMPLATE_STATUS and value.get("message_template_name"):
                    templates.append(
                        {
                            "name": str(value["message_template_name"]),
                            "language": str(value.get("message_template_language", "")),
                            "status": TEMPLATE_STATUS[event],
                            "event": event,
                        }
                    )
                continue
            for status in value.get("statuses") or []:
                if not isinstance(status, dict) or status.get("status") not in RECEIPT_STATUS:
                    continue
                errors = status.get("errors") or []
                first = errors[0] if errors and isinstance(errors[0], dict) else {}
                receipts.append(
                    Receipt(
                        provider="cloud",
                        provider_message_id=str(status.get("id", "")),
                        status=RECEIPT_STATUS[status["status"]],
                        error_code=str(first["code"]) if "code" in first else None,
                        error_message=(
                            first.get("message") or first.get("title") if first else None
                        ),
                        occurred_at=_when(status.get("timestamp")),
                        raw=orjson.dumps(status).decode(),
                        # Meta bills per delivered message: one that fails is not billed.
                        refund=status["status"] == "failed",
                    )
                )
            for message in value.get("messages") or []:
                if not isinstance(message, dict) or not message.get("from"):
                    continue
                text = None
                if message.get("type") == "text":
                    text = (message.get("text") or {}).get("body")
                elif message.get("type") == "button":
                    text = (message.get("button") or {}).get("text")
                if text is None:
                    continue
                inbound.append(
                    InboundMessage(
                        provider="cloud",
                        channel="whatsapp",
                        from_phone="+" + str(message["from"]).lstrip("+"),
                        text=str(text),
                        raw=orjson.dumps(message).decode(),
                        received_at=_when(message.get("timestamp")),
                        provider_message_id=str(message["id"]) if message.get("id") else None,
                        to=str(metadata["display_phone_number"])
                        if metadata.get("display_phone_number")
                        else None,
                    )
                )
    return [r for r in receipts if r.provider_message_id], inbound, templates


# -- template sync ---------------------------------------------------------------------------
async def fetch_templates(settings: Settings, account_id: str) -> AsyncIterator[dict[str, Any]]:
    """Every message template of the WhatsApp Business Account, following `paging.next`."""
    url: str | None = (
        f"{settings.whatsapp_api_url.rstrip('/')}/{account_id}/message_templates"
        "?fields=name,language,category,status,components&limit=100"
    )
    headers = {"Authorization": f"Bearer {settings.whatsapp_token}"}
    async with new_session(connections=4) as session:
        pages = 0
        while url and pages < 1000:
            pages += 1
            async with session.get(url, headers=headers) as response:
                body = await response.json(content_type=None)
                if response.status != 200:
                    _, code, text = classify_error(response.status, body)
                    raise RuntimeError(
                        f"listing templates failed: HTTP {response.status} {code} {text}"
                    )
            for item in body.get("data") or []:
                yield item
            url = (body.get("paging") or {}).get("next")


def template_body(item: dict[str, Any]) -> str:
    for component in item.get("components") or []:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY":
            return str(component.get("text") or "")
    return ""
