"""Smart encoding: characters that force an SMS into UCS-2, replaced by GSM-7 look-alikes.

A single typographic apostrophe (what phones and word processors type for ``'``) turns a
whole SMS into UCS-2: 70 characters a part instead of 160, so often twice the price for a
character the reader cannot tell apart. With ``smartEncoding: true`` the text is passed
through the table below after personalization and before it is counted and sent
(`clarion.links.compose.outgoing_text`, shared by the estimate and the sender).

Only characters outside GSM 03.38 are in the table, and each goes to a character (or
nothing) that reads the same:

=====================================================  =======  ===============================
Characters                                             To       Why
=====================================================  =======  ===============================
U+2018-201B (single quotes), U+02BC (modifier letter   ``'``    typographic single quotes and
apostrophe)                                                     apostrophes
U+2032 (prime), U+00B4 (acute accent), U+0060 (grave)  ``'``    read as an apostrophe in text
U+201C-201F (double quotes), U+2033 (double prime)     ``"``    typographic double quotes
U+00AB, U+00BB (guillemets)                            ``"``    the quotes of French texts
U+2010-2015 (hyphens, figure/en/em dashes, bar),       ``-``    dashes
U+2212 (minus sign)
U+2026 (horizontal ellipsis)                           ``...``  3 septets, still far cheaper
                                                                than a whole UCS-2 text
U+00A0, U+2000-200A, U+202F, U+205F, U+3000 (no-break  space    Unicode spaces
and other spaces), U+0009 (tab)
U+200B, U+2060 (zero-width), U+FEFF (BOM)              removed  invisible
=====================================================  =======  ===============================

Replacement is unconditional when the option is on: the text keeps its other characters (an
emoji still makes it UCS-2, see `ucs2_characters`), so what is sent does not depend on which
other characters happen to be there.
"""

from dataclasses import dataclass

from clarion.pricing.segments import is_gsm7


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for chars, to in (
        ("\u2018\u2019\u201a\u201b\u02bc\u2032\u00b4\u0060", "'"),
        ("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        ("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        ("\u2026", "..."),
        ("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a", " "),
        ("\u202f\u205f\u3000\t", " "),
        ("\u200b\u2060\ufeff", ""),
    ):
        for ch in chars:
            table[ch] = to
    return table


LOOK_ALIKES: dict[str, str] = _table()
# Every key forces UCS-2 and every value is GSM-7: the table only ever helps.
assert not any(is_gsm7(ch) for ch in LOOK_ALIKES)
assert all(is_gsm7(to) for to in LOOK_ALIKES.values())

_TRANSLATE = str.maketrans(LOOK_ALIKES)


@dataclass(frozen=True, slots=True)
class Replaced:
    """`count` occurrences of `from_` were replaced by `to`."""

    from_: str
    to: str
    count: int


def smart_encode(text: str) -> str:
    """`text` with every look-alike of the table replaced (one C-level translate)."""
    return text.translate(_TRANSLATE)


def replacements(text: str) -> list[Replaced]:
    """What `smart_encode` replaces in `text`, in order of first appearance."""
    return [
        Replaced(ch, LOOK_ALIKES[ch], text.count(ch))
        for ch in dict.fromkeys(text)
        if ch in LOOK_ALIKES
    ]


def ucs2_characters(text: str) -> list[str]:
    """The distinct characters of `text` that force UCS-2, in order of first appearance."""
    if is_gsm7(text):
        return []
    return [ch for ch in dict.fromkeys(text) if not is_gsm7(ch)]
