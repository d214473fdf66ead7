"""Text matrices: parse and format 2-D grids of numbers.

Shared by kernel specs (``-k "0 1; 2 3"``), kernel files and ``.txt``/``.csv``
sources and outputs.

Format
------
* Rows are separated by newlines or ``;``; values by spaces, tabs or commas.
* ``#`` starts a comment that runs to the end of the line; blank lines are
  ignored; a UTF-8 byte-order mark at the start (what some editors and
  spreadsheets write) is skipped.
* Every row must have the same number of values.
* The European spreadsheet CSV (values separated by ``;``, one row per line,
  ``1;0;-1``) is read as the grid it is: when the text has several lines (or
  is a ``.csv`` file, ``csv=True``) and every line holds single values
  separated by ``;``, ``;`` separates values, not rows. Decimal commas
  (``0,5``) and empty cells (``1;;3``) in such a grid are refused, never
  read as other numbers.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .errors import DecodeError

_SPLIT_VALUES = re.compile(r"[\s,]+")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")


def _check_mixed_separators(part: str, number: int, what: str, error: type[Exception]) -> None:
    """Refuse ``0,5 1,5``: spaces between values and commas inside them are decimal commas, which would
    otherwise be read as twice as many integers (``0 5 1 5``). ``1, 2, 3`` and ``1,2,3`` are fine."""
    groups = part.split()
    if len(groups) < 2 or any(g.startswith(",") or g.endswith(",") for g in groups):
        return
    inner = [g for g in groups if _DECIMAL_COMMA.match(g)]
    if inner:
        raise error(
            f"{what}, line {number}: {inner[0]!r} between spaces looks like a decimal comma; write "
            f"{inner[0].replace(',', '.')!r}, or separate values by commas or by spaces, not both"
        )


def _semicolon_grid(lines: list[tuple[int, str]], csv: bool) -> bool:
    """True when ``;`` separates values (a European CSV), not rows: several lines (or a .csv file), each one a row of
    single cells between semicolons, at least one with two cells."""
    if not lines or (len(lines) < 2 and not csv):
        return False
    several = False
    for _number, line in lines:
        cells = line.strip().rstrip(";").split(";")
        if any(len(cell.split()) > 1 for cell in cells):
            return False  # "1 2; 3 4" on a line: rows, as in an inline spec
        several = several or len(cells) > 1
    return several


def _grid_rows(lines: list[tuple[int, str]], what: str, error: type[Exception]) -> list[tuple[int, list[str]]]:
    """The cells of a semicolon-separated grid, one row per line; refuses decimal commas and empty cells."""
    rows = []
    for number, line in lines:
        cells = [cell.strip() for cell in line.strip().rstrip(";").split(";")]
        for position, cell in enumerate(cells, 1):
            if not cell:
                raise error(
                    f"{what}, line {number}: value {position} is empty (two semicolons in a row); fill in every cell"
                )
            if "," in cell:
                hint = (
                    f"{cell!r} has a decimal comma; write {cell.replace(',', '.')!r}"
                    if _DECIMAL_COMMA.match(cell)
                    else f"{cell!r} holds a comma in a semicolon-separated row; separate values one way"
                )
                raise error(f"{what}, line {number}: {hint} (or export the spreadsheet with points and commas)")
        rows.append((number, cells))
    return rows


def parse_matrix(
    text: str, what: str = "matrix", error: type[Exception] = DecodeError, *, csv: bool = False
) -> np.ndarray:
    """Parse a text grid into a 2-D float64 array.

    Parameters
    ----------
    text : str
        The grid (see the module docstring).
    what : str
        Name of the thing parsed, used in error messages (``"kernel file k.txt"``).
    error : exception class
        Raised on a problem, with a message naming the line.
    csv : bool
        The text is a ``.csv`` file: a single line of ``;``-separated values
        is one row (a European spreadsheet export), not a column.

    Examples
    --------
    >>> parse_matrix("0 1; 2 3")
    array([[0., 1.],
           [2., 3.]])
    >>> parse_matrix("\\ufeff1;0;-1\\n2;0;-2\\n").shape
    (2, 3)
    """
    text = text.removeprefix("\ufeff")
    lines = [(number, line.split("#", 1)[0]) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line.strip()]
    if _semicolon_grid(lines, csv):
        parts = _grid_rows(lines, what, error)
    else:
        parts = []
        for number, line in lines:
            for part in line.split(";"):
                _check_mixed_separators(part, number, what, error)
                tokens = [t for t in _SPLIT_VALUES.split(part.strip()) if t]
                if tokens:
                    parts.append((number, tokens))
    rows: list[list[float]] = []
    row_lines: list[int] = []
    for line_number, tokens in parts:
        values = []
        for token in tokens:
            try:
                value = float(token)
            except ValueError:
                hint = " (a byte-order mark inside the text?)" if "\ufeff" in token else ""
                if any(dash in token for dash in "\u2212\u2013\u2014"):
                    hint = " (a typographic minus or dash: type the ASCII minus -)"
                raise error(f"{what}, line {line_number}: {token!r} is not a number{hint}") from None
            if not math.isfinite(value):
                raise error(f"{what}, line {line_number}: {token!r} is not a finite number")
            values.append(value)
        if rows and len(values) != len(rows[0]):
            where = (
                f"row {len(rows) + 1} (line {line_number})" if line_number != row_lines[0] else f"row {len(rows) + 1}"
            )
            first = f"row 1 (line {row_lines[0]})" if line_number != row_lines[0] else "row 1"
            raise error(
                f"{what}: {where} has {len(values)} values but {first} has {len(rows[0])}; every row needs the "
                "same number"
            )
        rows.append(values)
        row_lines.append(line_number)
    if not rows:
        raise error(f"{what} has no numbers")
    return np.array(rows, dtype=np.float64)


def format_number(value: float) -> str:
    """Shortest text that reads back to the same float (``19.0`` -> ``19``, ``-0.0`` -> ``0``).

    >>> format_number(19.0), format_number(0.1), format_number(-0.0), format_number(1e-20)
    ('19', '0.1', '0', '1e-20')
    """
    value = value + 0.0  # -0.0 becomes 0.0
    if value != 0 and (abs(value) >= 1e16 or abs(value) < 1e-5):
        return np.format_float_scientific(value, trim="-", exp_digits=1)
    return np.format_float_positional(value, trim="-")


def format_matrix(array: np.ndarray, separator: str = " ", align: bool = False) -> str:
    """Write a 2-D array as text, one row per line, each value in its shortest exact form.

    With ``align`` the columns are right-aligned for reading on a terminal.

    >>> print(format_matrix(np.array([[19., 25.], [37., 43.]])))
    19 25
    37 43
    """
    # Iterating NumPy scalars keeps float32 values in their own shortest form.
    cells = [[format_number(v) for v in row] for row in np.atleast_2d(array)]
    if align and cells:
        widths = [max(len(row[c]) for row in cells) for c in range(len(cells[0]))]
        return "\n".join(separator.join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells)
    return "\n".join(separator.join(row) for row in cells)
