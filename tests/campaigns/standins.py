"""Minimal private stand-ins for the pricing and template interfaces that another part
builds (clarion.pricing.segments, clarion.pricing.rates, clarion.templates.render).

They are installed only when the real modules are not importable yet, so the campaign tests
and the bench run before those parts land, and use the real ones as soon as they do.
"""

import hashlib
import re
import sys
import types
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = "^{}\\[~]|€\f"


@dataclass
class SegmentCount:
    encoding: str
    parts: int
    length: int


def count_segments(text: str) -> SegmentCount:
    if all(ch in GSM_BASIC or ch in GSM_EXT for ch in text):
        costs = [2 if ch in GSM_EXT else 1 for ch in text]
        encoding, single, multi = "GSM-7", 160, 153
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        encoding, single, multi = "UCS-2", 70, 67
    length = sum(costs)
    if length <= single:
        return SegmentCount(encoding, 1, length)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            parts, used = parts + 1, 0
        used += cost
    return SegmentCount(encoding, parts, length)


class RateCard:
    def __init__(self, rows: list[tuple[str, str, str, int]]) -> None:
        self.rows = {(ch, co, ca): p for ch, co, ca, p in rows}
        self.fingerprint = hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()

    def unit_price(self, channel: str, country: str, category: str | None = None) -> int | None:
        for key in (
            (channel, country, category or ""),
            (channel, country, ""),
            (channel, "*", category or ""),
            (channel, "*", ""),
        ):
            if key in self.rows:
                return self.rows[key]
        return None


async def load_rate_card(session: Any) -> RateCard:
    from clarion.pricing.models import Rate

    rows = await session.execute(select(Rate.channel, Rate.country, Rate.category, Rate.price))
    return RateCard([tuple(r) for r in rows])


def rcs_category(text: str, rich_card: Any, suggestions: Any) -> str:
    if rich_card or suggestions or len((text or "").encode()) > 160:
        return "single"
    return "basic"


_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
CONTACT_FIELDS = ("firstName", "lastName", "phone")


def variables_of(text: str) -> list[str]:
    return list(dict.fromkeys(_VAR.findall(text or "")))


def _contact_var(name: str) -> bool:
    return name in CONTACT_FIELDS or (name.startswith("attributes.") and len(name) > 11)


def unknown_variables(text: str, params: dict[str, str]) -> list[str]:
    return [v for v in variables_of(text) if not _contact_var(v) and v not in (params or {})]


def is_personalized(text: str) -> bool:
    return any(_contact_var(v) for v in variables_of(text))


class Renderer:
    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, contact: dict[str, Any], params: dict[str, str]) -> str:
        def value(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("attributes."):
                v = (contact.get("attributes") or {}).get(name[11:])
            else:
                v = contact.get(name)
            if v is None or v == "":
                v = (params or {}).get(name, "")
            return str(v)

        return _VAR.sub(value, self.text)


def compile_template(text: str) -> Renderer:
    return Renderer(text)


def install() -> list[str]:
    """Install the stand-ins whose real module is missing; returns their names."""
    installed = []
    specs = {
        "clarion.pricing.segments": {
            "count_segments": count_segments,
            "SegmentCount": SegmentCount,
        },
        "clarion.pricing.rates": {
            "load_rate_card": load_rate_card,
            "rcs_category": rcs_category,
            "RateCard": RateCard,
        },
        "clarion.templates.render": {
            "variables_of": variables_of,
            "unknown_variables": unknown_variables,
            "is_personalized": is_personalized,
            "compile_template": compile_template,
        },
    }
    for name, attrs in specs.items():
        try:
            __import__(name)
            continue
        except ModuleNotFoundError:
            pass
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)
        installed.append(name)
    return installed
