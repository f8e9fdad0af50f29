"""What a composer shows while a message is typed: encoding, parts, units, and which
characters force UCS-2 (POST /preview)."""

from pydantic import Field, field_validator

from clarion.pricing.segments import count_segments
from clarion.pricing.smart import replacements, smart_encode, ucs2_characters
from clarion.schemas import CHANNELS, CamelModel, OutModel

MAX_TEXT = 10_000


class PreviewIn(CamelModel):
    channel: str = Field(max_length=16, description="sms, rcs or whatsapp (any case)")
    text: str = Field(max_length=MAX_TEXT)
    smart_encoding: bool = Field(
        default=False,
        description="replace characters that force UCS-2 by their GSM-7 look-alikes "
        "(typographic quotes and apostrophes, dashes, ellipsis, Unicode spaces: the table is "
        "in `clarion.pricing.smart`), as an SMS campaign with `smartEncoding: true` sends "
        "them. Only SMS is sent that way; for RCS and WhatsApp the text is counted as typed.",
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
    replaced: list[Replacement] = Field(
        description="what smart encoding replaced (`from`, `to`, `count`), in order of first "
        "appearance; empty without `smartEncoding`"
    )
    ucs2_characters: list[str] = Field(
        description="the distinct characters that force UCS-2, in order of first appearance"
    )


def preview(body: PreviewIn) -> PreviewOut:
    text = body.text
    replaced = []
    if body.smart_encoding and body.channel == "sms":
        replaced = [
            Replacement.model_validate({"from": r.from_, "to": r.to, "count": r.count})
            for r in replacements(text)
        ]
        text = smart_encode(text)
    count = count_segments(text)
    return PreviewOut(
        text=text,
        encoding=count.encoding,
        parts=count.parts,
        units=count.parts if body.channel == "sms" else 1,
        characters=len(text),
        replaced=replaced,
        ucs2_characters=ucs2_characters(text),
    )
