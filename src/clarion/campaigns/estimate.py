"""Pricing a campaign's audience as it would be sent now (calculateGoal, GET /price, confirm).

- The candidates per country, their memberships (for duplicates) and the opted-out among
  them come from three set-based queries.
- A message without contact variables is rendered and segmented once.
- A personalized SMS/RCS text is priced per recipient after rendering: the audience is
  grouped in SQL by country and by the values of the variables the text uses (recipients
  with the same values get the same text), and the groups are streamed through a
  server-side cursor in chunks, each rendered and segmented once: memory stays flat, and
  Python's work is one render per distinct group, at worst one per recipient. A phone (E.164:
  `+` and digits, one GSM-7 septet each) only matters through its length, so phones are
  grouped by length. Segment counts are also memoized across countries.
- `invalid` counts audience contacts with no applicable rate (no row for their country and
  no `*` row): they cannot be priced, so they cannot be sent.
- The text counted is the text sent (`clarion.links.compose.outgoing_text`, the sender's
  function too): with trackLinks each URL counts as long as its short link, with
  smartEncoding the look-alikes are replaced; `unitsWithoutSmartEncoding` counts the same
  texts without the replacement.
- RCS with SMS fallback also prices the SMS fallback: `maxPrice` is the price if every
  recipient fell back (SMS segments and rates); `worstCase`, what confirm reserves, takes for
  each recipient the dearer of its RCS price and its fallback price.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import Contact
from clarion.campaigns import repository, variants
from clarion.campaigns.audience import audience_of
from clarion.campaigns.consent import consent_required
from clarion.campaigns.models import Campaign
from clarion.campaigns.schemas import EstimateOut
from clarion.links.compose import find_urls, outgoing_text, placeholder_links
from clarion.money import from_units
from clarion.pricing.rates import rcs_category, whatsapp_category
from clarion.pricing.segments import count_segments
from clarion.templates.models import Template
from clarion.templates.render import compile_template, is_personalized, variables_of

_PHONE = re.compile(r"^\+?[0-9]+$")
_MEMO_LIMIT = 200_000
FIELDS = ("firstName", "lastName", "phone", "attributes")
EMPTY_CONTACT: dict[str, Any] = {"firstName": None, "lastName": None, "phone": "", "attributes": {}}


@dataclass
class Bucket:
    """Recipients of one country (and rate category) and what they cost, in 1/10,000 credit."""

    recipients: int = 0
    units: int = 0
    unit_price: int = 0
    price: int = 0


@dataclass
class Pricing:
    """The result of pricing, in integer units; `to_out` renders the contract's shape."""

    duplicates: int = 0
    opted_out: int = 0
    no_consent: int = 0  # requireConsent: candidates without granted consent
    frequency_capped: int = 0
    invalid: int = 0
    buckets: dict[tuple[str, str | None], Bucket] = field(default_factory=dict)
    encodings: set[str] = field(default_factory=set)
    max_parts: int | None = None
    units_without_smart: int = 0  # SMS: the units without smart encoding
    fallback_price: int | None = None  # RCS with SMS fallback: all fell back
    worst_case: int | None = None  # RCS with SMS fallback: dearer of the two per recipient
    ab: "AbSplit | None" = None  # an A/B campaign: its price is the split's

    @property
    def recipients(self) -> int:
        return sum(b.recipients for b in self.buckets.values())

    @property
    def units(self) -> int:
        if self.ab is not None:
            return self.ab.units
        return sum(b.units for b in self.buckets.values())

    @property
    def price(self) -> int:
        if self.ab is not None:
            return self.ab.price
        return sum(b.price for b in self.buckets.values())

    @property
    def reserve(self) -> int:
        """What confirming reserves: the price, or the worst case with a fallback (for an
        A/B campaign its price, which already is a worst case)."""
        if self.ab is not None:
            return self.ab.price
        return self.worst_case if self.worst_case is not None else self.price

    @property
    def encoding(self) -> str | None:
        if not self.encodings:
            return None
        return next(iter(self.encodings)) if len(self.encodings) == 1 else "mixed"


@dataclass
class VariantPrice:
    """One A/B variant: what the whole audience would cost with it (its reservation
    figure: the worst case with an RCS fallback) and its share of the test."""

    name: str
    pricing: Pricing
    test_recipients: int = 0
    test_units: int = 0
    test_price: int = 0

    @property
    def audience_price(self) -> int:
        return self.pricing.reserve

    def share(self, amount: int, part: int) -> int:
        return variants.ceil_share(amount, part, self.pricing.recipients)


@dataclass
class AbSplit:
    """The A/B price: each variant's test share at its own average price per recipient,
    the remainder at the dearest variant's (which variant wins is not known yet)."""

    test_recipients: int
    remainder_recipients: int
    remainder_units: int
    remainder_price: int
    variants: list[VariantPrice]

    @property
    def price(self) -> int:
        return sum(v.test_price for v in self.variants) + self.remainder_price

    @property
    def units(self) -> int:
        return sum(v.test_units for v in self.variants) + self.remainder_units

    def remainder_price_of(self, name: str) -> int | None:
        """The remainder's price had `name` been known to win (None: no such variant)."""
        for v in self.variants:
            if v.name == name:
                return v.share(v.audience_price, self.remainder_recipients)
        return None


async def price_variants(
    session: AsyncSession,
    campaign: Campaign,
    templates: list[Template | None],
    card: Any,
    cap: repository.CapFilter | None = None,
) -> Pricing:
    """Price an A/B campaign: each variant over the whole audience, then the split (see
    AbSplit). The result describes the audience as its dearest variant does (recipients,
    exclusions, breakdown), with `maxParts` the largest over the variants, and carries the
    split in `ab`: its price is what confirm reserves."""
    ab = campaign.ab_test or {}
    priced = [
        VariantPrice(
            str(v["name"]), await price_audience(session, campaign, t, card, v["message"], cap)
        )
        for v, t in zip(campaign.variants or [], templates, strict=True)
    ]
    dearest = max(priced, key=lambda v: v.audience_price)
    base = dearest.pricing
    audience = base.recipients
    size = variants.test_size(audience, float(ab.get("testShare", 0)), len(priced))
    for v, n in zip(priced, variants.split(size, len(priced)), strict=True):
        v.test_recipients = n
        v.test_units = v.share(v.pricing.units, n)
        v.test_price = v.share(v.audience_price, n)
    remainder = audience - size
    out = Pricing(
        duplicates=base.duplicates,
        opted_out=base.opted_out,
        no_consent=base.no_consent,
        frequency_capped=base.frequency_capped,
        invalid=base.invalid,
        buckets=base.buckets,
        encodings=set().union(*(v.pricing.encodings for v in priced)),
        max_parts=max((v.pricing.max_parts for v in priced if v.pricing.max_parts), default=None),
        fallback_price=base.fallback_price,
        worst_case=base.worst_case,
    )
    out.ab = AbSplit(
        test_recipients=size,
        remainder_recipients=remainder,
        remainder_units=max(v.share(v.pricing.units, remainder) for v in priced),
        remainder_price=max(v.share(v.audience_price, remainder) for v in priced),
        variants=priced,
    )
    return out


def _ab_out(split: AbSplit) -> dict[str, Any]:
    return {
        "testRecipients": split.test_recipients,
        "remainderRecipients": split.remainder_recipients,
        "remainderUnits": split.remainder_units,
        "remainderPrice": from_units(split.remainder_price),
        "variants": [
            {
                "name": v.name,
                "testRecipients": v.test_recipients,
                "testUnits": v.test_units,
                "testPrice": from_units(v.test_price),
                "audienceUnits": v.pricing.units,
                "audiencePrice": from_units(v.audience_price),
                "audienceRecipients": v.pricing.recipients,
            }
            for v in split.variants
        ],
    }


def message_text(
    campaign: Campaign, template: Template | None, message: dict[str, Any] | None = None
) -> str:
    """The text that is sent: the message's text (the campaign's, or the A/B variant's
    `message`), else its template's body."""
    text = (campaign.message if message is None else message or {}).get("text")
    if text:
        return str(text)
    return template.body if template is not None else ""


def _params(campaign: Campaign, message: dict[str, Any] | None = None) -> dict[str, str]:
    return dict(
        (campaign.message if message is None else message or {}).get("templateParams") or {}
    )


class _Segmenter:
    """Segments (and the RCS category) of the rendered text, memoized on the variable values."""

    def __init__(
        self,
        text: str,
        params: dict[str, str],
        template: Template | None,
        *,
        smart_encoding: bool = False,
        link_base: str | None = None,
    ) -> None:
        self._count = count_segments
        self._rcs_category = rcs_category
        self.renderer = compile_template(text)
        self.params = params
        self.smart_encoding = smart_encoding
        self.link_base = link_base
        self.rich_card = template.rich_card if template is not None else None
        self.suggestions = template.suggestions if template is not None else None
        variables = set(variables_of(text))
        self.attribute_names = sorted(
            v.removeprefix("attributes.") for v in variables if v.startswith("attributes.")
        )
        used = variables | ({"attributes"} if self.attribute_names else set())
        self.fields = [f for f in FIELDS if f in used]
        # Names are the key as they are; phones and attributes need reducing (_key).
        self.plain_key = not ({"phone", "attributes"} & set(self.fields))
        self.memo: dict[Any, tuple[int, str, str, int]] = {}

    def columns(self) -> list[tuple[Any, Any]]:
        """(selected, grouped-by) pairs for the contact fields the text uses, in FIELDS
        order. A phone is E.164 (`+` and digits, one GSM-7 septet each), so only its length
        matters: phones are grouped by length, rendered with any phone of the group."""
        columns = {
            "firstName": (Contact.first_name, Contact.first_name),
            "lastName": (Contact.last_name, Contact.last_name),
            "phone": (func.min(Contact.phone), func.length(Contact.phone)),
            "attributes": (Contact.attributes, Contact.attributes),
        }
        return [columns[f] for f in self.fields]

    def measure(self, contact: dict[str, Any]) -> tuple[int, str, str, int]:
        """(parts, encoding, rcs category, parts without smart encoding) of the text sent
        to this contact."""
        rendered = self.renderer.render(contact, self.params)
        links = None
        if self.link_base is not None:
            links = placeholder_links(self.link_base, len(find_urls(rendered)))
        text = outgoing_text(rendered, links=links, smart_encoding=self.smart_encoding)
        seg = self._count(text)
        raw_parts = seg.parts
        if self.smart_encoding:
            raw_parts = self._count(
                outgoing_text(rendered, links=links, smart_encoding=False)
            ).parts
        category = self._rcs_category(text, self.rich_card, self.suggestions)
        return int(seg.parts), str(seg.encoding), str(category), int(raw_parts)

    def _key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        key: list[Any] = []
        for name, value in zip(self.fields, values, strict=True):
            if name == "phone":
                key.append(len(value) if isinstance(value, str) and _PHONE.match(value) else value)
            elif name == "attributes":
                attrs = value if isinstance(value, dict) else {}
                for attribute in self.attribute_names:
                    v = attrs.get(attribute)
                    key.append(v if isinstance(v, str | int | float | None) else repr(v))
            else:
                key.append(value)
        return tuple(key)

    def measure_values(self, values: tuple[Any, ...]) -> tuple[int, str, str, int]:
        """measure() for a contact given by the values of `fields`, memoized on what the
        text actually uses of them."""
        key = values if self.plain_key else self._key(values)
        hit = self.memo.get(key)
        if hit is None:
            contact: dict[str, Any] = dict(EMPTY_CONTACT)
            for name, value in zip(self.fields, values, strict=True):
                if name == "attributes":
                    contact[name] = value if isinstance(value, dict) else {}
                elif isinstance(value, str):
                    contact[name] = value
            hit = self.measure(contact)
            if len(self.memo) >= _MEMO_LIMIT:
                self.memo.clear()
            self.memo[key] = hit
        return hit


class _Prices:
    """Unit prices looked up once per (channel, country, category)."""

    def __init__(self, card: Any) -> None:
        self.card = card
        self.cache: dict[tuple[str, str, str | None], int | None] = {}

    def get(self, channel: str, country: str, category: str | None) -> int | None:
        key = (channel, country, category)
        if key not in self.cache:
            price = self.card.unit_price(channel, country, category)
            self.cache[key] = None if price is None else int(price)
        return self.cache[key]


def _add(p: Pricing, country: str, category: str | None, n: int, units: int, unit: int) -> None:
    bucket = p.buckets.setdefault((country, category), Bucket(unit_price=unit))
    bucket.recipients += n
    bucket.units += units
    bucket.price += units * unit


async def price_audience(
    session: AsyncSession,
    campaign: Campaign,
    template: Template | None,
    card: Any,
    message: dict[str, Any] | None = None,
    cap: repository.CapFilter | None = None,
) -> Pricing:
    """Resolve the campaign's audience and price it (see the module docstring) with its
    message, or with `message` (an A/B variant's) when given. Under `requireConsent`, a
    marketing campaign leaves out the candidates without granted consent for its channel
    (`excluded.noConsent`), as the materializer does. With a `cap`, contacts who reached the
    frequency cap are left out like the opted out (each excluded contact counts once: opted
    out, else without consent, else capped)."""
    p = Pricing()
    channel = campaign.channel
    prices = _Prices(card)
    text = message_text(campaign, template, message) if channel != "whatsapp" else ""
    personalized = channel != "whatsapp" and is_personalized(text)
    audience = audience_of(campaign)
    need_consent = await consent_required(session, campaign.account_id, campaign.purpose)
    counts = await repository.breakdown_by_country(
        session, audience, channel, need_consent=need_consent, cap=cap
    )
    folded = [c.memberships for c in counts.values()]
    memberships = (
        sum(m or 0 for m in folded)
        if counts and None not in folded
        else await repository.memberships_of_candidates(session, audience)
    )
    p.opted_out = sum(c.opted_out for c in counts.values())
    p.no_consent = sum(c.no_consent for c in counts.values())
    p.frequency_capped = sum(c.capped for c in counts.values())
    per_country: dict[str, int] = {}
    if not personalized:  # (personalized: the recipients come from the stream below)
        per_country = {
            country: c.candidates - c.opted_out - c.no_consent - c.capped
            for country, c in counts.items()
        }

    fallback = channel == "rcs" and campaign.fallback_channel == "sms"
    if fallback:
        p.fallback_price = 0
        p.worst_case = 0

    if channel == "whatsapp":
        category = whatsapp_category(template.category if template is not None else None)
        for country, n in per_country.items():
            unit = prices.get("whatsapp", country, category)
            if unit is None:
                p.invalid += n
            elif n:
                _add(p, country, category, n, n, unit)
        return p

    seg = _Segmenter(
        text,
        _params(campaign, message),
        template,
        smart_encoding=campaign.smart_encoding and channel == "sms",
        link_base=campaign.link_base_url if campaign.track_links else None,
    )
    sms_like = channel == "sms" or fallback

    def account_for(
        country: str, n: int, parts: int, encoding: str, category: str, raw_parts: int
    ) -> None:
        if channel == "sms":
            unit = prices.get("sms", country, None)
            if unit is None:
                p.invalid += n
                return
            _add(p, country, None, n, n * parts, unit)
            p.units_without_smart += n * raw_parts
        else:
            unit = prices.get("rcs", country, category)
            if unit is None:
                p.invalid += n
                return
            _add(p, country, category, n, n, unit)
            if fallback:
                sms_unit = prices.get("sms", country, None)
                back = 0 if sms_unit is None else n * parts * sms_unit
                assert p.fallback_price is not None and p.worst_case is not None
                p.fallback_price += back
                p.worst_case += max(back, n * unit)
        if sms_like:
            p.encodings.add(encoding)
            p.max_parts = parts if p.max_parts is None else max(p.max_parts, parts)

    if not personalized:
        parts, encoding, category, raw_parts = seg.measure(EMPTY_CONTACT)
        for country, n in per_country.items():
            if n:
                account_for(country, n, parts, encoding, category, raw_parts)
    else:
        # Recipients with the same values render the same text: grouped in SQL (on SQLite
        # too: streaming a million rows through the driver's thread costs twice the GROUP BY).
        totals: dict[tuple[str, int, str, str, int], int] = {}
        async for chunk in repository.stream_recipient_groups(
            session, audience, channel, seg.columns(), cap=cap, need_consent=need_consent
        ):
            for row in chunk:
                key = (row[0], *seg.measure_values(tuple(row[1:-1])))
                totals[key] = totals.get(key, 0) + row[-1]
        for (country, parts, encoding, category, raw_parts), n in totals.items():
            account_for(country, int(n), parts, encoding, category, raw_parts)
            per_country[country] = per_country.get(country, 0) + int(n)

    # Candidates = recipients (priced or invalid) + opted out + without consent + capped;
    # the rest are duplicates.
    p.duplicates = (
        memberships - sum(per_country.values()) - p.opted_out - p.no_consent - p.frequency_capped
    )

    if sms_like and p.max_parts is None:
        # Nobody to send to: describe the text itself.
        parts, encoding, _, _ = seg.measure(EMPTY_CONTACT)
        p.max_parts, p.encodings = parts, {encoding}
    return p


def to_out(
    campaign: Campaign,
    credits: tuple[int, int],
    p: Pricing,
    now: datetime,
    schedule: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The estimate in the contract's JSON shape (what is stored on the campaign); `credits`
    is the account's (balance, reserved) as `ledger.credits_of` reads them."""
    balance, reserved = credits
    available = balance - reserved
    # A scheduled campaign already holds its reservation: it counts as available for itself.
    available_for_it = available + campaign.reserved
    breakdown = [
        {
            "country": country,
            "category": category,
            "recipients": b.recipients,
            "units": b.units,
            "unitPrice": from_units(b.unit_price),
            "price": from_units(b.price),
        }
        for (country, category), b in sorted(
            p.buckets.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        )
    ]
    out = EstimateOut(
        campaign_id=campaign.id,
        channel=campaign.channel,
        recipients=p.recipients,
        excluded={  # type: ignore[arg-type]
            "duplicates": p.duplicates,
            "optedOut": p.opted_out,
            "noConsent": p.no_consent,
            "frequencyCapped": p.frequency_capped,
            "invalid": p.invalid,
        },
        schedule=schedule,
        units=p.units,
        units_without_smart_encoding=p.units_without_smart if campaign.channel == "sms" else None,
        price=from_units(p.price),
        max_price=None if p.fallback_price is None else from_units(p.fallback_price),
        worst_case=None if p.worst_case is None else from_units(p.worst_case),
        breakdown=breakdown,  # type: ignore[arg-type]
        encoding=p.encoding,
        max_parts=p.max_parts,
        ab_test=None if p.ab is None else _ab_out(p.ab),  # type: ignore[arg-type]
        balance=from_units(balance),
        available=from_units(available),
        sufficient=available_for_it >= p.reserve,
        computed_at=now.astimezone(UTC),
    )
    return out.model_dump(mode="json", by_alias=True)


def _template_state(template: Template | None) -> list[Any] | None:
    if template is None:
        return None
    return [template.id, str(template.updated_at), template.status, template.category]


async def fingerprint(
    session: AsyncSession,
    campaign: Campaign,
    template: Template | None,
    card: Any,
    variant_templates: list[Template | None] | None = None,
) -> str:
    """A digest of everything the estimate depends on: the message, the lists (membership
    changes bump `updated_at`), the exclusion lists, the segment filters and the filter,
    the channel's opt-outs, the account's contacts (country, personalization and filtered
    fields), the rate card and the template. The stored estimate is reused while this is
    unchanged."""
    ids = list(dict.fromkeys([*campaign.list_ids, *campaign.exclude_list_ids]))
    lists = await repository.lists_of(session, campaign.account_id, ids)
    parts = {
        "channel": campaign.channel,
        "message": campaign.message,
        "fallback": campaign.fallback_channel,
        "smartEncoding": campaign.smart_encoding,
        "links": campaign.link_base_url if campaign.track_links else None,
        "lists": campaign.list_ids,
        "exclude": campaign.exclude_list_ids,
        "segments": campaign.segment_filters,
        "filter": campaign.audience_filter,
        "listState": sorted((k, str(v)) for k, v in lists.items()),
        # Opt-outs and consent changes both write the contacts' history, which this watches.
        "optOuts": await repository.opt_out_state(session, campaign.account_id, campaign.channel),
        "consent": await consent_required(session, campaign.account_id, campaign.purpose),
        "contacts": await repository.contacts_state(session, campaign.account_id),
        "rates": str(getattr(card, "fingerprint", "")),
        "template": _template_state(template),
        "variants": campaign.variants,
        "abTest": campaign.ab_test,
        "variantTemplates": [_template_state(t) for t in variant_templates or []],
    }
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()
