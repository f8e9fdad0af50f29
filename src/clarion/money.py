"""Credits are carried as integers of 1/10,000 credit inside the server, never as floats."""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

SCALE = 10_000
_QUANTUM = Decimal("0.0001")
# Every amount the API reads or writes is below 10**12 credits (a JSON number keeps its 4
# decimal places exactly up to there); a balance is held to the same bound.
MAX_UNITS = 10**12 * SCALE - 1


def to_units(amount: Decimal | int | str) -> int:
    """Exact conversion of a credit amount (at most 4 decimal places) to integer units."""
    value = Decimal(amount)
    units = value * SCALE
    if units != units.to_integral_value():
        raise ValueError("credits have at most 4 decimal places")
    return int(units)


def from_units(units: int) -> Decimal:
    return (Decimal(units) / SCALE).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def _json_number(value: Decimal) -> Any:
    # A float's shortest repr of a 4-place decimal below 2**53 / 10**4 prints the exact digits.
    normalized = value.normalize()
    if normalized == normalized.to_integral_value():
        return float(int(normalized))
    return float(normalized)


def _parse_credits(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("credits must be a number")
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, int | str | Decimal):
        try:
            dec = Decimal(value)
        except Exception as exc:
            raise ValueError("credits must be a number") from exc
        if not dec.is_finite():
            raise ValueError("credits must be a finite number")
        if abs(dec) * SCALE > MAX_UNITS:
            raise ValueError("credits must be below 1,000,000,000,000")
        if dec != dec.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN):
            raise ValueError("credits have at most 4 decimal places")
        return dec
    raise ValueError("credits must be a number")


Credits = Annotated[
    Decimal,
    BeforeValidator(_parse_credits),
    PlainSerializer(_json_number, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "multipleOf": 0.0001}),
]
"""A credit amount in an API body: a JSON number with at most 4 decimal places."""
