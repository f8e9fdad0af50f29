"""Tracked links: made with the messages, resolved by the redirect, counted by clicks."""

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.session import Database
from clarion.links import repository
from clarion.links.clicks import ClickIn
from clarion.links.compose import CODE_LENGTH, find_urls
from clarion.templates import repository as templates_repository
from clarion.templates.render import compile_template, is_personalized, variables_of

# 7 characters of the URL-safe base64 alphabet: 42 random bits a code. With a billion links
# stored, a guess finds one once in about 4,400 tries: the redirect reveals only a URL that
# was sent by SMS anyway, and what a guess costs is a 404.
MAX_DRAWS = 20
_CODE = re.compile("[A-Za-z0-9_-]{" + str(CODE_LENGTH) + "}")
USER_AGENT_MAX = 512


class CodesExhausted(RuntimeError):
    """Fresh codes kept colliding: never expected with 42 random bits."""


def new_codes(count: int) -> list[str]:
    """`count` codes from `secrets` (unguessable). Six random bytes make eight base64
    characters; seven of them are kept, so every character is uniform over 64."""
    raw = base64.urlsafe_b64encode(secrets.token_bytes(6 * count)).decode()
    return [raw[i : i + CODE_LENGTH] for i in range(0, 8 * count, 8)]


async def create_for_chunk(
    session: AsyncSession,
    *,
    campaign_id: int,
    account_id: int,
    text: str,
    params: dict[str, Any],
    after: int,
    upto: int,
    variant: str | None = None,
) -> int:
    """Make the links of the messages just materialized for contacts in (after, upto]: one
    per URL of each recipient's personalized text. Set-based: the database builds the
    chunk's (message, position, url) rows from its messages and the text's URLs (only the
    recipients whose own text must be searched are read, and their rows sent); one count
    of them, one INSERT of all of them with one code each from a draw sent as one parameter.
    Codes that collide with stored ones (or with each other) are skipped by the INSERT and
    drawn again for the positions still missing only. With an A/B `variant`, `text` is that
    variant's and only its messages without links yet are linked. Returns how many links
    were made."""
    renderer = compile_template(text)
    personalized = is_personalized(text)
    fixed: list[str] | None
    if not personalized:
        fixed = find_urls(renderer.render({"attributes": {}}, params))
    else:
        fixed = static_urls(text, params)
    if fixed == [] and not personalized:
        return 0
    own: list[repository.Recipient] = []  # recipients whose own text must be searched
    if personalized:
        # Every recipient when a value can change the URLs; otherwise only those whose
        # values hold a colon (they may carry URLs of their own).
        own = await repository.chunk_recipients(
            session,
            campaign_id,
            after,
            upto,
            with_attributes=any(v.startswith("attributes.") for v in variables_of(text)),
            only_with_colon=fixed is not None,
            variant=variant,
        )
    rows = [
        (r.message_id, position, url)
        for r in own
        for position, url in enumerate(find_urls(renderer.render(r.contact, params)))
    ]
    chunk = repository.ChunkLinks(
        campaign_id,
        account_id,
        after,
        upto,
        variant,
        urls=fixed or [],
        # With no fixed URLs every row is its recipient's own: nothing to leave out.
        own_ids=[r.message_id for r in own] if fixed else [],
        own=rows,
    )
    wanted, lo, hi = await repository.count_wanted_links(session, chunk)
    made = 0
    missing: tuple[int, int] | None = None
    for _ in range(MAX_DRAWS):
        if not wanted:
            return made
        inserted = await repository.insert_links(session, chunk, new_codes(wanted), missing)
        made += inserted
        if inserted == wanted:
            return made
        missing = (lo, hi)
        wanted, _, _ = await repository.count_wanted_links(session, chunk, missing)
    raise CodesExhausted(f"could not draw unique link codes for campaign {campaign_id}")


async def tracked_text(
    session: AsyncSession, account_id: int, channel: str, message: dict[str, Any]
) -> str | None:
    """The text whose URLs become links for a message (a campaign's, or an A/B
    variant's): its text, else its template's body (an RCS template). None on WhatsApp,
    whose templates are sent as the provider stores them."""
    if channel == "whatsapp":
        return None
    if message.get("text"):
        return str(message["text"])
    if message.get("templateId") is None:
        return None
    template = await templates_repository.template_of(
        session, account_id, int(message["templateId"])
    )
    return None if template is None else template.body


_SLOT = "\x00"
# A variable's slot next to anything but these could join a URL or a scheme around it.
_SAFE_NEIGHBOUR = "\\s,;!?()\\[\\]\"'<>."
_UNSAFE_SLOT = re.compile(f"(?<![{_SAFE_NEIGHBOUR}]){_SLOT}|{_SLOT}(?![{_SAFE_NEIGHBOUR}]|$)")


def static_urls(text: str, params: dict[str, Any]) -> list[str] | None:
    """The URLs of a personalized `text` that no contact value without a colon can change,
    or None when a value could (a variable inside or against a URL, or next to a letter
    that may start a scheme: `http{{x}}`). A value that holds a colon may carry a URL of
    its own: those recipients' texts are searched one by one (`create_for_chunk`)."""
    if any(":" in str(v) for v in params.values()):  # fallbacks for empty fields
        return None
    attributes = {
        v.removeprefix("attributes."): _SLOT
        for v in variables_of(text)
        if v.startswith("attributes.")
    }
    contact = {"firstName": _SLOT, "lastName": _SLOT, "phone": _SLOT, "attributes": attributes}
    rendered = compile_template(text).render(contact, params)
    if _UNSAFE_SLOT.search(rendered):
        return None
    return find_urls(rendered)


async def codes_for(
    session: AsyncSession, messages: Sequence[tuple[int, int]]
) -> dict[int, list[str]]:
    """message id -> its links' codes, in the order of its URLs, for (campaign id, message
    id) pairs."""
    by_campaign: dict[int, list[int]] = {}
    for campaign_id, message_id in messages:
        by_campaign.setdefault(campaign_id, []).append(message_id)
    out: dict[int, list[str]] = {}
    for campaign_id, ids in by_campaign.items():
        out.update(await repository.codes_of_messages(session, campaign_id, ids))
    return out


def ip_hash(secret: bytes, address: str | None) -> str | None:
    """HMAC-SHA256 of the address keyed by the server's secret: equal addresses hash alike,
    and without the secret no table of the 2^32 IPv4 addresses can reverse it."""
    if not address:
        return None
    return hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()


async def resolve(db: Database, code: str) -> tuple[str, int] | None:
    """(url, campaign id) of a code, or None: a malformed code is never looked up."""
    if not _CODE.fullmatch(code):
        return None
    return await repository.target(db, code)


def click(
    code: str, campaign_id: int, at: datetime, user_agent: str | None, hashed_ip: str | None
) -> ClickIn:
    ua = user_agent[:USER_AGENT_MAX] if user_agent else None
    return ClickIn(code, campaign_id, at, ua, hashed_ip)
