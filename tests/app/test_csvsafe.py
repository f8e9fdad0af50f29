"""The one CSV helper every export goes through (OWASP CSV injection)."""

import csv
import io

import pytest

from clarion import csvsafe


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        "+SUM(A1)",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1)",
        "\tx",
        "\rx",
        "=",
        "-",
        "+1-",
        "+1e3",
    ],
)
def test_formula_cells_get_a_quote(cell: str) -> None:
    assert csvsafe.neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Ann", "", "1", "+33612345678", "-1.5", "0.07", "a=b", " =x"])
def test_other_cells_are_untouched(cell: str) -> None:
    assert csvsafe.neutralise(cell) == cell


def test_non_strings_pass_through() -> None:
    assert csvsafe.neutralise(3) == 3 and csvsafe.neutralise(None) is None


def test_writer_neutralises_every_cell_and_quotes_as_csv_does() -> None:
    out = io.StringIO()
    w = csvsafe.writer(out)
    w.writerow(["=a", 'x,"y"', 2])
    w.writerows([["@b", "\r\n"]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["'=a", 'x,"y"', "2"],
        ["'@b", "'\r\n"],
    ]
