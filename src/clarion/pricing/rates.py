"""The rate card: the price of one unit per channel, country and category.

A unit is one SMS segment, one WhatsApp message or one RCS message. Prices are integers of
1/10,000 credit (see `clarion.money`). The card lives in the `rate` table; when the table is
empty the card packaged as `default_rates.json` applies.

The most specific row wins: (country, category) > (country, any category) >
("*", category) > ("*", any category). "Any category" is stored as "".
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.errors import Unprocessable
from clarion.money import to_units
from clarion.pricing import repository
from clarion.pricing.models import RateRow

CHANNELS = ("sms", "rcs", "whatsapp")
ANY_COUNTRY = "*"
WHATSAPP_CATEGORIES = ("marketing", "utility", "authentication")
# Meta's category for a template that names none; the estimate and the sender price it so.
DEFAULT_WHATSAPP_CATEGORY = "marketing"
RCS_CATEGORIES = ("basic", "single")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "sms": (),
    "rcs": RCS_CATEGORIES,
    "whatsapp": WHATSAPP_CATEGORIES,
}
# ISO 3166 alpha-2 codes that phonenumbers knows: the countries a contact can belong to.
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
MAX_ROWS = 10_000
MAX_PRICE = to_units(10**9)  # credits per unit; keeps any estimate far inside BIGINT
RCS_BASIC_MAX_BYTES = 160

Source = Literal["custom", "default"]


class RateCard:
    """An immutable rate card with O(1) lookups."""

    __slots__ = ("_index", "fingerprint", "rows", "source")

    def __init__(self, rows: Iterable[RateRow], source: Source) -> None:
        self.rows: list[RateRow] = sorted(rows)
        self.source: Source = source
        self._index = {(r.channel, r.country, r.category): r.price for r in self.rows}
        canonical = json.dumps(
            [[r.channel, r.country, r.category, r.price] for r in self.rows],
            separators=(",", ":"),
        )
        self.fingerprint: str = hashlib.sha256(canonical.encode()).hexdigest()

    def unit_price(self, channel: str, country: str, category: str | None = None) -> int | None:
        """Price of one unit in 1/10,000 credit, from the most specific row; None when no row
        applies (no row for the country nor for "*")."""
        index = self._index
        channel = channel.lower()
        country = country.upper()
        category = (category or "").lower()
        if category:
            price = index.get((channel, country, category))
            if price is not None:
                return price
        price = index.get((channel, country, ""))
        if price is not None:
            return price
        if category:
            price = index.get((channel, ANY_COUNTRY, category))
            if price is not None:
                return price
        return index.get((channel, ANY_COUNTRY, ""))

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"RateCard({len(self.rows)} rows, {self.source}, {self.fingerprint[:12]})"


def whatsapp_category(category: str | None) -> str:
    """The category a WhatsApp template is priced by: its own, else the default one (a
    template stored without a category by an earlier sync)."""
    return category or DEFAULT_WHATSAPP_CATEGORY


def rcs_category(
    text: str | None, rich_card: object, suggestions: object
) -> Literal["basic", "single"]:
    """`basic` for text of at most 160 UTF-8 bytes with no rich card and no suggestions
    (an empty card or list counts as none), else `single`."""
    if rich_card or suggestions:
        return "single"
    if text and len(text.encode("utf-8", "surrogatepass")) > RCS_BASIC_MAX_BYTES:
        return "single"
    return "basic"


def validate_rows(rows: Iterable[Mapping[str, Any]], *, field: str = "rates") -> list[RateRow]:
    """Normalize and check rate rows given as {channel, country, category?, price}: channel
    and category case-insensitive, country upper-cased (ISO alpha-2 known to phonenumbers, or
    "*"), category allowed for the channel (none for SMS), price credits >= 0 with at most 4
    places, no two rows for the same (channel, country, category). Every problem is reported
    at once as a 422 whose `errors` name the row (`rates[3].country`)."""
    errors: list[dict[str, str]] = []
    out: list[RateRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, raw in enumerate(rows):
        at = f"{field}[{i}]"
        row_errors = len(errors)
        channel = str(raw.get("channel", "")).strip().lower()
        if channel not in CHANNELS:
            errors.append({"field": f"{at}.channel", "message": "must be sms, rcs or whatsapp"})
        country = str(raw.get("country", "")).strip().upper()
        if country != ANY_COUNTRY and country not in COUNTRIES:
            errors.append(
                {"field": f"{at}.country", "message": "must be an ISO 3166 alpha-2 code or '*'"}
            )
        category = str(raw.get("category") or "").strip().lower()
        allowed = CATEGORIES.get(channel, ())
        if category and channel in CHANNELS and category not in allowed:
            message = (
                "SMS rates have no category"
                if not allowed
                else f"{channel} categories are {', '.join(allowed)}"
            )
            errors.append({"field": f"{at}.category", "message": message})
        try:
            price = to_units(Decimal(str(raw.get("price"))))
            if not 0 <= price < MAX_PRICE:
                raise ValueError
        except Exception:
            errors.append(
                {
                    "field": f"{at}.price",
                    "message": "must be credits >= 0 and below 1e9, at most 4 places",
                }
            )
            price = 0
        if len(errors) > row_errors:
            continue
        key = (channel, country, category)
        if key in seen:
            errors.append(
                {
                    "field": at,
                    "message": f"duplicates {field}[{seen[key]}] "
                    f"({channel}, {country}, {category or 'any category'})",
                }
            )
            continue
        seen[key] = i
        out.append(RateRow(channel, country, category, price))
    if len(out) > MAX_ROWS:
        errors.append({"field": field, "message": f"at most {MAX_ROWS} rows"})
    if errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise Unprocessable(f"Invalid rate card: {detail}", errors=errors)
    return out


@lru_cache(maxsize=1)
def default_rate_card() -> RateCard:
    """The card packaged with Clarion (`pricing/default_rates.json`)."""
    text = resources.files("clarion.pricing").joinpath("default_rates.json").read_text("utf-8")
    document = json.loads(text, parse_float=Decimal)
    return RateCard(validate_rows(document["rates"]), "default")


# Custom cards by fingerprint. Content-addressed, so it is right for any database the
# process talks to; a card is cached only when its rows hash to the stored fingerprint.
_cards: dict[str, RateCard] = {}


async def load_rate_card(session: AsyncSession) -> RateCard:
    """The card in the `rate` table, or the packaged default when the table is empty.

    One primary-key read (the stored fingerprint) when the card is cached; a PUT through
    `replace_rate_card` takes effect at once, in this process and in every other one.
    """
    version = await repository.stored_fingerprint(session)
    if version is not None:
        cached = _cards.get(version)
        if cached is not None:
            return cached
    rows = await repository.stored_rows(session)
    if not rows:
        return default_rate_card()
    card = RateCard(rows, "custom")
    if version == card.fingerprint:
        if len(_cards) >= 64:
            _cards.clear()
        _cards[version] = card
    return card
