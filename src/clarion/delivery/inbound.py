"""Inbound messages: opt-out, opt-in and help keywords, and the replies they get.

A keyword is the whole message, compared trimmed, case- and accent-insensitively ("ARRÊT"
is ARRET) with trailing punctuation ignored ("stop!"): "stop please" is not a keyword. Each
account's compliance settings name its keywords and replies.

- The opt-out (opt-in) applies to the channel the message came in on, for every contact
  with that phone in every account whose keywords it matches (each account that can reach
  the phone must honour it), written to the contacts' history with source `inbound` and the
  provider as actor. RBM's UNSUBSCRIBE/SUBSCRIBE events do the same without a reply.
- The reply goes from the account that last messaged the phone (it pays for it, at the
  channel's rate, when it is sent): on the same channel, from the sender the message was
  sent to (else that account's last sender), as a message of no campaign. None when no
  account messaged the phone, when its reply for the keyword is null, when the channel has
  no rate for the phone's country or when the account cannot pay for it.
- A provider that retries a webhook sends the same message again: its id makes it one
  message (`inbound_event`), handled and answered once.
- An SMPP MO has no id, and an SMSC delivers it again when it did not get the
  deliver_sm_resp (the connection dropped, the resp came too late, a rebind). Its identity
  is a fingerprint (source, destination, data coding, payload with its concatenation
  reference and part numbers: `providers.smpp.provider.mo_fingerprint`): a message whose
  fingerprint is that of the phone's latest message received less than
  `REDELIVERY_WINDOW` before it is a redelivery, handled and answered once. The same text
  after another message from the phone (STOP, START, STOP) or after the window (STOP again
  the next day) is a new message. Copies racing each other in two workers share a key
  (see `repository.record_inbound`) and the unique key keeps one.
"""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.history import Cause
from clarion.audience.optouts import opt_in, opt_out
from clarion.campaigns import wakeups
from clarion.compliance.service import settings_for
from clarion.compliance.settings import ComplianceSettings
from clarion.db.base import utcnow
from clarion.delivery import repository
from clarion.messages import transitions
from clarion.pricing.rates import load_rate_card
from clarion.pricing.replies import price_reply
from clarion.providers.base import InboundMessage
from clarion.providers.rbm import RbmSubscribe, RbmUnsubscribe

STOPPED_MARKETING = "131050"  # WhatsApp: the user stopped marketing messages

# How long after an SMPP MO its redelivery is still recognised. An SMSC redelivers when its
# resp timer (typically 30-60 s) runs out or on the next bind, and retries on a schedule of
# minutes; 15 minutes covers a few rounds of that and a worker's restart. Longer would make
# a person's repeated STOP (after an operator re-subscribed them through the API, say) go
# unheard for longer; an SMSC that redelivers later still gets one extra answer, not a lost
# opt-out.
REDELIVERY_WINDOW = timedelta(minutes=15)


def normalize(text: str) -> str:
    """The form keywords are compared in: accents and other combining marks dropped (NFKD),
    case folded, inner whitespace collapsed, trailing punctuation and spaces trimmed."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = " ".join(bare.casefold().split())
    end = len(words)
    while end and (unicodedata.category(words[end - 1]).startswith("P") or words[end - 1] == " "):
        end -= 1
    return words[:end]


def action_of(item: InboundMessage, settings: ComplianceSettings) -> str | None:
    """'out', 'in', 'help' or None (not a keyword of these settings)."""
    if isinstance(item, RbmUnsubscribe):
        return "out"
    if isinstance(item, RbmSubscribe):
        return "in"
    word = normalize(item.text or "")
    if not word:
        return None
    for action, keywords in (
        ("out", settings.opt_out_keywords),
        ("in", settings.opt_in_keywords),
        ("help", settings.help_keywords),
    ):
        if word in {normalize(k) for k in keywords}:
            return action
    return None


def reply_for(action: str | None, settings: ComplianceSettings) -> str | None:
    replies = {
        "out": settings.opt_out_reply,
        "in": settings.opt_in_reply,
        "help": settings.help_reply,
    }
    return replies.get(action or "")


@dataclass
class _Counts:
    opted_out: int = 0
    opted_in: int = 0
    replies: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "optedOut": self.opted_out,
            "optedIn": self.opted_in,
            "replies": self.replies,
            "duplicates": self.duplicates,
        }


async def handle_inbound(session: AsyncSession, items: Sequence[InboundMessage]) -> dict[str, int]:
    """Apply the keywords among `items` in order (STOP then START ends opted in) and queue
    their replies. Returns counts: {"optedOut", "optedIn", "replies", "duplicates"}."""
    counts = _Counts()
    settings: dict[int, ComplianceSettings] = {}

    async def of(account_id: int) -> ComplianceSettings:
        if account_id not in settings:
            settings[account_id] = await settings_for(session, account_id)
        return settings[account_id]

    for item in items:
        if not item.from_phone:
            continue
        event_id = await repository.record_inbound(session, item, REDELIVERY_WINDOW)
        if event_id is None:
            counts.duplicates += 1
            continue
        cause = Cause.provider(item.provider, inbound=True)
        detail = (item.text or "")[:500]
        for account_id, contact_ids in sorted(
            (await repository.contacts_by_account_with_phone(session, item.from_phone)).items()
        ):
            action = action_of(item, await of(account_id))
            if action == "out":
                counts.opted_out += await opt_out(session, contact_ids, item.channel, cause, detail)
            elif action == "in":
                counts.opted_in += await opt_in(session, contact_ids, item.channel, cause, detail)
        if isinstance(item, RbmSubscribe | RbmUnsubscribe):
            continue  # an event, not a message: nothing to answer
        last = await repository.last_sent_to(session, item.from_phone)
        if last is None:
            continue
        payer = await of(last.account_id)
        action = action_of(item, payer)
        reply_id = await _queue_reply(session, item, last, reply_for(action, payer))
        await repository.note_inbound(session, event_id, action, reply_id)
        if reply_id is not None:
            counts.replies += 1
    return counts.as_dict()


async def _queue_reply(
    session: AsyncSession, item: InboundMessage, last: repository.LastSent, text: str | None
) -> int | None:
    if not text:
        return None
    card = await load_rate_card(session)
    units, unit_price = price_reply(card, item.channel, last.country, text)
    if unit_price is None:
        return None
    available = await repository.available_credits(session, last.account_id)
    if available < units * unit_price:
        return None
    reply_id = await transitions.queue_reply(
        session,
        account_id=last.account_id,
        phone=item.from_phone,
        country=last.country,
        channel=item.channel,
        sender=item.to or last.sender,
        text=text,
        now=utcnow(),
    )
    await wakeups.engine_has_work(session)
    return reply_id


async def stopped_marketing(session: AsyncSession, contact_ids: Sequence[int], reason: str) -> int:
    """WhatsApp refused a message because the user stopped marketing messages (131050): the
    contacts are opted out of WhatsApp, as reported by the provider."""
    return await opt_out(
        session, contact_ids, "whatsapp", Cause.provider("cloud", inbound=False), reason
    )
