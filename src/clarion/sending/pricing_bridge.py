"""The engine's only door to pricing and templates (built in their own domains).

Everything the dispatcher needs from them goes through these few functions, so the engine
does not care how they are implemented. Until those domains provide `count_segments`,
`load_rate_card`, `rcs_category` and `compile_template`, small local stand-ins are used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.pricing.models import Rate

Contact = Mapping[str, Any]  # {"firstName", "lastName", "phone", "attributes"}


class Renderer(Protocol):
    def render(self, contact: Contact, params: Mapping[str, str]) -> str: ...

    def parameters(self, contact: Contact, params: Mapping[str, str]) -> list[str]: ...


class RateCardLike(Protocol):
    def unit_price(self, channel: str, country: str, category: str | None = None) -> int | None: ...


# --- segments -------------------------------------------------------------------------------

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")


def _local_sms_parts(text: str) -> int:
    if all(ch in _GSM7 or ch in _GSM7_EXT for ch in text):
        costs = [2 if ch in _GSM7_EXT else 1 for ch in text]
        single, per_part = 160, 153
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, per_part = 70, 67
    total = sum(costs)
    if total <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:  # an escaped or surrogate pair is never split across parts
        if used + cost > per_part:
            parts += 1
            used = 0
        used += cost
    return parts


try:
    from clarion.pricing.segments import count_segments as _count_segments

    def sms_parts(text: str) -> int:
        """How many SMS parts this (rendered) text takes."""
        return int(_count_segments(text).parts)

except ImportError:  # pragma: no cover - until the pricing domain lands

    def sms_parts(text: str) -> int:
        """How many SMS parts this (rendered) text takes."""
        return _local_sms_parts(text)


# --- rates ----------------------------------------------------------------------------------


@dataclass
class _LocalRateCard:
    rows: dict[tuple[str, str, str], int]

    def unit_price(self, channel: str, country: str, category: str | None = None) -> int | None:
        cat = category or ""
        for key in (
            (channel, country, cat),
            (channel, country, ""),
            (channel, "*", cat),
            (channel, "*", ""),
        ):
            if key in self.rows:
                return self.rows[key]
        return None


try:
    from clarion.pricing.rates import load_rate_card as _load_rate_card

    async def load_rate_card(session: AsyncSession) -> RateCardLike:
        """The current rate card."""
        return await _load_rate_card(session)  # type: ignore[no-any-return]

except ImportError:  # pragma: no cover - until the pricing domain lands

    async def load_rate_card(session: AsyncSession) -> RateCardLike:
        """The current rate card."""
        rows = await session.execute(select(Rate.channel, Rate.country, Rate.category, Rate.price))
        return _LocalRateCard({(ch, co, ca or ""): int(p) for ch, co, ca, p in rows})


try:
    from clarion.pricing.rates import rcs_category as _rcs_category

    def rcs_category(text: str | None, rich_card: Any, suggestions: Any) -> str:
        """`basic` (short plain text) or `single`."""
        return str(_rcs_category(text, rich_card, suggestions))

except ImportError:  # pragma: no cover - until the pricing domain lands

    def rcs_category(text: str | None, rich_card: Any, suggestions: Any) -> str:
        """`basic` (short plain text) or `single`."""
        if rich_card or suggestions or len((text or "").encode()) > 160:
            return "single"
        return "basic"


# --- templates ------------------------------------------------------------------------------

_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


class _LocalRenderer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.names = list(dict.fromkeys(_VAR.findall(text)))

    @staticmethod
    def _value(name: str, contact: Contact | None, params: Mapping[str, Any]) -> str:
        value: Any = None
        if contact is not None:
            if name.startswith("attributes."):
                value = (contact.get("attributes") or {}).get(name.split(".", 1)[1])
            else:
                value = contact.get(name)
        if value in (None, ""):
            value = params.get(name, params.get(name.split(".", 1)[-1], ""))
        return "" if value is None else str(value)

    def render(self, contact: Contact | None, params: Mapping[str, Any]) -> str:
        return _VAR.sub(lambda m: self._value(m.group(1), contact, params), self.text)

    def parameters(self, contact: Contact | None, params: Mapping[str, Any]) -> list[str]:
        return [self._value(name, contact, params) for name in self.names]


try:
    from clarion.templates.render import compile_template as _compile_template

    def compile_template(text: str) -> Renderer:
        """A renderer for `text` with {{variables}}."""
        return _compile_template(text)  # type: ignore[no-any-return]

except ImportError:  # pragma: no cover - until the templates domain lands

    def compile_template(text: str) -> Renderer:
        """A renderer for `text` with {{variables}}."""
        return _LocalRenderer(text)


def uses_contact(text: str) -> bool:
    """Whether rendering needs the contact row (saves a query per batch when it does not)."""
    return "{{" in text
