"""Text to SMPP short_message octets: GSM-7 (data_coding 0) or UCS-2 (0x08), split in parts.

TEMPORARY: `_split_parts`, `_gsm7_encode` and `_is_gsm7` are a private minimal copy of
`clarion.pricing.segments` (split_parts / gsm7_encode / is_gsm7), kept here until that module
lands on main; replace them with imports then, so that the parts we send are exactly the
parts we priced.
"""

from dataclasses import dataclass

from clarion.providers.smpp.pdu import DC_DEFAULT, DC_UCS2

# GSM 03.38 default alphabet, by septet value; and the extension table (ESC 0x1B + septet).
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXT = {
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
_BASIC_MAP = {ch: i for i, ch in enumerate(_BASIC) if ch != "\x1b"}
_DECODE_EXT = {v: k for k, v in _EXT.items()}


def _is_gsm7(text: str) -> bool:
    return all(ch in _BASIC_MAP or ch in _EXT for ch in text)


def _gsm7_encode(text: str) -> bytes:
    out = bytearray()
    for ch in text:
        if ch in _BASIC_MAP:
            out.append(_BASIC_MAP[ch])
        else:
            out += bytes((0x1B, _EXT[ch]))
    return bytes(out)


def _units(ch: str, gsm: bool) -> int:
    if gsm:
        return 2 if ch in _EXT else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _split_parts(text: str) -> tuple[str, list[str]]:
    """(encoding, parts): GSM-7 160 / 153 per part, UCS-2 70 / 67; an extension character or
    a character outside the BMP is never split across parts."""
    gsm = _is_gsm7(text)
    single, multi = (160, 153) if gsm else (70, 67)
    if sum(_units(ch, gsm) for ch in text) <= single:
        return ("GSM-7" if gsm else "UCS-2"), [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        cost = _units(ch, gsm)
        if used + cost > multi:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cost
    if current:
        parts.append("".join(current))
    return ("GSM-7" if gsm else "UCS-2"), parts


def gsm7_decode(data: bytes) -> str:
    """Unpacked septets (one per octet, 0x1B escapes) back to text; unknown values become '?'."""
    out: list[str] = []
    escape = False
    for b in data:
        if escape:
            out.append(_DECODE_EXT.get(b, "?"))
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(_BASIC[b] if b < len(_BASIC) else "?")
    return "".join(out)


@dataclass(slots=True)
class Encoded:
    data_coding: int
    parts: list[bytes]  # one short_message payload per part (without any UDH)
    whole: bytes  # the whole message encoded (for message_payload)


def encode_text(text: str) -> Encoded:
    """Encode and split a message for the wire."""
    encoding, parts = _split_parts(text)
    if encoding == "GSM-7":
        return Encoded(DC_DEFAULT, [_gsm7_encode(p) for p in parts], _gsm7_encode(text))
    # UCS-2 on the wire is UTF-16BE in practice: a non-BMP character is a surrogate pair,
    # which the splitter above never cuts in half.
    return Encoded(DC_UCS2, [p.encode("utf-16-be") for p in parts], text.encode("utf-16-be"))


def decode_text(data: bytes, data_coding: int) -> str:
    """An MO message's text, by its data_coding (0 and 1 GSM-7/ASCII-ish, 8 UCS-2, 3 Latin-1)."""
    if data_coding == DC_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == 0x03:
        return data.decode("latin-1")
    if data_coding == 0x01:
        return data.decode("ascii", errors="replace")
    return gsm7_decode(data)
