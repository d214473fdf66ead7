"""Layer stacks: the receptive field, jump and start of every output, through every layer.

Pure Python (no NumPy), so ``convcli shape`` starts fast.

For output pixel ``o`` of a layer, its receptive field is the span of input
coordinates that can affect it on an unbounded input (so it may reach into the
padding: negative coordinates or coordinates past the end). It is computed
exactly by following, layer by layer backwards, the positions each output
reads: a conv or pool output ``o`` reads ``o*s - p + t*d`` for ``t < k``; a
transposed-convolution output ``o`` receives input ``i`` when
``i*s - p + t*d == o``. For conv and pool stacks this equals the textbook
recurrence ``rf_l = rf_(l-1) + d*(k-1)*jump_(l-1)``, ``jump_l = jump_(l-1)*s``,
``start_l = start_(l-1) - p*jump_(l-1)``. With dilation or a stride larger than
the kernel the field has holes; the span counts them.

The jump is the distance, in input pixels, between neighbouring outputs: the
product of the strides, divided by the stride of each transposed layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd

from ..errors import ShapeError
from ..shapes import Pair, format_pair
from .layers import Layer, layer_output, resolved_padding


def _read_positions(layer: Layer, axis: int, index: int) -> list[int]:
    """Positions of the layer's input (unbounded) that its output ``index`` depends on."""
    k, s, d = layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
    before = resolved_padding(layer)[axis][0]
    if layer.op == "transpose":
        return [(index + before - t * d) // s for t in range(k) if (index + before - t * d) % s == 0]
    return [index * s - before + t * d for t in range(k)]


def dependency_set(layers: list[Layer], axis: int, index: int = 0) -> set[int]:
    """Input coordinates (unbounded, padding included) that output ``index`` of the last layer depends on.

    >>> from convcli.teach.layers import parse_layer
    >>> sorted(dependency_set([parse_layer("conv:k=3,p=1"), parse_layer("conv:k=2,s=2")], 0))
    [-1, 0, 1, 2]
    """
    positions = {index}
    for layer in reversed(layers):
        positions = {p for q in positions for p in _read_positions(layer, axis, q)}
    return positions


class _Spans:
    """The span ``(low, high)`` of the inputs each output of a stack prefix depends on, for every output.

    Output ``q`` of a conv or pool layer reads positions ``q*s - p + t*d``, so
    shifting the output by one shifts the reads by ``s``; a transposed layer's
    output ``q + s`` reads what ``q`` reads shifted by one. Hence the span of
    output ``q + P`` is the span of ``q`` shifted by ``P*J`` (``J`` the jump), for
    a period ``P`` that each layer updates: ``P / gcd(P, s)`` for conv and pool,
    ``P*s`` for transpose. Storing the spans of ``P`` outputs and composing them
    one layer at a time costs ``O(P*k)`` per layer: linear in the number of layers
    (``P`` is at most the product of the transposed strides).
    """

    def __init__(self) -> None:
        self.period = 1
        self.jump = Fraction(1)
        self.spans: list[tuple[int, int] | None] = [(0, 0)]  # the input itself

    def span(self, index: int) -> tuple[int, int] | None:
        turns, residue = divmod(index, self.period)
        found = self.spans[residue]
        if found is None:
            return None
        shift = int(turns * self.period * self.jump)
        return (found[0] + shift, found[1] + shift)

    def add(self, layer: Layer, axis: int) -> None:
        stride = layer.stride[axis]
        if layer.op == "transpose":
            period, jump_ = self.period * stride, self.jump / stride
        else:
            period, jump_ = self.period // gcd(self.period, stride), self.jump * stride
        spans: list[tuple[int, int] | None] = []
        for index in range(period):
            reached = [s for s in map(self.span, _read_positions(layer, axis, index)) if s is not None]
            spans.append((min(s[0] for s in reached), max(s[1] for s in reached)) if reached else None)
        self.period, self.jump, self.spans = period, jump_, spans


def jump(layers: list[Layer], axis: int) -> Fraction:
    """Input pixels between neighbouring outputs: strides multiplied, transposed strides divided."""
    value = Fraction(1)
    for layer in layers:
        value = value / layer.stride[axis] if layer.op == "transpose" else value * layer.stride[axis]
    return value


@dataclass(frozen=True)
class StackRow:
    """One layer of a stack, per axis ``(H, W)``.

    ``field`` is the receptive-field span of output (0, 0) (``None`` on an axis
    where no input reaches it), ``start`` its first input coordinate and
    ``centre`` its middle.
    """

    layer: Layer
    input: Pair | None
    output: Pair | None
    padding: tuple[tuple[int, int], tuple[int, int]]
    field: tuple[int | None, int | None]
    jump: tuple[Fraction, Fraction]
    start: tuple[int | None, int | None]
    centre: tuple[Fraction | None, Fraction | None]


def run_stack(layers: list[Layer], size: Pair | None) -> list[StackRow]:
    """Sizes and receptive fields after each layer of a stack (linear in the number of layers).

    With ``size=None`` only the fields, jumps and starts are computed (they do
    not depend on the input size) and every size is ``None``.

    Raises
    ------
    ShapeError
        Naming the layer (1-based) that cannot take its input.

    >>> from convcli.teach.layers import parse_layer
    >>> rows = run_stack([parse_layer("conv:k=7,s=2,p=3"), parse_layer("pool:k=3,s=2,p=1")], (224, 224))
    >>> [(r.output[0], r.field[0], int(r.jump[0]), r.start[0]) for r in rows]
    [(112, 7, 2, -3), (56, 11, 4, -5)]
    """
    rows = []
    current = size
    spans = (_Spans(), _Spans())
    for number, layer in enumerate(layers, start=1):
        output = None
        if current is not None:
            try:
                output = layer_output(layer, current)
            except ShapeError as exc:
                raise ShapeError(f"layer {number} ({layer.spec}) on {format_pair(current)}: {exc}") from None
        fields: list[int | None] = []
        starts: list[int | None] = []
        centres: list[Fraction | None] = []
        for axis in range(2):
            spans[axis].add(layer, axis)
            found = spans[axis].span(0)
            if found is not None:
                low, high = found
                fields.append(high - low + 1)
                starts.append(low)
                centres.append(Fraction(low + high, 2))
            else:
                fields.append(None)
                starts.append(None)
                centres.append(None)
        rows.append(
            StackRow(
                layer,
                current,
                output,
                resolved_padding(layer),
                (fields[0], fields[1]),
                (spans[0].jump, spans[1].jump),
                (starts[0], starts[1]),
                (centres[0], centres[1]),
            )
        )
        current = output
    return rows


def format_fraction(value: Fraction | None) -> str:
    """``3``, ``-1.5``, ``1/3`` (``-`` for None).

    >>> format_fraction(Fraction(3, 2)), format_fraction(Fraction(1, 3)), format_fraction(Fraction(-4))
    ('1.5', '1/3', '-4')
    """
    if value is None:
        return "-"
    if value.denominator == 1:
        return str(value.numerator)
    if value.denominator in (2, 4, 5, 8, 10):
        return f"{float(value):g}"
    return f"{value.numerator}/{value.denominator}"
