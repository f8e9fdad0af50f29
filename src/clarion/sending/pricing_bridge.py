"""The engine's only door to pricing and templates (built in their own domains): SMS parts of
a rendered text, the rate card, the RCS price category, and compiled templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.pricing.rates import load_rate_card as _load_rate_card
from clarion.pricing.rates import rcs_category as _rcs_category
from clarion.pricing.segments import count_segments
from clarion.templates.render import compile_template as _compile_template
from clarion.templates.render import is_personalized

Contact = Mapping[str, Any]  # {"firstName", "lastName", "phone", "attributes"}

# A test send has no contact: every contact variable takes its templateParams fallback.
_NO_CONTACT: Contact = {"firstName": None, "lastName": None, "phone": None, "attributes": {}}


class Renderer(Protocol):
    def render(self, contact: Contact, params: Mapping[str, str]) -> str: ...

    def parameters(self, contact: Contact, params: Mapping[str, str]) -> list[str]: ...


class RateCardLike(Protocol):
    def unit_price(self, channel: str, country: str, category: str | None = None) -> int | None: ...


class _Template:
    __slots__ = ("_inner",)

    def __init__(self, text: str) -> None:
        self._inner = _compile_template(text)

    def render(self, contact: Contact | None, params: Mapping[str, Any]) -> str:
        return self._inner.render(contact or _NO_CONTACT, params)

    def parameters(self, contact: Contact | None, params: Mapping[str, Any]) -> list[str]:
        return self._inner.parameters(contact or _NO_CONTACT, params)


def sms_parts(text: str) -> int:
    """How many SMS parts this (rendered) text takes."""
    return count_segments(text).parts


async def load_rate_card(session: AsyncSession) -> RateCardLike:
    """The current rate card."""
    return await _load_rate_card(session)


def rcs_category(text: str | None, rich_card: Any, suggestions: Any) -> str:
    """`basic` (short plain text) or `single`."""
    return _rcs_category(text, rich_card, suggestions)


def compile_template(text: str) -> Renderer:
    """A renderer for `text` with {{variables}}."""
    return _Template(text)


def uses_contact(text: str) -> bool:
    """Whether rendering needs the contact row (saves a query per batch when it does not)."""
    return is_personalized(text)
