from fastapi import APIRouter

from clarion.auth import AdminDep, CurrentAccountId
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.money import from_units
from clarion.pricing import service
from clarion.pricing.preview import PreviewIn, PreviewOut, preview
from clarion.pricing.rates import RateCard, load_rate_card
from clarion.pricing.schemas import RateCardIn, RateCardOut, RateOut
from clarion.roles import VIEWER, requires

router = APIRouter(tags=["rates"])


def _card_out(card: RateCard) -> RateCardOut:
    return RateCardOut(
        source=card.source,
        fingerprint=card.fingerprint,
        items=[
            RateOut(
                channel=r.channel,
                country=r.country,
                category=r.category or None,
                price=from_units(r.price),
            )
            for r in card.rows
        ],
    )


@router.get("/rates", response_model=RateCardOut)
async def get_rates(_: CurrentAccountId, session: ReadSessionDep) -> RateCardOut:
    """The rate card the account is priced with (one card for the whole installation).

    A unit is one SMS segment, one WhatsApp message or one RCS message. For a recipient the
    most specific row wins: (country, category), then (country, any category), then ("*",
    category), then ("*", any category). `source` says whether an administrator set the card
    or the packaged default applies. Rows are sorted by channel, country, category.
    """
    return _card_out(await load_rate_card(session))


@router.get("/admin/rates", response_model=RateCardOut, tags=["admin"], dependencies=[AdminDep])
async def admin_get_rates(session: ReadSessionDep) -> RateCardOut:
    """The rate card in force (the same document as `GET /rates`)."""
    return _card_out(await load_rate_card(session))


@router.put("/admin/rates", response_model=RateCardOut, tags=["admin"], dependencies=[AdminDep])
async def put_rates(body: RateCardIn, session: SessionDep) -> RateCardOut:
    """Replace the whole rate card atomically and return it.

    Each row: `channel` (sms, rcs, whatsapp; any case), `country` (ISO 3166 alpha-2, any
    case, or "*"), `category` (WhatsApp: marketing, utility, authentication; RCS: basic,
    single; SMS: none; absent or null = every category), `price` (credits per unit, >= 0, at
    most 4 places). Two rows with the same (channel, country, category) are a 422 naming the
    later row (`rates[3]`). An empty `rates` list goes back to the packaged default card.
    The new card applies at once to every estimate made afterwards.
    """
    card = await service.replace_rate_card(session, (row.model_dump() for row in body.rates))
    return _card_out(card)


@router.post(
    "/preview", response_model=PreviewOut, tags=["campaigns"], openapi_extra=requires(VIEWER)
)
async def preview_text(body: PreviewIn, _: CurrentAccountId) -> PreviewOut:
    """Count a text as it is typed: SMS encoding (GSM-7 unless a character outside GSM 03.38
    forces UCS-2), parts, priced units (SMS parts; 1 for RCS and WhatsApp), length in
    characters, and the characters that still force UCS-2. With `smartEncoding: true` and
    channel `sms` the text is first passed through the look-alike table an SMS campaign with
    `smartEncoding` is sent with (`text` is then the text as sent, `replaced` says what
    changed). Changes nothing; any role may ask.
    Variables (`{{firstName}}`) are counted as written: the estimate counts each
    recipient's personalized text."""
    return preview(body)
