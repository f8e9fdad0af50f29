"""Text to SMPP short_message octets: GSM-7 (data_coding 0) or UCS-2 (0x08), split in parts.

The parts are exactly the parts priced by `clarion.pricing.segments` (153 septets or 67
UCS-2 units per part, never splitting an extension character or a surrogate pair), so what
is sent is what was charged.
"""

from dataclasses import dataclass

from clarion.pricing.segments import GSM7, gsm7_decode, gsm7_encode, split_parts
from clarion.providers.smpp.pdu import DC_DEFAULT, DC_UCS2

__all__ = ["Encoded", "decode_text", "encode_text", "gsm7_decode"]


@dataclass(slots=True)
class Encoded:
    data_coding: int
    parts: list[bytes]  # one short_message payload per part (without any UDH)
    whole: bytes  # the whole message encoded (for message_payload)


def encode_text(text: str) -> Encoded:
    """Encode and split a message for the wire."""
    encoding, parts = split_parts(text)
    if encoding == GSM7:
        return Encoded(DC_DEFAULT, [gsm7_encode(p) for p in parts], gsm7_encode(text))
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
