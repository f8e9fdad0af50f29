"""Segment bodies, and the filter's JSON Schema (recursive: served as `ContactFilter`)."""

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from clarion.schemas import CamelModel, OutModel, UtcDatetime
from clarion.segments.filters import (
    COLUMN_FIELDS,
    MAX_ATTRIBUTE_NAME,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_STRING,
    MAX_VALUES,
    OPS,
)

FILTER_REF = {"$ref": "#/components/schemas/ContactFilter"}
_SCALAR: list[dict[str, Any]] = [
    {"type": "string", "maxLength": MAX_STRING},
    {"type": "number"},
    {"type": "boolean"},
]
_FIELD_PATTERN = (
    "^(" + "|".join(COLUMN_FIELDS) + ')$|^attributes[.][^"\\\\\\u0000-\\u001f]{1,'
    f"{MAX_ATTRIBUTE_NAME}}}$"
)
FILTER_SCHEMA: dict[str, Any] = {
    "description": (
        "A contact filter: a condition `{field, op, value}` or a group `{all: [...]}`, "
        "`{any: [...]}` (non-empty) or `{not: {...}}`, nested at most "
        f"{MAX_DEPTH} levels (the outermost object is level 1), at most {MAX_CONDITIONS} "
        "conditions. Fields: phone, country, region, firstName, lastName (strings; country "
        "and region compare upper-cased), createdAt (RFC 3339 with an offset) and "
        "attributes.NAME (a string, number or boolean, compared with attribute values of "
        'the same JSON type only: "5" never equals 5). `in`/`nin` take 1 to '
        f"{MAX_VALUES} values; `exists` takes true or false (an attribute holding null "
        "does not exist); `contains`/`startsWith` take a non-empty string and match "
        "literally and case-sensitively; `lt`/`lte`/`gt`/`gte` order strings by code point, "
        "numbers by value, times in time. `ne` and `nin` are the negation of `eq` and `in`: "
        "a contact without the field matches them. A bad filter is 422 naming the path "
        "(`filter.all[0].any[1].op`)."
    ),
    "anyOf": [
        {
            "type": "object",
            "title": "condition",
            "required": ["field", "op", "value"],
            "additionalProperties": False,
            "properties": {
                "field": {"type": "string", "pattern": _FIELD_PATTERN},
                "op": {"type": "string", "enum": list(OPS)},
                "value": {
                    "anyOf": [
                        *_SCALAR,
                        {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_VALUES,
                            "items": {"anyOf": _SCALAR},
                        },
                    ]
                },
            },
        },
        *[
            {
                "type": "object",
                "title": kind,
                "required": [kind],
                "additionalProperties": False,
                "properties": {
                    kind: {"type": "array", "minItems": 1, "items": FILTER_REF},
                },
            }
            for kind in ("all", "any")
        ],
        {
            "type": "object",
            "title": "not",
            "required": ["not"],
            "additionalProperties": False,
            "properties": {"not": FILTER_REF},
        },
    ],
}

Filter = Annotated[dict[str, Any], WithJsonSchema({"allOf": [FILTER_REF]})]


class SegmentIn(CamelModel):
    """A new segment, or (PUT) its replacement: both fields are required."""

    name: str = Field(min_length=1, max_length=200)
    filter: Filter


class SegmentOut(OutModel):
    id: int
    name: str
    filter: Filter
    created_at: UtcDatetime
    updated_at: UtcDatetime


class SegmentCount(OutModel):
    contacts: int = Field(
        description="the account's contacts the filter matches now, opted-out ones included "
        "(opt-outs are per channel: a campaign's estimate leaves out those of its channel)"
    )
