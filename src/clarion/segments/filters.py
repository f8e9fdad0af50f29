"""The contact filter language: parsing (with errors naming their path) into a small tree.

A filter is one JSON object, either a group or a condition:

- `{"all": [f, ...]}`, `{"any": [f, ...]}` (non-empty arrays) or `{"not": f}`;
- `{"field": F, "op": OP, "value": V}`.

The outermost object is level 1; an object inside a group is one level deeper; at most
MAX_DEPTH levels. Parsing collects every problem it finds, each with its path
(`filter.all[0].any[1].op`), so that one 422 names them all.

Types (the same on SQLite and PostgreSQL, see `compile.py`):

- `phone`, `country`, `region`, `firstName`, `lastName`: strings (`country` and `region`
  values are upper-cased, as they are stored);
- `createdAt`: RFC 3339 times with an offset;
- `attributes.NAME`: strings, numbers or booleans, compared with attribute values of the
  same JSON type only (`"5"` never equals `5`); `lt`/`lte`/`gt`/`gte` take a string or a
  number, `contains`/`startsWith` a string.

`ne` and `nin` are the exact negation of `eq` and `in`: a contact without the field (or the
attribute) matches them. String order is by Unicode code point on both databases.
"""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_VALUES = 500
MAX_STRING = 1000
MAX_ATTRIBUTE_NAME = 100

COLUMN_FIELDS = ("phone", "country", "region", "firstName", "lastName", "createdAt")
ATTRIBUTE_PREFIX = "attributes."
OPS = ("eq", "ne", "in", "nin", "lt", "lte", "gt", "gte", "contains", "startsWith", "exists")
GROUPS = ("all", "any", "not")
_UPPER = ("country", "region")
_STRING_ONLY_OPS = ("contains", "startsWith")

Scalar = str | int | float | bool | datetime


@dataclass(frozen=True)
class Condition:
    field: str  # a column field, or "attributes.NAME"
    op: str
    value: Any  # a Scalar, a tuple of them (in/nin) or a bool (exists)

    @property
    def attribute(self) -> str | None:
        """The attribute's name for `attributes.NAME`, else None."""
        return self.field.removeprefix(ATTRIBUTE_PREFIX) if self.is_attribute else None

    @property
    def is_attribute(self) -> bool:
        return self.field.startswith(ATTRIBUTE_PREFIX)


@dataclass(frozen=True)
class Group:
    kind: str  # all | any | not (a `not` has exactly one item)
    items: tuple["Node", ...]


Node = Condition | Group


class _Problems:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []
        self.conditions = 0

    def add(self, path: str, message: str) -> None:
        self.errors.append({"field": path, "message": message})


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # RFC 3339: a date and a time with an offset (a bare date or naive time is ambiguous).
    if parsed.tzinfo is None or "T" not in value.upper():
        return None
    return parsed


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) < 1e15
    )


def _scalar(field: str, op: str, value: Any, path: str, p: _Problems) -> Any:
    """One comparison value for `field` (None after reporting a problem)."""
    if field == "createdAt":
        moment = _time(value)
        if moment is None:
            p.add(path, "must be an RFC 3339 time with an offset (2026-01-01T00:00:00Z)")
        return moment
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            p.add(path, f"must be at most {MAX_STRING} characters")
            return None
        if op in _STRING_ONLY_OPS and not value:
            p.add(path, "must not be empty")
            return None
        return value.upper() if field in _UPPER else value
    is_attribute = field.startswith(ATTRIBUTE_PREFIX)
    if not is_attribute or op in _STRING_ONLY_OPS:
        p.add(path, f"must be a string, not {_kind(value)}")
        return None
    if _number(value):
        return value
    if isinstance(value, bool) and op in ("eq", "ne", "in", "nin"):
        return value
    allowed = (
        "a string or a number"
        if op in ("lt", "lte", "gt", "gte", "in", "nin")
        else ("a string, a number or a boolean")
    )
    p.add(path, f"must be {allowed} (finite, below 10^15), not {_kind(value)}")
    return None


def _field(raw: Any, path: str, p: _Problems) -> str | None:
    if not isinstance(raw, str):
        p.add(path, f"must be a string, not {_kind(raw)}")
        return None
    if raw in COLUMN_FIELDS:
        return raw
    if raw.startswith(ATTRIBUTE_PREFIX):
        name = raw.removeprefix(ATTRIBUTE_PREFIX)
        if not 1 <= len(name) <= MAX_ATTRIBUTE_NAME:
            p.add(path, f"an attribute name takes 1 to {MAX_ATTRIBUTE_NAME} characters")
            return None
        # A JSON path quotes the name: a quote, a backslash or a control character could not
        # be addressed the same way on both databases.
        if any(c in '"\\' or ord(c) < 32 for c in name):
            p.add(path, "an attribute name may not hold quotes, backslashes or control characters")
            return None
        return raw
    fields = ", ".join(COLUMN_FIELDS)
    p.add(path, f"unknown field {raw[:100]!r}: use {fields} or attributes.NAME")
    return None


def _condition(raw: dict[str, Any], path: str, p: _Problems) -> Condition | None:
    p.conditions += 1
    before = len(p.errors)
    for key in raw:
        if key not in ("field", "op", "value"):
            p.add(f"{path}.{key}", "unknown key: a condition has field, op and value")
    for key in ("field", "op", "value"):
        if key not in raw:
            p.add(f"{path}.{key}", "is required")
    field = _field(raw["field"], f"{path}.field", p) if "field" in raw else None
    op = raw.get("op")
    if "op" in raw and op not in OPS:
        shown = op[:50] if isinstance(op, str) else _kind(op)
        p.add(f"{path}.op", f"unknown op {shown!r}: use one of {', '.join(OPS)}")
        op = None
    if field == "createdAt" and op in _STRING_ONLY_OPS:
        p.add(f"{path}.op", f"{op} applies to text fields, not createdAt")
        op = None
    if field is None or op is None or "value" not in raw:
        return None
    value = raw["value"]
    vpath = f"{path}.value"
    parsed: Any
    if op == "exists":
        if not isinstance(value, bool):
            p.add(vpath, f"must be true or false, not {_kind(value)}")
        parsed = value
    elif op in ("in", "nin"):
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_VALUES:
            p.add(vpath, f"must be an array of 1 to {MAX_VALUES} values")
            return None
        parsed = tuple(_scalar(field, op, v, f"{vpath}[{i}]", p) for i, v in enumerate(value))
    else:
        parsed = _scalar(field, op, value, vpath, p)
    if len(p.errors) > before:
        return None
    return Condition(field, op, parsed)


def _node(raw: Any, path: str, depth: int, p: _Problems) -> Node | None:
    if not isinstance(raw, dict):
        p.add(path, f"must be an object (a condition or all/any/not), not {_kind(raw)}")
        return None
    if depth > MAX_DEPTH:
        p.add(path, f"filters nest at most {MAX_DEPTH} levels (the outermost object is 1)")
        return None
    groups = [k for k in GROUPS if k in raw]
    if not groups:
        if p.conditions >= MAX_CONDITIONS:
            p.add(path, f"a filter holds at most {MAX_CONDITIONS} conditions")
            return None
        return _condition(raw, path, p)
    if len(raw) != 1:
        p.add(path, "a group object has exactly one key: all, any or not")
        return None
    kind = groups[0]
    inner = raw[kind]
    if kind == "not":
        child = _node(inner, f"{path}.not", depth + 1, p)
        return None if child is None else Group("not", (child,))
    if not isinstance(inner, list) or not inner:
        p.add(f"{path}.{kind}", "must be a non-empty array of filters")
        return None
    children = [_node(item, f"{path}.{kind}[{i}]", depth + 1, p) for i, item in enumerate(inner)]
    if any(c is None for c in children):
        return None
    return Group(kind, tuple(c for c in children if c is not None))


def parse(raw: Any, path: str = "filter") -> tuple[Node | None, list[dict[str, str]]]:
    """The filter tree, or None and every problem found (each `{"field", "message"}`)."""
    problems = _Problems()
    node = _node(raw, path, 1, problems)
    return (node if not problems.errors else None), problems.errors
