"""A layer stack's receptive fields as a record: the table ``convcli shape`` prints, its JSON and an HTML table.

Pure Python (no NumPy), so ``convcli shape`` starts fast. The numbers come from
:func:`convcli.teach.stacks.run_stack`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..shapes import Pair, format_pair, size_record
from .stacks import StackRow, format_fraction

NOTE_FIELD = (
    "field: span of input pixels (padding included) that output (0, 0) can depend on; jump: input pixels "
    "between neighbouring outputs; centre: input coordinate (row, column) of the middle of that span"
)
NOTE_TRANSPOSE = (
    "transpose layers: the jump divides by the stride (outputs are denser than inputs); the field is that "
    "of output (0, 0) exactly and changes with an output's position modulo the stride"
)
NOTE_GAPS = "-: no input pixel reaches output (0, 0) (a transposed kernel smaller than its stride leaves gaps)"
HEADER = ("#", "layer", "kernel", "stride", "padding", "dilation", "output", "field", "jump", "centre of (0,0)")


def padding_text(padding: tuple[tuple[int, int], tuple[int, int]]) -> str:
    """``1x1``, or ``top,bottom x left,right`` when uneven: ``0,1x0,1``."""
    (t, b), (left, r) = padding
    return f"{t}x{left}" if (t, left) == (b, r) else f"{t},{b}x{left},{r}"


def pair_text(values: tuple[Any, Any], fmt: Any = str) -> str:
    """``3`` when both axes agree, else ``3x1``."""
    first, second = fmt(values[0]), fmt(values[1])
    return first if first == second else f"{first}x{second}"


def _size(pair: Pair | None) -> str:
    return "-" if pair is None else format_pair(pair)


def _number(value: Fraction | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value.denominator == 1 else float(value)


@dataclass(frozen=True)
class ReceptiveField:
    """Sizes, jumps and receptive fields after each layer of a stack (from :func:`~convcli.teach.stacks.run_stack`).

    ``str()`` is the table ``convcli shape`` prints for the stack, :meth:`to_dict`
    its ``--json`` record, ``_repr_html_`` the table for notebooks.

    Attributes
    ----------
    input : (H, W) or None
        The input size; ``None`` when only fields and jumps were asked for
        (they do not depend on it), then every size is ``None``.
    rows : tuple of StackRow
        One per layer: its input and output size, resolved padding, and for
        output (0, 0) the receptive field ``field``, ``jump``, first input
        coordinate ``start`` and ``centre``, per axis ``(H, W)``.
    """

    input: Pair | None
    rows: tuple[StackRow, ...]

    @property
    def output(self) -> Pair | None:
        """Size after the last layer (``None`` without an input size)."""
        return self.rows[-1].output

    @property
    def field(self) -> tuple[int | None, int | None]:
        """Receptive field of output (0, 0) of the last layer, per axis."""
        return self.rows[-1].field

    @property
    def jump(self) -> tuple[Fraction, Fraction]:
        """Input pixels between neighbouring outputs of the last layer, per axis."""
        return self.rows[-1].jump

    @property
    def start(self) -> tuple[int | None, int | None]:
        """First input coordinate in that field (negative: in the padding), per axis."""
        return self.rows[-1].start

    def table(self) -> list[tuple[str, ...]]:
        """The cells of the text table, header first."""
        cells: list[tuple[str, ...]] = [HEADER, ("0", "input", "", "", "", "", _size(self.input), "1", "1", "(0, 0)")]
        for number, row in enumerate(self.rows, start=1):
            uneven = row.padding[0] != row.padding[1] or row.padding[0][0] != row.padding[0][1]
            cells.append(
                (
                    str(number),
                    row.layer.spec,
                    pair_text(row.layer.kernel),
                    pair_text(row.layer.stride),
                    padding_text(row.padding) if uneven else pair_text((row.padding[0][0], row.padding[1][0])),
                    pair_text(row.layer.dilation),
                    _size(row.output),
                    pair_text(row.field, lambda v: "-" if v is None else str(v)),
                    pair_text(row.jump, format_fraction),
                    f"({format_fraction(row.centre[0])}, {format_fraction(row.centre[1])})",
                )
            )
        return cells

    def notes(self) -> list[str]:
        """The lines printed under the table."""
        notes = [NOTE_FIELD]
        if any(row.layer.op == "transpose" for row in self.rows):
            notes.append(NOTE_TRANSPOSE)
        if any(None in row.field for row in self.rows):
            notes.append(NOTE_GAPS)
        return notes

    def __str__(self) -> str:
        cells = self.table()
        widths = [max(len(line[c]) for line in cells) for c in range(len(HEADER))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in cells]
        return "\n".join([*lines, *self.notes()])

    def to_dict(self) -> dict[str, Any]:
        """The ``convcli shape --json`` record of the stack."""
        return {
            "input": None if self.input is None else size_record(self.input),
            "output": None if self.output is None else size_record(self.output),
            "layers": [
                {
                    "spec": row.layer.spec,
                    "op": row.layer.op,
                    "input": None if row.input is None else size_record(row.input),
                    "kernel": size_record(row.layer.kernel),
                    "stride": list(row.layer.stride),
                    "padding": [list(p) for p in row.padding],
                    "dilation": list(row.layer.dilation),
                    "ceil_mode": row.layer.ceil_mode,
                    "output_padding": list(row.layer.output_padding),
                    "output": None if row.output is None else size_record(row.output),
                    "receptive_field": {"height": row.field[0], "width": row.field[1]},  # None: unbounded
                    "jump": [_number(j) for j in row.jump],
                    "field_start": list(row.start),
                    "centre": [_number(c) for c in row.centre],
                }
                for row in self.rows
            ],
        }

    def _repr_html_(self) -> str:
        cells = self.table()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>" for line in cells[1:])
        notes = "".join(f"<p><small>{html.escape(note)}</small></p>" for note in self.notes())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"
