"""The price of a message of no campaign (a keyword's reply), at the channel's rate."""

from clarion.pricing.rates import RateCard, rcs_category
from clarion.pricing.segments import count_segments

# A free-form WhatsApp reply answers the person inside their service window; the rate card
# prices WhatsApp by template category, and `utility` is the one that fits an answer.
WHATSAPP_REPLY_CATEGORY = "utility"


def price_reply(card: RateCard, channel: str, country: str, text: str) -> tuple[int, int | None]:
    """(units, unit price in 1/10,000 credit; None when no rate applies)."""
    if channel == "sms":
        return int(count_segments(text).parts), card.unit_price("sms", country)
    if channel == "whatsapp":
        return 1, card.unit_price("whatsapp", country, WHATSAPP_REPLY_CATEGORY)
    return 1, card.unit_price("rcs", country, rcs_category(text, None, None))
