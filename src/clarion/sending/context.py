"""What the dispatcher needs to know about a campaign to render and price its messages.

Built once per campaign per worker (a confirmed campaign's message does not change) and
used for every batch: the template is compiled once, the contact row is only read when the
text has variables.

An A/B campaign's context holds one context per variant: each message is rendered with its
variant's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import Contact
from clarion.campaigns.models import Campaign
from clarion.db.params import LOOKUP_CHUNK, chunks, id_in
from clarion.links.compose import outgoing_text, short_link
from clarion.pricing.rates import RateCard, rcs_category
from clarion.pricing.segments import count_segments
from clarion.providers.base import OutboundMessage, TemplateRef
from clarion.templates.models import Template
from clarion.templates.render import Renderer, compile_template, is_personalized


@dataclass(slots=True)
class Priced:
    """A rendered message with its units and price (None: no rate for it)."""

    outbound: OutboundMessage
    units: int
    unit_price: int | None

    @property
    def price(self) -> int:
        return self.units * (self.unit_price or 0)


@dataclass
class CampaignContext:
    id: int
    account_id: int
    channel: str
    sender: str | None
    fallback_channel: str | None
    renderer: Renderer
    params: dict[str, Any]
    needs_contact: bool
    template_name: str | None = None
    template_language: str = "en"
    template_category: str | None = None
    rich_card: dict[str, Any] | None = None
    suggestions: list[Any] | None = None
    smart_encoding: bool = False
    # trackLinks: where the message's short links point (None: links are not tracked).
    link_base: str | None = None
    # An A/B campaign: variant name -> its context (this one is the first variant's).
    variants: dict[str, CampaignContext] | None = None

    def for_variant(self, name: str | None) -> CampaignContext:
        """The context of a message of `name` (a test send, with no variant, gets the
        first variant's message)."""
        if self.variants is None or name is None:
            return self
        return self.variants.get(name, self)

    def render(
        self,
        message_id: int,
        channel: str,
        phone: str,
        country: str,
        contact: Mapping[str, Any] | None,
        rates: RateCard,
        link_codes: list[str] | None = None,
    ) -> Priced:
        """Render for `channel` (the campaign's, or `sms` for an RCS fallback) and price it.
        `link_codes`: the message's tracked links, in the order of its URLs (a message
        without any, such as a test send, keeps its original URLs)."""
        # A test send has no contact: its contact fields come from templateParams (or are "").
        contact = contact if contact is not None else {"phone": phone, "attributes": {}}
        links = None
        if self.link_base is not None and link_codes:
            links = [short_link(self.link_base, code) for code in link_codes]
        text = outgoing_text(
            self.renderer.render(contact, self.params),
            links=links,
            smart_encoding=self.smart_encoding and channel == "sms",
        )
        out = OutboundMessage(id=message_id, channel=channel, to=phone, sender=self.sender)
        if channel == "sms":
            out.text = text
            return Priced(out, count_segments(text).parts, rates.unit_price("sms", country))
        if channel == "whatsapp":
            out.text = text
            if self.template_name is not None:
                out.template = TemplateRef(
                    name=self.template_name,
                    language=self.template_language,
                    category=self.template_category,
                    parameters=self.renderer.parameters(contact, self.params),
                )
            price = rates.unit_price("whatsapp", country, self.template_category or "marketing")
            return Priced(out, 1, price)
        # rcs
        out.text = text
        out.rich_card = self.rich_card
        out.suggestions = self.suggestions
        category = rcs_category(text, self.rich_card, self.suggestions)
        return Priced(out, 1, rates.unit_price("rcs", country, category))


async def _template(session: AsyncSession, account_id: int, message: dict[str, Any]) -> Any:
    if message.get("templateId") is None:
        return None
    return (
        await session.execute(
            select(Template).where(
                Template.id == message["templateId"], Template.account_id == account_id
            )
        )
    ).scalar_one_or_none()


async def _context(
    session: AsyncSession, campaign: Campaign, message: dict[str, Any]
) -> CampaignContext:
    """The context of one message of the campaign (its own, or one A/B variant's)."""
    params = dict(message.get("templateParams") or {})
    text = message.get("text")
    template = await _template(session, campaign.account_id, message)
    if text is None and template is not None:
        text = template.body
    text = text or ""
    ctx = CampaignContext(
        id=campaign.id,
        account_id=campaign.account_id,
        channel=campaign.channel,
        sender=campaign.sender,
        fallback_channel=campaign.fallback_channel,
        renderer=compile_template(text),
        params=params,
        needs_contact=is_personalized(text),
        smart_encoding=campaign.smart_encoding,
        link_base=campaign.link_base_url if campaign.track_links else None,
    )
    if template is not None:
        ctx.template_name = template.name
        ctx.template_language = template.language
        ctx.template_category = template.category
        ctx.rich_card = template.rich_card
        ctx.suggestions = template.suggestions
    ctx.rich_card = message.get("richCard", ctx.rich_card)
    ctx.suggestions = message.get("suggestions", ctx.suggestions)
    return ctx


async def load_context(session: AsyncSession, campaign_id: int) -> CampaignContext | None:
    """The campaign's context; an A/B campaign's carries one context per variant
    (`for_variant`)."""
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        return None
    if not campaign.variants:
        return await _context(session, campaign, campaign.message or {})
    contexts = {
        str(v["name"]): await _context(session, campaign, v.get("message") or {})
        for v in campaign.variants
    }
    first = next(iter(contexts.values()))
    first.variants = contexts
    return first


async def load_contacts(session: AsyncSession, ids: list[int]) -> dict[int, dict[str, Any]]:
    """contact id -> the fields templates may use."""
    out: dict[int, dict[str, Any]] = {}
    for part in chunks(ids, LOOKUP_CHUNK):
        rows = await session.execute(
            select(
                Contact.id, Contact.first_name, Contact.last_name, Contact.phone, Contact.attributes
            ).where(id_in(session, Contact.id, part))
        )
        for cid, first, last, phone, attributes in rows:
            out[cid] = {
                "firstName": first,
                "lastName": last,
                "phone": phone,
                "attributes": attributes or {},
            }
    return out
