"""CSV written by the product, safe to open in a spreadsheet.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula, so a contact name or a provider's error text
could run one on the machine of whoever opens an export (OWASP, "CSV Injection"). Every
CSV the product writes goes through `writer()`, which prefixes such cells with a single
quote, as OWASP recommends. A plain number (`-1.5`, `+33612345678`) is left as it is: a
spreadsheet reads it as a number, never as a formula, and E.164 phones stay intact.
"""

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def neutralise(value: object) -> object:
    """The cell as it is safe to write: strings starting like a formula get a `'` prefix."""
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        if _PLAIN_NUMBER.fullmatch(value):
            return value
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` whose every cell goes through `neutralise`."""

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: _Writable) -> SafeWriter:
    return SafeWriter(out)
