"""A/B test arithmetic shared by the estimate, the materializer and the decision: how many
recipients the test takes, how they split between the variants, and which variant wins.
Pure functions: no database, no clock."""

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any


def names(variants: Sequence[Mapping[str, Any]] | None) -> list[str]:
    return [str(v["name"]) for v in variants or []]


def test_size(audience: int, share: float, variants: int) -> int:
    """The test share of an audience, rounded half up, but at least one recipient per
    variant (when the audience has that many): a variant nobody received cannot win."""
    if audience <= 0:
        return 0
    size = int((Decimal(audience) * Decimal(str(share))).to_integral_value(ROUND_HALF_UP))
    return min(audience, max(size, variants))


def split(size: int, variants: int) -> list[int]:
    """An even split of `size` test recipients: sizes differ by at most one, the earlier
    variants take the extra ones (as the materializer deals them out in turn)."""
    base, extra = divmod(size, variants)
    return [base + (1 if i < extra else 0) for i in range(variants)]


def ceil_share(amount: int, part: int, whole: int) -> int:
    """amount * part / whole, rounded up (money: a reservation never falls short by a
    rounding)."""
    if whole <= 0 or part <= 0:
        return 0
    return -(-amount * part // whole)


def winner(order: Sequence[str], hits: Mapping[str, int], sent: Mapping[str, int]) -> str:
    """The variant with the best rate hits/sent, compared exactly; ties go to the earlier
    variant in `order` (a variant with no test message has rate 0)."""
    best, best_rate = order[0], Fraction(-1)
    for name in order:
        total = sent.get(name, 0)
        rate = Fraction(hits.get(name, 0), total) if total else Fraction(0)
        if rate > best_rate:
            best, best_rate = name, rate
    return best
