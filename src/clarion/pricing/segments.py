"""SMS segmentation: GSM 03.38 (GSM-7) or UCS-2, and how many parts a text needs.

Rules (3GPP TS 23.038 / 23.040, as carriers bill them):

- A text whose every character is in the GSM 03.38 basic table or its extension table is sent
  in GSM-7. A basic character costs 1 septet; an extension character (``^ { } \\ [ ~ ] | €``
  and form feed) costs 2 (an ESC, 0x1B, then its code). Only the capital ``Ç`` is in the
  basic table: a lower-case ``ç`` makes the text UCS-2.
- Any other character makes the *whole* text UCS-2, counted in UTF-16 code units: a character
  outside the BMP (most emoji) costs 2 (a surrogate pair).
- One part carries 160 septets or 70 units. A longer text is concatenated: the user data
  header takes room, leaving 153 septets or 67 units per part.
- An extension character or a surrogate pair is never split across two parts: when only one
  septet (unit) is left in a part, the part ends early. So 152 ``a`` + ``€`` + 152 ``a`` is
  3 parts, not 2. Parts are packed greedily, like handsets and SMSCs do (greedy is also the
  minimum for an order-preserving packing of items of size 1 and 2).
- The empty string is 1 part of length 0 in GSM-7: a message is always at least one SMS.

`count_segments` runs once per recipient in a personalized estimate, so it avoids Python
loops over characters: set/regex work happens in C and the part packing only walks the
(few) part boundaries.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7: Encoding = "GSM-7"
UCS2: Encoding = "UCS-2"

SINGLE_GSM7 = 160
MULTI_GSM7 = 153
SINGLE_UCS2 = 70
MULTI_UCS2 = 67

# GSM 03.38 basic table, in code order (0x1B is the escape to the extension table; it is not
# a character of its own, so it is stood in for by a NUL that never matches below).
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x00ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_BASIC) == 128

ESCAPE = 0x1B
GSM7_BASIC: dict[str, int] = {ch: code for code, ch in enumerate(_BASIC) if code != ESCAPE}
GSM7_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_GSM7_CHARS = frozenset(GSM7_BASIC) | frozenset(GSM7_EXTENSION)
_EXT_CHARS = "".join(GSM7_EXTENSION)
_NOT_GSM7 = re.compile("[^" + re.escape("".join(sorted(_GSM7_CHARS))) + "]")
_EXT_RE = re.compile("[" + re.escape(_EXT_CHARS) + "]")
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")
# Maps each GSM-7 character to its septet(s), one char per septet, for `gsm7_encode`.
_ENCODE_TABLE = {ord(ch): chr(code) for ch, code in GSM7_BASIC.items()} | {
    ord(ch): chr(ESCAPE) + chr(code) for ch, code in GSM7_EXTENSION.items()
}
_DECODE_BASIC = {code: ch for ch, code in GSM7_BASIC.items()}
_DECODE_EXT = {code: ch for ch, code in GSM7_EXTENSION.items()}


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """How a text travels by SMS.

    `encoding`: GSM-7 or UCS-2; `parts`: the SMS parts (segments) it needs (1 for "");
    `length`: septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text.
    """

    encoding: Encoding
    parts: int
    length: int


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` is in the GSM 03.38 basic or extension table."""
    return _gsm7_extension_count(text) >= 0


def _wide_offsets(pattern: re.Pattern[str], text: str) -> list[int]:
    """Offsets (in septets/units) where a 2-wide character starts: a character at index i
    preceded by k wide characters starts at i + k."""
    return [m.start() + k for k, m in enumerate(pattern.finditer(text))]


def _starts(length: int, per_part: int, wide_at: Callable[[int], bool]) -> list[int]:
    """Greedy packing of a text of `length` septets/units into parts of `per_part`, never
    splitting a 2-wide character (`wide_at(i)`: one starts at offset i). Returns the offset
    where each part after the first begins; only the part boundaries are looked at."""
    starts: list[int] = []
    start = 0
    while length - start > per_part:
        end = start + per_part
        # The last slot of the part would hold only the first half of a wide character.
        start = end - 1 if wide_at(end - 1) else end
        starts.append(start)
    return starts


def _pack(length: int, per_part: int, wide_at: Callable[[int], bool]) -> int:
    return len(_starts(length, per_part, wide_at)) + 1


# ASCII fast path: bytes.translate deletes through a 256-entry table in C, far cheaper than
# a regex over a character class with non-ASCII members.
_BASIC_ASCII = bytes(sorted(ord(ch) for ch in GSM7_BASIC if ord(ch) < 0x80))
_BASIC_LATIN1 = bytes(sorted(ord(ch) for ch in GSM7_BASIC if ord(ch) < 0x100))
_EXT_ASCII = bytes(sorted(ord(ch) for ch in GSM7_EXTENSION if ord(ch) < 0x80))
# SegmentCount is immutable, and its frozen-dataclass __init__ costs more than the counting
# of a short text: reuse instances for the common lengths.
_SEEN: dict[tuple[str, int, int], SegmentCount] = {}
_SEEN_MAX_LENGTH = 2048


def _result(encoding: Encoding, parts: int, length: int) -> SegmentCount:
    key = (encoding, parts, length)
    found = _SEEN.get(key)
    if found is None:
        found = SegmentCount(encoding, parts, length)
        if length <= _SEEN_MAX_LENGTH:
            _SEEN[key] = found
    return found


def _gsm7_scan(text: str) -> tuple[int, bytes | None, bytes | None]:
    """(extension characters, or -1 when `text` is not GSM-7; the text as Latin-1 bytes when
    it is Latin-1; its extension bytes when it is)."""
    if text.isascii():
        raw = text.encode("ascii")
        rest = raw.translate(None, _BASIC_ASCII)
    else:
        # Accented Latin text (é, ü, Ø...) stays on the bytes path; Greek, € and anything
        # beyond Latin-1 take the regex.
        raw = text.encode("latin-1", "ignore")
        if len(raw) != len(text):
            if _NOT_GSM7.search(text) is not None:
                return -1, None, None
            return len(_EXT_RE.findall(text)), None, None
        rest = raw.translate(None, _BASIC_LATIN1)
    if not rest:
        return 0, raw, rest
    if rest.translate(None, _EXT_ASCII):
        return -1, None, None
    return len(rest), raw, rest


def _gsm7_extension_count(text: str) -> int:
    """Number of extension characters when `text` is GSM-7, or -1 when it is not."""
    return _gsm7_scan(text)[0]


def _escaped_bytes(text: str) -> bytes:
    """One byte per septet, 0x1B where an extension character starts (GSM-7 text only).
    Latin-1 text gets there with a few C-level replaces instead of a per-character table."""
    _, raw, ext_bytes = _gsm7_scan(text)
    if raw is None or ext_bytes is None:
        return gsm7_encode(text)
    return _escape(raw, ext_bytes)


def _escape(raw: bytes, ext_bytes: bytes) -> bytes:
    """`raw` with 0x1B inserted before each of the extension bytes."""
    for code in set(ext_bytes):
        raw = raw.replace(bytes((code,)), bytes((ESCAPE, code)))
    return raw


def count_segments(text: str) -> SegmentCount:
    """Encoding, SMS parts and length of `text` (see the module docstring for the rules)."""
    ext, raw, ext_bytes = _gsm7_scan(text)
    if ext >= 0:
        length = len(text) + ext
        if length <= SINGLE_GSM7:
            return _result(GSM7, 1, length)
        if not ext:
            return _result(GSM7, -(-length // MULTI_GSM7), length)
        wide_at: Callable[[int], bool]
        if raw is not None and ext_bytes is not None:
            # One byte per septet, an escape where each extension character starts.
            septets = _escape(raw, ext_bytes)
            wide_at = lambda i: septets[i] == ESCAPE  # noqa: E731
        else:
            wide_at = set(_wide_offsets(_EXT_RE, text)).__contains__
        return _result(GSM7, _pack(length, MULTI_GSM7, wide_at), length)
    try:
        units = text.encode("utf-16-le")
    except UnicodeEncodeError:  # lone surrogates: count them one unit each, the slow way
        length = len(text.encode("utf-16-le", "surrogatepass")) >> 1
        if length <= SINGLE_UCS2:
            return _result(UCS2, 1, length)
        wide_at = set(_wide_offsets(_ASTRAL_RE, text)).__contains__
        return _result(UCS2, _pack(length, MULTI_UCS2, wide_at), length)
    length = len(units) >> 1
    if length <= SINGLE_UCS2:
        return _result(UCS2, 1, length)
    if length == len(text):
        return _result(UCS2, -(-length // MULTI_UCS2), length)
    # A high surrogate (0xD800-0xDBFF; little-endian, so its second byte) starts a pair.
    return _result(
        UCS2, _pack(length, MULTI_UCS2, lambda i: 0xD8 <= units[2 * i + 1] <= 0xDB), length
    )


# Deleting every other byte value from the high bytes of UTF-16 units leaves one byte per
# high surrogate, i.e. per astral character.
_NOT_HIGH_SURROGATE = bytes(b for b in range(256) if not 0xD8 <= b <= 0xDB)


def split_parts(text: str) -> tuple[Encoding, list[str]]:
    """The encoding and the text of each SMS part, as `count_segments` counts them (so
    ``len(parts) == count_segments(text).parts``). No part ends inside an extension
    character or a surrogate pair. The empty string is one empty part."""
    counted = count_segments(text)
    encoding, length = counted.encoding, counted.length
    if counted.parts == 1:
        return encoding, [text]
    if length == len(text):
        # No 2-wide character: septets (units) and characters line up.
        per = MULTI_GSM7 if encoding == GSM7 else MULTI_UCS2
        return encoding, [text[i : i + per] for i in range(0, len(text), per)]
    # Find the part starts in septets/units, then turn each into a character index by
    # subtracting the 2-wide characters before it (counted in C, not per character).
    indexes: list[int]
    if encoding == GSM7:
        septets = _escaped_bytes(text)
        offsets = _starts(length, MULTI_GSM7, lambda i: septets[i] == ESCAPE)
        indexes = [o - septets.count(ESCAPE, 0, o) for o in offsets]
    else:
        try:
            units = text.encode("utf-16-le")
        except UnicodeEncodeError:  # lone surrogates: the slow, exact way
            astral = set(_wide_offsets(_ASTRAL_RE, text))
            offsets = _starts(length, MULTI_UCS2, astral.__contains__)
            indexes = [o - sum(1 for a in astral if a < o) for o in offsets]
        else:
            offsets = _starts(length, MULTI_UCS2, lambda i: 0xD8 <= units[2 * i + 1] <= 0xDB)
            indexes = [
                o - len(units[1 : 2 * o : 2].translate(None, _NOT_HIGH_SURROGATE)) for o in offsets
            ]
    bounds = [0, *indexes, len(text)]
    return encoding, [text[bounds[k] : bounds[k + 1]] for k in range(len(bounds) - 1)]


def gsm7_encode(text: str) -> bytes:
    """GSM 03.38 septets, unpacked (one byte each, 0x00-0x7F), an extension character as
    0x1B followed by its code. Raises ValueError if `text` is not GSM-7."""
    bad = _NOT_GSM7.search(text)
    if bad is not None:
        raise ValueError(f"{bad.group()!r} (at index {bad.start()}) is not a GSM-7 character")
    return text.translate(_ENCODE_TABLE).encode("latin-1")


def gsm7_decode(data: bytes) -> str:
    """The inverse of `gsm7_encode` (unpacked septets). An unknown escape code decodes as a
    space, a stray trailing escape is dropped, as 3GPP TS 23.038 recommends."""
    out: list[str] = []
    escaped = False
    for byte in data:
        code = byte & 0x7F
        if escaped:
            out.append(_DECODE_EXT.get(code, " "))
            escaped = False
        elif code == ESCAPE:
            escaped = True
        else:
            out.append(_DECODE_BASIC[code])
    return "".join(out)
