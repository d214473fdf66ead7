"""Text matrices: parse and format 2-D grids of numbers.

Shared by kernel specs (``-k "0 1; 2 3"``), kernel files and ``.txt``/``.csv``
sources and outputs.

Format
------
* Rows are separated by newlines or ``;``; values by spaces, tabs or commas.
* ``#`` starts a comment that runs to the end of the line; blank lines are
  ignored.
* Every row must have the same number of values.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .errors import DecodeError

_SPLIT_VALUES = re.compile(r"[\s,]+")


def parse_matrix(text: str, what: str = "matrix", error: type[Exception] = DecodeError) -> np.ndarray:
    """Parse a text grid into a 2-D float64 array.

    Parameters
    ----------
    text : str
        The grid (see the module docstring).
    what : str
        Name of the thing parsed, used in error messages (``"kernel file k.txt"``).
    error : exception class
        Raised on a problem, with a message naming the line.

    Examples
    --------
    >>> parse_matrix("0 1; 2 3")
    array([[0., 1.],
           [2., 3.]])
    """
    rows: list[list[float]] = []
    row_lines: list[int] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0]
        for part in line.split(";"):
            tokens = [t for t in _SPLIT_VALUES.split(part.strip()) if t]
            if not tokens:
                continue
            values = []
            for token in tokens:
                try:
                    value = float(token)
                except ValueError:
                    raise error(f"{what}, line {line_number}: {token!r} is not a number") from None
                if not math.isfinite(value):
                    raise error(f"{what}, line {line_number}: {token!r} is not a finite number")
                values.append(value)
            if rows and len(values) != len(rows[0]):
                raise error(
                    f"{what}, line {line_number}: row {len(rows) + 1} has {len(values)} values but row 1 has "
                    f"{len(rows[0])} (line {row_lines[0]}); every row needs the same number"
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
