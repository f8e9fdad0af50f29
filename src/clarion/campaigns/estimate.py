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

from clarion.accounts.models import Account
from clarion.audience.models import Contact
from clarion.campaigns import repository
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
    invalid: int = 0
    buckets: dict[tuple[str, str | None], Bucket] = field(default_factory=dict)
    encodings: set[str] = field(default_factory=set)
    max_parts: int | None = None
    units_without_smart: int = 0  # SMS: the units without smart encoding
    fallback_price: int | None = None  # RCS with SMS fallback: all fell back
    worst_case: int | None = None  # RCS with SMS fallback: dearer of the two per recipient

    @property
    def recipients(self) -> int:
        return sum(b.recipients for b in self.buckets.values())

    @property
    def units(self) -> int:
        return sum(b.units for b in self.buckets.values())

    @property
    def price(self) -> int:
        return sum(b.price for b in self.buckets.values())

    @property
    def reserve(self) -> int:
        """What confirming reserves: the price, or the worst case with a fallback."""
        return self.worst_case if self.worst_case is not None else self.price

    @property
    def encoding(self) -> str | None:
        if not self.encodings:
            return None
        return next(iter(self.encodings)) if len(self.encodings) == 1 else "mixed"


def message_text(campaign: Campaign, template: Template | None) -> str:
    """The text that is sent: the campaign's text, else its template's body."""
    text = (campaign.message or {}).get("text")
    if text:
        return str(text)
    return template.body if template is not None else ""


def _params(campaign: Campaign) -> dict[str, str]:
    return dict((campaign.message or {}).get("templateParams") or {})


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
    session: AsyncSession, campaign: Campaign, template: Template | None, card: Any
) -> Pricing:
    """Resolve the campaign's audience and price it (see the module docstring)."""
    p = Pricing()
    channel = campaign.channel
    prices = _Prices(card)
    text = message_text(campaign, template) if channel != "whatsapp" else ""
    personalized = channel != "whatsapp" and is_personalized(text)
    account_id, lists, excluded = campaign.account_id, campaign.list_ids, campaign.exclude_list_ids
    opted = await repository.opted_out_by_country(session, account_id, lists, excluded, channel)
    memberships = await repository.memberships_of_candidates(session, lists, excluded)
    p.opted_out = sum(opted.values())
    per_country: dict[str, int] = {}
    if not personalized:  # (personalized: the recipients come from the stream below)
        candidates = await repository.audience_by_country(session, account_id, lists, excluded)
        per_country = {c: n - opted.get(c, 0) for c, n in candidates.items()}

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
        _params(campaign),
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
            session, account_id, lists, excluded, channel, seg.columns()
        ):
            for row in chunk:
                key = (row[0], *seg.measure_values(tuple(row[1:-1])))
                totals[key] = totals.get(key, 0) + row[-1]
        for (country, parts, encoding, category, raw_parts), n in totals.items():
            account_for(country, int(n), parts, encoding, category, raw_parts)
            per_country[country] = per_country.get(country, 0) + int(n)

    # Candidates = recipients (priced or invalid) + opted out; the rest are duplicates.
    p.duplicates = memberships - sum(per_country.values()) - p.opted_out

    if sms_like and p.max_parts is None:
        # Nobody to send to: describe the text itself.
        parts, encoding, _, _ = seg.measure(EMPTY_CONTACT)
        p.max_parts, p.encodings = parts, {encoding}
    return p


def to_out(campaign: Campaign, account: Account, p: Pricing, now: datetime) -> dict[str, Any]:
    """The estimate in the contract's JSON shape (what is stored on the campaign)."""
    available = account.balance - account.reserved
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
        excluded={"duplicates": p.duplicates, "optedOut": p.opted_out, "invalid": p.invalid},  # type: ignore[arg-type]
        units=p.units,
        units_without_smart_encoding=p.units_without_smart if campaign.channel == "sms" else None,
        price=from_units(p.price),
        max_price=None if p.fallback_price is None else from_units(p.fallback_price),
        worst_case=None if p.worst_case is None else from_units(p.worst_case),
        breakdown=breakdown,  # type: ignore[arg-type]
        encoding=p.encoding,
        max_parts=p.max_parts,
        balance=from_units(account.balance),
        available=from_units(available),
        sufficient=available_for_it >= p.reserve,
        computed_at=now.astimezone(UTC),
    )
    return out.model_dump(mode="json", by_alias=True)


async def fingerprint(
    session: AsyncSession, campaign: Campaign, template: Template | None, card: Any
) -> str:
    """A digest of everything the estimate depends on: the message, the lists (membership
    changes bump `updated_at`), the exclusion lists, the channel's opt-outs, the account's
    contacts (country and personalization fields), the rate card and the template. The
    stored estimate is reused while this is unchanged."""
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
        "listState": sorted((k, str(v)) for k, v in lists.items()),
        "optOuts": await repository.opt_out_state(session, campaign.account_id, campaign.channel),
        "contacts": await repository.contacts_state(session, campaign.account_id),
        "rates": str(getattr(card, "fingerprint", "")),
        "template": None
        if template is None
        else [template.id, str(template.updated_at), template.status, template.category],
    }
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()
