from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from clarion.schemas import CamelModel, OutModel, UtcDatetime

TEMPLATE_STATUSES = ("approved", "pending", "rejected", "paused")
MAX_BODY = 10_000
MAX_SUGGESTIONS = 11


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Channel = Annotated[Literal["sms", "rcs", "whatsapp"], BeforeValidator(_lower)]
"""A channel name; input is case-insensitive."""

TemplateStatus = Annotated[
    Literal["approved", "pending", "rejected", "paused"], BeforeValidator(_lower)
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Language = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=r"^[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8}){0,3}$"
    ),
    Field(max_length=16, description="a language code such as en, fr, pt_BR (default en)"),
]
Category = Annotated[
    str,
    BeforeValidator(_lower),
    Field(max_length=32, description="WhatsApp only: marketing, utility or authentication"),
]
Body = Annotated[str, Field(min_length=1, max_length=MAX_BODY)]
HttpUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=2048, pattern=r"^https?://\S+$"),
    Field(description="an http(s) URL"),
]
SuggestionText = Annotated[str, Field(min_length=1, max_length=25)]
PostbackData = Annotated[str, Field(max_length=2048)]
CardText = str  # (NUL is refused for every request model, see schemas.CamelModel)


class RichCard(CamelModel):
    """An RCS standalone rich card; every field is optional."""

    title: CardText | None = Field(default=None, max_length=200)
    description: CardText | None = Field(default=None, max_length=2000)
    media: HttpUrl | None = Field(default=None, description="URL of an image or video")


class ReplySuggestion(CamelModel):
    """A suggested reply: the user taps it and `postbackData` (default: the text) comes back."""

    type: Literal["reply"]
    text: SuggestionText
    postback_data: PostbackData | None = None


class UrlSuggestion(CamelModel):
    """A suggested action that opens `url`."""

    type: Literal["url"]
    text: SuggestionText
    url: HttpUrl
    postback_data: PostbackData | None = None


class DialSuggestion(CamelModel):
    """A suggested action that dials `phone` (E.164)."""

    type: Literal["dial"]
    text: SuggestionText
    phone: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{4,14}$")]
    postback_data: PostbackData | None = None


Suggestion = Annotated[
    ReplySuggestion | UrlSuggestion | DialSuggestion, Field(discriminator="type")
]
Suggestions = Annotated[
    list[Suggestion],
    Field(
        max_length=MAX_SUGGESTIONS,
        description="RCS only: at most 11 chips, each {type: reply|url|dial, text (at most 25 "
        "characters), postbackData?, url (type url), phone (type dial, E.164)}",
    ),
]


class TemplateCreate(CamelModel):
    name: Name
    channel: Channel
    language: Language = "en"
    category: Category | None = None
    body: Body = Field(
        description="the text; may hold {{firstName}}, {{lastName}}, {{phone}}, "
        "{{attributes.NAME}} or any {{name}} supplied by a campaign's templateParams"
    )
    rich_card: RichCard | None = Field(default=None, description="RCS only")
    suggestions: Suggestions | None = None
    status: TemplateStatus | None = Field(
        default=None, description="WhatsApp only; default approved"
    )


class TemplateUpdate(CamelModel):
    """Every field is optional; a field sent as null clears it (where it may be empty)."""

    # SkipJsonSchema: these may be left out but not cleared (null is 422), as the schema says.
    name: Name | SkipJsonSchema[None] = None
    language: Language | SkipJsonSchema[None] = None
    category: Category | None = None
    body: Body | SkipJsonSchema[None] = None
    rich_card: RichCard | None = None
    suggestions: Suggestions | None = None
    status: TemplateStatus | SkipJsonSchema[None] = None


class TemplateOut(OutModel):
    id: int
    name: str
    channel: str
    language: str
    category: str | None
    body: str
    rich_card: dict[str, Any] | None
    suggestions: list[dict[str, Any]] | None
    status: str = Field(
        description="approved, pending, rejected or paused (WhatsApp); always approved for "
        "SMS and RCS"
    )
    variables: list[str] = Field(description="the body's variables in order of first appearance")
    created_at: UtcDatetime
    updated_at: UtcDatetime
