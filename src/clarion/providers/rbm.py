"""Google RCS Business Messaging: service-account OAuth2 tokens (google-auth), capability
checks, text and rich-card agent messages (our message id as RBM `messageId`, so a resent
message is sent once), and the events webhook (X-Goog-Signature, client-token handshake)."""

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
from google.auth import exceptions, transport
from google.oauth2 import service_account

from clarion.config import Settings
from clarion.providers.base import (
    Capabilities,
    InboundMessage,
    OutboundMessage,
    Outcome,
    Receipt,
    SubmitResult,
)
from clarion.providers.http import TRANSPORT_ERRORS, PooledHttpProvider, retry_after

log = logging.getLogger("clarion.rbm")

SCOPES = ["https://www.googleapis.com/auth/rcsbusinessmessaging"]
RECEIPT_EVENTS = {"DELIVERED": "delivered", "READ": "read"}


# -- OAuth2 ----------------------------------------------------------------------------------
class _UrllibResponse(transport.Response):
    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self._status, self._headers, self._data = status, dict(headers), data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class _UrllibRequest(transport.Request):
    """google-auth's transport interface over the standard library (the token exchange is one
    small request an hour; it runs in a thread so the event loop never blocks on it)."""

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or 30) as response:
                return _UrllibResponse(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return _UrllibResponse(exc.code, dict(exc.headers or {}), exc.read())
        except OSError as exc:
            raise exceptions.TransportError(str(exc)) from exc


class TokenSource:
    """Access tokens of the service account, refreshed before they expire."""

    def __init__(self, service_account_file: str) -> None:
        self.credentials = service_account.Credentials.from_service_account_file(
            service_account_file, scopes=SCOPES
        )
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def token(self, force: bool = False) -> str:
        async with self._lock:
            if force or not self.credentials.valid:
                await asyncio.to_thread(self.credentials.refresh, _UrllibRequest())
                self.refreshes += 1
            return str(self.credentials.token)


# -- messages --------------------------------------------------------------------------------
def _suggestion(item: Any) -> dict[str, Any]:
    """Suggestions are RBM objects already ({"reply": ...}, {"action": ...}) or plain texts,
    which become suggested replies."""
    if isinstance(item, dict):
        return item
    text = str(item)[:25]
    return {"reply": {"text": text, "postbackData": text}}


def _rich_card(card: dict[str, Any], suggestions: list[dict[str, Any]]) -> dict[str, Any]:
    if "standaloneCard" in card or "carouselCard" in card:
        return card
    content: dict[str, Any] = {}
    for key in ("title", "description"):
        if card.get(key):
            content[key] = card[key]
    media_url = card.get("mediaUrl") or card.get("imageUrl") or card.get("fileUrl")
    if media_url:
        content["media"] = {
            "height": str(card.get("height", "MEDIUM")).upper(),
            "contentInfo": {"fileUrl": media_url, "forceRefresh": False},
        }
    if suggestions:
        content["suggestions"] = suggestions
    return {
        "standaloneCard": {
            "cardOrientation": str(card.get("orientation", "VERTICAL")).upper(),
            "cardContent": content,
        }
    }


def agent_message(message: OutboundMessage) -> dict[str, Any]:
    suggestions = [_suggestion(s) for s in message.suggestions or []]
    content: dict[str, Any]
    if message.rich_card:
        content = {"richCard": _rich_card(message.rich_card, suggestions)}
    else:
        content = {"text": message.text or ""}
        if suggestions:
            content["suggestions"] = suggestions
    return {"contentMessage": content}


def rbm_message_id(message_id: int) -> str:
    """Our message id, as is: a resend of the same message carries the same RBM messageId."""
    return str(message_id)


class RbmProvider(PooledHttpProvider):
    name = "rbm"
    channel = "rcs"

    def __init__(self, settings: Settings, *, concurrency: int | None = None) -> None:
        self.settings = settings
        self.capabilities = Capabilities(
            idempotent_submit=True, rcs_capability_check=True, max_batch=500
        )
        self.base = settings.rbm_api_url.rstrip("/")
        assert settings.rbm_service_account_file
        self.tokens = TokenSource(settings.rbm_service_account_file)
        super().__init__(concurrency or settings.worker_concurrency)

    def _phone_url(self, phone: str, tail: str) -> str:
        return f"{self.base}/v1/phones/{quote(phone, safe='+')}/{tail}"

    async def _call(self, method: str, url: str, body: Any = None) -> tuple[int, Any, float | None]:
        """One authorized call; a 401 refreshes the token once and tries again."""
        for attempt in (0, 1):
            token = await self.tokens.token(force=attempt == 1)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            data = orjson.dumps(body) if body is not None else None
            async with self.session.request(method, url, data=data, headers=headers) as response:
                raw = await response.read()
                status = response.status
                after = retry_after(response.headers.get("Retry-After"))
            if status != 401:
                break
        try:
            parsed = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            parsed = {}
        return status, parsed, after

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        """200: the phone takes RCS from this agent; 404: it does not. Anything else (errors,
        timeouts) is answered True: the send itself then says 404 if it cannot."""

        async def one(phone: str) -> tuple[str, bool]:
            url = self._phone_url(phone, "capabilities")
            query = f"?requestId={uuid.uuid4()}&agentId={self.settings.rbm_agent_id}"
            async with self._limit:
                try:
                    status, _, _ = await self._call("GET", url + query)
                except TRANSPORT_ERRORS:
                    return phone, True
            return phone, status != 404

        return dict(await asyncio.gather(*(one(p) for p in phones)))

    async def _send(self, message: OutboundMessage) -> SubmitResult:
        ours = rbm_message_id(message.id)
        url = self._phone_url(message.to, "agentMessages")
        query = f"?messageId={ours}&agentId={self.settings.rbm_agent_id}"
        status, body, after = await self._call("POST", url + query, agent_message(message))
        error = body.get("error") if isinstance(body, dict) else None
        text = error.get("message") if isinstance(error, dict) else None
        if status == 200 or status == 409:
            # 409: a message with this messageId exists already: a resend after a crash.
            return SubmitResult(message.id, Outcome.ACCEPTED, ours)
        if status == 404:
            return SubmitResult(
                message.id, Outcome.NO_CAPABILITY, error_code="404", error_message=text
            )
        if status == 429:
            return SubmitResult(
                message.id,
                Outcome.THROTTLED,
                error_code="429",
                error_message=text,
                retry_after=after,
            )
        if status >= 500 or status == 401:
            return SubmitResult(
                message.id,
                Outcome.RETRY,
                error_code=str(status),
                error_message=text,
                retry_after=after,
            )
        return SubmitResult(message.id, Outcome.REFUSED, error_code=str(status), error_message=text)


# -- webhook ---------------------------------------------------------------------------------
def valid_signature(client_token: str, decoded_data: bytes, header: str | None) -> bool:
    """X-Goog-Signature = base64(HMAC-SHA512(client token, the base64-decoded message.data))."""
    if not header:
        return False
    expected = base64.b64encode(
        hmac.new(client_token.encode(), decoded_data, hashlib.sha512).digest()
    ).decode()
    return hmac.compare_digest(expected, header.strip())


def decode_data(payload: Any) -> bytes | None:
    """The base64 `message.data` of a Pub/Sub push body, decoded (None if absent/invalid)."""
    message = payload.get("message") if isinstance(payload, dict) else None
    data = message.get("data") if isinstance(message, dict) else None
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class RbmUnsubscribe(InboundMessage):
    """Marker for an RBM UNSUBSCRIBE event: an opt-out of rcs whatever the keyword list."""


class RbmSubscribe(InboundMessage):
    """Marker for an RBM SUBSCRIBE event: the user opted back in to rcs."""


def parse_event(event: Any) -> Receipt | InboundMessage | None:
    """One decoded RBM event: DELIVERED/READ receipts, UNSUBSCRIBE/SUBSCRIBE, user text."""
    if not isinstance(event, dict):
        return None
    sender = str(event.get("senderPhoneNumber") or "")
    raw = orjson.dumps(event).decode()
    when = _when(event.get("sendTime"))
    kind = event.get("eventType")
    if kind in RECEIPT_EVENTS and event.get("messageId"):
        return Receipt(
            provider="rbm",
            provider_message_id=str(event["messageId"]),
            status=RECEIPT_EVENTS[kind],
            occurred_at=when,
            raw=raw,
        )
    if kind in ("UNSUBSCRIBE", "SUBSCRIBE") and sender:
        cls = RbmUnsubscribe if kind == "UNSUBSCRIBE" else RbmSubscribe
        return cls(
            provider="rbm", channel="rcs", from_phone=sender, text=kind, raw=raw, received_at=when
        )
    text = event.get("text")
    if text is None and isinstance(event.get("suggestionResponse"), dict):
        text = event["suggestionResponse"].get("text")
    if isinstance(text, str) and sender:
        return InboundMessage(
            provider="rbm",
            channel="rcs",
            from_phone=sender,
            text=text,
            raw=raw,
            received_at=when,
            provider_message_id=str(event["messageId"]) if event.get("messageId") else None,
        )
    return None
