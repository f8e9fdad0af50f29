"""Twilio Programmable Messaging (SMS): form-encoded Messages.json, status callbacks verified
with X-Twilio-Signature, inbound SMS for STOP/START."""

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, urlencode

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
from clarion.providers.http import PooledHttpProvider, retry_after

THROTTLE_CODES = {20429, 14107}  # too many requests; SMS send rate limit exceeded
TRANSIENT_CODES = {20500, 20503, 30001}  # internal error, service unavailable, queue overflow
# Callback MessageStatus -> our statuses (queued/accepted/sending mean "not final yet"). The
# values are Twilio's `message_enum_status` (twilio-oai, api_v2010). `canceled`: a message
# cancelled before it was sent; `partially_delivered`: only some of its parts arrived.
RECEIPT_STATUS = {
    "accepted": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
    "partially_delivered": "failed",
}
# The error code of a failed status that came without an ErrorCode.
STATUS_CODE = {"canceled": "canceled", "partially_delivered": "partially_delivered"}
# Twilio does not bill a message cancelled before it was sent: its price is refunded.
NOT_BILLED = {"canceled"}
WEBHOOK_PATH = "/webhooks/twilio"


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(auth token, url + each param name and
    value, names sorted, a repeated name's values sorted))."""
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    data = url + "".join(
        key + value for key in sorted(grouped) for value in sorted(set(grouped[key]))
    )
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], header: str | None
) -> bool:
    if not header:
        return False
    return hmac.compare_digest(compute_signature(auth_token, url, params), header.strip())


def classify_error(http_status: int, body: Any) -> tuple[Outcome, str, str | None]:
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    code_text = str(code) if code is not None else f"http-{http_status}"
    if http_status == 429 or code in THROTTLE_CODES:
        return Outcome.THROTTLED, code_text, message
    if http_status >= 500 or code in TRANSIENT_CODES:
        return Outcome.RETRY, code_text, message
    return Outcome.REFUSED, code_text, message or f"HTTP {http_status}"


class TwilioProvider(PooledHttpProvider):
    name = "twilio"
    channel = "sms"

    def __init__(self, settings: Settings, *, concurrency: int | None = None) -> None:
        self.settings = settings
        self.capabilities = Capabilities(max_batch=500)
        sid = settings.twilio_account_sid
        self.url = f"{settings.twilio_api_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        token = f"{sid}:{settings.twilio_auth_token}".encode()
        self._headers = {
            "Authorization": "Basic " + base64.b64encode(token).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self._callback = settings.public_url.rstrip("/") + WEBHOOK_PATH
        super().__init__(concurrency or settings.worker_concurrency)
        self._constant: str | None = None

    def form(self, message: OutboundMessage) -> dict[str, str]:
        s = self.settings
        form = {"To": message.to, "Body": message.text or "", "StatusCallback": self._callback}
        if s.twilio_messaging_service_sid:
            form["MessagingServiceSid"] = s.twilio_messaging_service_sid
            if message.sender:
                # CreateMessage takes `From` together with `MessagingServiceSid`: the service
                # still applies (its callbacks, its number checks), from the campaign's sender.
                form["From"] = message.sender
        else:
            # The campaign's sender (an alphanumeric sender ID or one of the account's numbers)
            # wins over the configured default.
            form["From"] = message.sender or s.twilio_from or ""
        return form

    def encode_form(self, message: OutboundMessage) -> bytes:
        """`form(message)` url-encoded. The parameters that are the same for every message
        are encoded once: at thousands of messages a second, urlencode is a tenth of the
        client's work."""
        s = self.settings
        if message.sender or not (s.twilio_messaging_service_sid or s.twilio_from):
            return urlencode(self.form(message)).encode()  # From varies with the sender
        if self._constant is None:
            constant = {k: v for k, v in self.form(message).items() if k not in ("To", "Body")}
            self._constant = urlencode(constant)
        to, body = quote_plus(message.to), quote_plus(message.text or "")
        return f"To={to}&Body={body}&{self._constant}".encode()

    async def _send(self, message: OutboundMessage) -> SubmitResult:
        form_body = self.encode_form(message)
        async with self.session.post(self.url, data=form_body, headers=self._headers) as response:
            raw = await response.read()
            status = response.status
            after = retry_after(response.headers.get("Retry-After"))
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = {}
        if status in (200, 201) and isinstance(body, dict) and body.get("sid"):
            if body.get("status") == "failed":
                return SubmitResult(
                    message.id,
                    Outcome.REFUSED,
                    str(body["sid"]),
                    error_code=str(body.get("error_code") or ""),
                    error_message=body.get("error_message"),
                )
            return SubmitResult(message.id, Outcome.ACCEPTED, str(body["sid"]))
        outcome, code, text = classify_error(status, body)
        return SubmitResult(
            message.id, outcome, error_code=code, error_message=text, retry_after=after
        )


def parse_callback(form: dict[str, str]) -> Receipt | InboundMessage | None:
    """A status callback (MessageStatus) or an inbound SMS (Body + From, SmsStatus received)."""
    status = form.get("MessageStatus") or form.get("SmsStatus")
    raw = orjson.dumps(form).decode()
    if status and status != "received" and form.get("MessageSid") and status in RECEIPT_STATUS:
        ours = RECEIPT_STATUS[status]
        code = form.get("ErrorCode") or STATUS_CODE.get(status)
        return Receipt(
            provider="twilio",
            provider_message_id=form["MessageSid"],
            status=ours,
            error_code=code if ours == "failed" else None,
            error_message=(form.get("ErrorMessage") or status) if ours == "failed" else None,
            occurred_at=datetime.now(UTC),
            raw=raw,
            refund=status in NOT_BILLED,
        )
    if "Body" in form and form.get("From"):
        sender = form["From"].strip()
        return InboundMessage(
            provider="twilio",
            channel="sms",
            from_phone=sender if sender.startswith("+") else f"+{sender}",
            text=form["Body"],
            raw=raw,
            received_at=datetime.now(UTC),
            provider_message_id=form.get("MessageSid") or form.get("SmsSid") or None,
            to=form.get("To") or None,
        )
    return None
