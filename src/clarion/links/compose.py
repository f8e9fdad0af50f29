"""The text a recipient is sent, from the personalized text: tracked links, then smart
encoding. One function for the estimate and for the sender, so what is priced is what is
sent.

- Tracked links: each `http(s)://` URL becomes the recipient's short link, in order of
  appearance (the estimate passes placeholders of the same length: only the length matters
  for counting). A URL ends at whitespace or at ``<>"``; punctuation that ends a sentence
  right after it (``.,;:!?'")]``) is not part of it.
- Smart encoding (SMS only): `clarion.pricing.smart`. It runs after the links are in place,
  so an original URL is stored exactly as written.
"""

import re
from collections.abc import Sequence

from clarion.pricing.smart import smart_encode

URL = re.compile(r"https?://[^\s<>\"]+?(?=[.,;:!?'\")\]]*(?:[\s<>\"]|$))", re.IGNORECASE)
CODE_LENGTH = 7


def find_urls(text: str) -> list[str]:
    """The URLs of `text` that tracking replaces, in order of appearance."""
    return URL.findall(text)


def short_link(base: str, code: str) -> str:
    return f"{base}/{code}"


def placeholder_links(base: str, count: int) -> list[str]:
    """Stand-ins exactly as long as real short links, for counting."""
    return [short_link(base, "x" * CODE_LENGTH)] * count


def substitute(text: str, links: Sequence[str]) -> str:
    """`text` with its i-th URL replaced by `links[i]` (a URL beyond `links` is kept)."""
    found = iter(links)
    return URL.sub(lambda m: next(found, m.group(0)), text)


def outgoing_text(text: str, *, links: Sequence[str] | None, smart_encoding: bool) -> str:
    """What is counted and sent for a personalized `text`: `links` (None: links are not
    tracked) in place of its URLs, then the smart-encoding table when asked."""
    if links is not None:
        text = substitute(text, links)
    if smart_encoding:
        text = smart_encode(text)
    return text
