"""A parsed filter (`filters.py`) as a SQLAlchemy boolean expression over `contact`.

Every value and every attribute name travels as a bound parameter; nothing from the filter
is ever spliced into SQL text. Each condition compiles to a two-valued expression (never
NULL), so that `not` is the exact complement of what it wraps.

The two dialects agree on the meaning:

- Attributes are typed as JSON: a string value compares with string attributes, a number
  with numbers (5 equals 5.0), a boolean with booleans. PostgreSQL tests equality by jsonb
  containment (`attributes @> '{"tier": "gold"}'`, which the GIN `jsonb_path_ops` index
  answers); SQLite checks `json_type` and `json_extract`.
- Strings order by code point: `COLLATE "C"` on PostgreSQL, SQLite's binary collation.
- `contains` and `startsWith` are case-sensitive and literal (`%` and `_` are plain
  characters): they use strpos/instr and substr, never LIKE.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import Numeric, and_, case, cast, false, func, not_, or_, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from clarion.audience.models import Contact
from clarion.segments.filters import Condition, Group, Node

Expr = ColumnElement[bool]

_COLUMNS: dict[str, Any] = {
    "phone": Contact.phone,
    "country": Contact.country,
    "region": Contact.region,
    "firstName": Contact.first_name,
    "lastName": Contact.last_name,
    "createdAt": Contact.created_at,
}
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


def _sure(expr: Any) -> Expr:
    """NULL (an absent value) read as false."""
    return func.coalesce(expr, false())


def _negated(expr: Expr) -> Expr:
    return not_(_sure(expr))


class _Dialect:
    """What differs between the databases: reading an attribute, and finding a substring."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        # jsonb operators (->, ->>, @>) on PostgreSQL, whatever the column's generic type.
        self.jsonb: Any = type_coerce(Contact.attributes, JSONB)

    def contains(self, column: Any, value: str) -> Any:
        found = func.strpos(column, value) if self.postgres else func.instr(column, value)
        return found > 0

    @staticmethod
    def starts_with(column: Any, value: str) -> Any:
        return func.substr(column, 1, len(value)) == value

    def text(self, column: Any) -> Any:
        return column.collate("C") if self.postgres else column

    # -- attributes ---------------------------------------------------------------------

    def json_kind(self, name: str) -> Any:
        """The attribute's JSON type as 'string', 'number', 'boolean', 'null', 'object',
        'array' (NULL when absent)."""
        if self.postgres:
            return func.jsonb_typeof(self.jsonb[name])
        raw = func.json_type(Contact.attributes, _path(name))
        return case(
            (raw == "text", "string"),
            (raw.in_(("integer", "real")), "number"),
            (raw.in_(("true", "false")), "boolean"),
            else_=raw,
        )

    def as_text(self, name: str) -> Any:
        """The attribute's value when it is a string, else NULL."""
        if self.postgres:
            value: Any = self.jsonb[name].astext
        else:
            value = func.json_extract(Contact.attributes, _path(name))
        return case((self.json_kind(name) == "string", value))

    def as_number(self, name: str) -> Any:
        """The attribute's value when it is a number, else NULL."""
        if self.postgres:
            value: Any = cast(self.jsonb[name].astext, Numeric)
        else:
            value = func.json_extract(Contact.attributes, _path(name))
        return case((self.json_kind(name) == "number", value))

    def equals(self, name: str, value: Any) -> Expr:
        if self.postgres:
            return self.jsonb.contains({name: value})  # type: ignore[no-any-return]
        if isinstance(value, bool):
            return _sure(func.json_type(Contact.attributes, _path(name)) == str(value).lower())
        if isinstance(value, str):
            return _sure(self.as_text(name) == value)
        return _sure(self.as_number(name) == value)


def _path(name: str) -> str:
    # The name is validated free of quotes and backslashes (filters.py); the path is a
    # bound parameter.
    return f'$."{name}"'


def _column_condition(c: Condition, d: _Dialect) -> Expr:
    column = _COLUMNS[c.field]
    present = column.is_not(None)
    if c.op == "exists":
        return present if c.value else column.is_(None)
    if c.op in ("eq", "ne"):
        matched = and_(present, column == c.value)
        return matched if c.op == "eq" else not_(matched)
    if c.op in ("in", "nin"):
        matched = and_(present, column.in_(list(c.value)))
        return matched if c.op == "in" else not_(matched)
    if c.op == "contains":
        return and_(present, d.contains(column, c.value))
    if c.op == "startsWith":
        return and_(present, d.starts_with(column, c.value))
    ordered = column if c.field == "createdAt" else d.text(column)
    return and_(present, _ORDER[c.op](ordered, c.value))


def _attribute_condition(c: Condition, d: _Dialect) -> Expr:
    name = c.attribute
    assert name is not None
    if c.op == "exists":
        present = func.coalesce(d.json_kind(name), "null") != "null"
        return present if c.value else not_(present)
    if c.op in ("eq", "ne"):
        matched = d.equals(name, c.value)
        return matched if c.op == "eq" else _negated(matched)
    if c.op in ("in", "nin"):
        matched = or_(*[d.equals(name, v) for v in dict.fromkeys(c.value)])
        return matched if c.op == "in" else _negated(matched)
    if c.op == "contains":
        return _sure(d.contains(d.as_text(name), c.value))
    if c.op == "startsWith":
        return _sure(d.starts_with(d.as_text(name), c.value))
    if isinstance(c.value, str):
        return _sure(_ORDER[c.op](d.text(d.as_text(name)), c.value))
    return _sure(_ORDER[c.op](d.as_number(name), c.value))


def _compile(node: Node, d: _Dialect) -> Expr:
    if isinstance(node, Condition):
        if node.is_attribute:
            return _attribute_condition(node, d)
        return _column_condition(node, d)
    assert isinstance(node, Group)
    children = [_compile(item, d) for item in node.items]
    if node.kind == "all":
        return and_(true(), *children)
    if node.kind == "any":
        return or_(false(), *children)
    return not_(children[0])


def to_sql(node: Node, *, postgres: bool) -> Expr:
    """The filter as a WHERE clause over `contact` (the caller scopes it to one account)."""
    return _compile(node, _Dialect(postgres))
