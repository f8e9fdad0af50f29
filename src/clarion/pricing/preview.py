"""What a composer shows while a message is typed: encoding, parts, units, and which
characters force UCS-2 (POST /preview)."""

from pydantic import Field, field_validator

from clarion.pricing.segments import count_segments, is_gsm7
from clarion.schemas import CamelModel, OutModel

CHANNELS = ("sms", "rcs", "whatsapp")
MAX_TEXT = 10_000


class PreviewIn(CamelModel):
    channel: str = Field(max_length=16, description="sms, rcs or whatsapp (any case)")
    text: str = Field(max_length=MAX_TEXT)
    smart_encoding: bool = Field(
        default=False,
        description="replace characters that force UCS-2 by GSM-7 look-alikes (the "
        "replacement table is not there yet: `replaced` stays empty)",
    )

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        channel = value.strip().lower()
        if channel not in CHANNELS:
            raise ValueError("must be sms, rcs or whatsapp")
        return channel


class Replacement(OutModel):
    from_: str = Field(alias="from")
    to: str
    count: int


class PreviewOut(OutModel):
    text: str = Field(description="the text as it would be sent")
    encoding: str = Field(description="GSM-7 or UCS-2: how the text travels as SMS")
    parts: int = Field(description="SMS parts (for RCS and WhatsApp: the SMS it would take)")
    units: int = Field(description="what is priced: the parts for SMS, 1 otherwise")
    characters: int = Field(description="length of the text in characters")
    replaced: list[Replacement]
    ucs2_characters: list[str] = Field(
        description="the distinct characters that force UCS-2, in order of first appearance"
    )


def ucs2_characters(text: str) -> list[str]:
    return [ch for ch in dict.fromkeys(text) if not is_gsm7(ch)]


def preview(body: PreviewIn) -> PreviewOut:
    count = count_segments(body.text)
    return PreviewOut(
        text=body.text,
        encoding=count.encoding,
        parts=count.parts,
        units=count.parts if body.channel == "sms" else 1,
        characters=len(body.text),
        replaced=[],
        ucs2_characters=ucs2_characters(body.text) if count.encoding == "UCS-2" else [],
    )
