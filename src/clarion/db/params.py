"""Binding many values at once, the same way on both databases."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import BigInteger, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clarion.db.dialect import is_sqlite

CHUNK = 1000  # rows per multi-row statement: well under every driver's parameter limit
LOOKUP_CHUNK = 10_000  # ids per lookup (bound as one array parameter, see `_one_of`)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def as_arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Rows with the same keys as one list per key: the parameters of a PostgreSQL statement
    that reads them back as rows through `unnest(CAST(:key AS type[]), ...)`. Each list is one
    bind parameter, encoded at once, where an executemany would cost a Bind and an Execute per
    row (encoded on the event loop that also answers the API)."""
    return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}


def one_of(session: AsyncSession, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` bound as ONE parameter (a PostgreSQL array; a JSON array read by
    SQLite's json_each): hundreds of separate bind parameters cost more on the client than
    the indexed lookup itself."""
    if is_sqlite(session):
        table = func.json_each(bindparam("one_of", orjson.dumps(list(values)).decode()))
        return column.in_(select(table.table_valued("value").c.value))
    return column == any_(bindparam("one_of", list(values), type_=ARRAY(String)))


def id_in(session: AsyncSession, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids` for integer ids, bound as ONE parameter as in `one_of`."""
    if is_sqlite(session):
        table = func.json_each(bindparam("id_in", orjson.dumps(list(ids)).decode()))
        return column.in_(select(table.table_valued("value").c.value))
    return column == any_(bindparam("id_in", list(ids), type_=ARRAY(BigInteger)))


def id_rows(session: AsyncSession, ids: Sequence[int]) -> Any:
    """The ids as rows of one column `value`, bound as ONE parameter (PostgreSQL: `unnest`
    of an array; SQLite: `json_each`), for a statement that does something per id."""
    if is_sqlite(session):
        return func.json_each(bindparam("id_rows", orjson.dumps(list(ids)).decode())).table_valued(
            "value"
        )
    return (
        func.unnest(bindparam("id_rows", list(ids), type_=ARRAY(BigInteger)))
        .table_valued("value")
        .render_derived()
    )
