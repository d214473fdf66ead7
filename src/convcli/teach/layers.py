"""Layers and layer stacks: output sizes, receptive fields and what each window reaches.

Pure Python (no NumPy), so ``convcli shape`` starts fast. Every output size
comes from :mod:`convcli.shapes` (the single source of truth); this module adds
the explanation around it.

Layer specs
-----------
``conv:k=7,s=2,p=3``, ``pool:k=3,s=2,p=1,ceil``, ``transpose:k=4,s=2,p=1,op=0``.
Keys: ``k`` (kernel, required), ``s`` (stride), ``p`` (padding; ``same`` and
``valid`` for conv only), ``d`` (dilation), ``op`` (output padding, transpose
only), ``ceil`` (ceil mode, pool only). Values are ``N`` or ``HxW``; a padding
may also give four sides, ``p=TOP,BOTTOM,LEFT,RIGHT`` (``conv:k=4,s=2,p=1,2,1,2``:
the bare numbers after ``p=`` belong to it) or ``p=torch:LEFT,RIGHT,TOP,BOTTOM``.
Defaults are PyTorch's: stride 1 (pooling: the kernel size), padding 0, dilation 1.

A layer file holds one spec per line; ``#`` starts a comment, blank lines are
ignored.

Receptive fields
----------------
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

import difflib
import re
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd

from ..errors import ParameterError, ShapeError
from ..shapes import (
    PaddingSpec,
    Pair,
    conv_geometry,
    conv_output_length,
    format_pair,
    output_size,
    padding_sides,
    parse_padding,
    parse_pair,
    pool_output_length,
    resolve_padding,
    transpose_output_length,
)

OPS = ("conv", "pool", "transpose")

_KEYS = {
    "k": "kernel",
    "kernel": "kernel",
    "s": "stride",
    "stride": "stride",
    "p": "padding",
    "pad": "padding",
    "padding": "padding",
    "d": "dilation",
    "dilation": "dilation",
    "op": "output_padding",
    "output_padding": "output_padding",
    "output-padding": "output_padding",
    "ceil": "ceil_mode",
    "ceil_mode": "ceil_mode",
    "ceil-mode": "ceil_mode",
}

# Above this many windows per axis, the rows a window never reads are counted at the end only.
_EXACT_SCAN_LIMIT = 2_000_000


@dataclass(frozen=True)
class Layer:
    """One layer: ``op`` is ``conv``, ``pool`` or ``transpose``; pairs are ``(H, W)``.

    ``padding`` is a pair or, for conv, ``'same'``/``'valid'``.
    """

    op: str
    kernel: Pair
    stride: Pair
    padding: PaddingSpec = (0, 0)
    dilation: Pair = (1, 1)
    ceil_mode: bool = False
    output_padding: Pair = (0, 0)

    @property
    def spec(self) -> str:
        """Canonical spec text (``conv:k=7,s=2,p=3``), defaults left out.

        >>> make_layer("pool", 3, stride=2, padding=1).spec
        'pool:k=3,s=2,p=1'
        """
        parts = [f"k={_short(self.kernel)}"]
        default_stride = self.kernel if self.op == "pool" else (1, 1)
        if self.stride != default_stride:
            parts.append(f"s={_short(self.stride)}")
        if isinstance(self.padding, str):
            parts.append(f"p={self.padding}")
        elif isinstance(self.padding[0], tuple):
            (t, b), (left, r) = padding_sides(self.padding)
            parts.append(f"p={t},{b},{left},{r}")
        elif self.padding != (0, 0):
            parts.append(f"p={_short(self.padding)}")  # type: ignore[arg-type]
        if self.dilation != (1, 1):
            parts.append(f"d={_short(self.dilation)}")
        if self.output_padding != (0, 0):
            parts.append(f"op={_short(self.output_padding)}")
        if self.ceil_mode:
            parts.append("ceil")
        return f"{self.op}:{','.join(parts)}"


def _short(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else format_pair(pair)


def make_layer(
    op: str,
    kernel: Pair | int | str,
    *,
    stride: Pair | int | str | None = None,
    padding: PaddingSpec | int = 0,
    dilation: Pair | int | str = 1,
    ceil_mode: bool = False,
    output_padding: Pair | int | str = 0,
) -> Layer:
    """Build and check a :class:`Layer` (PyTorch defaults; pooling stride defaults to the kernel).

    Raises
    ------
    ParameterError
        For an unknown op or an option the op does not take.

    >>> layer = make_layer("conv", 7, stride=2, padding=3)
    >>> layer.kernel, layer.stride, layer.padding, layer.dilation
    ((7, 7), (2, 2), (3, 3), (1, 1))
    """
    if op not in OPS:
        close = difflib.get_close_matches(op, OPS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ParameterError(f"unknown layer type {op!r}: use conv, pool or transpose{hint}")
    kernel_pair = parse_pair(kernel, "kernel size")
    stride_pair = kernel_pair if stride is None and op == "pool" else parse_pair(stride or 1, "stride")
    dilation_pair = parse_pair(dilation, "dilation")
    output_padding_pair = parse_pair(output_padding, "output padding", minimum=0)
    pad = parse_padding(padding, "padding")
    if isinstance(pad, str) and op != "conv":
        raise ParameterError(f"padding {pad!r} is only for conv layers; give {op} padding as N, HxW or four sides")
    if ceil_mode and op != "pool":
        raise ParameterError(f"ceil mode is only for pool layers, not {op}")
    if output_padding_pair != (0, 0) and op != "transpose":
        raise ParameterError(f"output padding is only for transpose layers, not {op}")
    return Layer(op, kernel_pair, stride_pair, pad, dilation_pair, bool(ceil_mode), output_padding_pair)


_SPEC_RE = re.compile(r"^\s*([A-Za-z_-]+)\s*:\s*(.*?)\s*$")


def parse_layer(text: str) -> Layer:
    """Parse a layer spec such as ``conv:k=7,s=2,p=3`` (see the module docstring).

    >>> parse_layer("conv:k=3x1,p=1x0").kernel
    (3, 1)
    >>> parse_layer("pool:k=3,s=2,ceil").ceil_mode
    True
    """
    match = _SPEC_RE.match(text)
    if not match:
        raise ParameterError(f"layer {text!r} is not TYPE:k=N,...; e.g. conv:k=7,s=2,p=3 or pool:k=3,s=2")
    op = match.group(1).lower()
    values: dict[str, object] = {}
    items: list[str] = []
    for part in filter(None, (part.strip() for part in match.group(2).split(","))):
        if (
            re.fullmatch(r"-?\d+", part)
            and items
            and _KEYS.get(items[-1].partition("=")[0].strip().lower()) == "padding"
        ):
            items[-1] += f",{part}"  # p=1,2,0,1: the four sides of the padding
        else:
            items.append(part)
    for item in items:
        key, _, value = item.partition("=")
        key = key.strip().lower()
        name = _KEYS.get(key)
        if name is None:
            raise ParameterError(f"layer {text!r}: unknown key {key!r}; use k, s, p, d, op (transpose) or ceil (pool)")
        if name in values:
            raise ParameterError(f"layer {text!r}: {key!r} is given twice")
        value = value.strip()
        if name == "ceil_mode":
            if value.lower() not in ("", "1", "true", "yes", "0", "false", "no"):
                raise ParameterError(f"layer {text!r}: ceil takes no value (or true/false), got {value!r}")
            values[name] = value.lower() in ("", "1", "true", "yes")
        elif not value:
            raise ParameterError(f"layer {text!r}: {key!r} needs a value, e.g. {key}=3")
        else:
            values[name] = value
    if "kernel" not in values:
        raise ParameterError(f"layer {text!r} has no kernel size; add k=N, e.g. {op}:k=3")
    try:
        return make_layer(op, **values)  # type: ignore[arg-type]
    except ParameterError as exc:
        message = str(exc)
        if text in message:
            raise
        raise type(exc)(f"layer {text!r}: {message}") from None


def parse_layer_file(text: str, name: str = "layer file") -> list[Layer]:
    """Parse one layer spec per line; ``#`` comments and blank lines are ignored.

    >>> [layer.spec for layer in parse_layer_file("conv:k=3  # stem\\n\\npool:k=2")]
    ['conv:k=3', 'pool:k=2']
    """
    layers = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            layers.append(parse_layer(line))
        except ParameterError as exc:
            raise type(exc)(f"{name}, line {number}: {exc}") from None
    if not layers:
        raise ParameterError(f"{name} has no layers; write one spec per line, e.g. conv:k=3,p=1")
    return layers


# ---------------------------------------------------------------------------
# One layer: sizes and per-axis facts


def resolved_padding(layer: Layer) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` of a layer (``same`` split as PyTorch)."""
    return resolve_padding(layer.padding, layer.kernel, layer.dilation, layer.stride)


def layer_output(layer: Layer, size: Pair) -> Pair:
    """Output size of ``layer`` on an input of ``size``, from :mod:`convcli.shapes`.

    Raises
    ------
    ShapeError
        When the combination is invalid (the message says why).

    >>> layer_output(parse_layer("conv:k=3,s=3"), (5, 5))
    (1, 1)
    >>> layer_output(parse_layer("transpose:k=3,s=2,p=1,op=1"), (4, 4))
    (8, 8)
    """
    return output_size(  # type: ignore[return-value]
        size,
        layer.kernel,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        op=layer.op,
        ceil_mode=layer.ceil_mode,
        output_padding=layer.output_padding,
    )


@dataclass(frozen=True)
class AxisReport:
    """Everything ``convcli shape`` says about one axis of one layer.

    Attributes
    ----------
    size, kernel, stride, dilation, output : int
    padding : (before, after)
    formula : str
        The output-size formula with the numbers put in.
    dropped_window : int or None
        Pool ceil mode: start (in input coordinates) of the window PyTorch drops.
    unread : tuple of int
        Input indices no window reads (conv and pool).
    unread_tail : int
        How many of them lie after the last window's last tap (padding or ceil
        mode can bring windows there; the others are stepped over).
    covering : str or None
        The option change that makes windows reach the tail (``padding 1``,
        ``ceil mode``); empty when no allowed change can.
    padding_windows : tuple of int
        Output indices whose window reads only padding.
    conv_sizes : (low, high) or None
        Transpose: conv input sizes a conv with the same settings maps to ``size``.
    output_paddings : tuple of int
        Transpose: output-padding values PyTorch accepts (smaller than stride or dilation).
    matching_output_paddings : dict
        Transpose: output padding -> output size, for those a conv maps back to ``size``.
    """

    size: int
    kernel: int
    stride: int
    padding: tuple[int, int]
    dilation: int
    output: int
    formula: str
    dropped_window: int | None = None
    unread: tuple[int, ...] = ()
    unread_tail: int = 0
    covering: str | None = None
    padding_windows: tuple[int, ...] = ()
    conv_sizes: tuple[int, int] | None = None
    output_paddings: tuple[int, ...] = ()
    matching_output_paddings: dict[int, int] = field(default_factory=dict)


def _window_taps(start: int, kernel: int, dilation: int, size: int) -> range:
    """Tap indices ``t`` with ``0 <= start + t*dilation < size``."""
    low = 0 if start >= 0 else (-start + dilation - 1) // dilation
    high = min(kernel - 1, (size - 1 - start) // dilation) if start <= size - 1 else -1
    return range(low, high + 1)


def _reads(
    size: int, kernel: int, stride: int, pad_before: int, dilation: int, output: int
) -> tuple[list[int], list[int]]:
    """(input indices never read, output windows reading only padding) along one axis."""
    read = bytearray(size)
    empty = []
    for j in range(output):
        start = j * stride - pad_before
        taps = _window_taps(start, kernel, dilation, size)
        if not taps:
            empty.append(j)
            continue
        if dilation == 1:
            read[start + taps[0] : start + taps[-1] + 1] = b"\x01" * len(taps)
        else:
            for t in taps:
                read[start + t * dilation] = 1
    return [i for i in range(size) if not read[i]], empty


def _conv_formula(n: int, k: int, s: int, pads: tuple[int, int], d: int, out: int, rounding: str = "floor") -> str:
    before, after = pads
    padded = f"2*{before}" if before == after else f"{before} + {after}"
    span = str(k) if d == 1 else f"{d}*({k} - 1) - 1"
    return f"out = {rounding}(({n} + {padded} - {span}) / {s}) + 1"


def _tail_cover_conv(size: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int) -> str:
    pad = max(pads)
    geometry = conv_geometry((size, 1), (kernel, 1), (stride, 1), (pad, 0), (dilation, 1))
    return f"padding {geometry.covering_padding()[0]}"


def _tail_cover_pool(size: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int, ceil_mode: bool) -> str:
    """The smallest change (more bottom/right padding, ceil mode) that lets a window reach the last row."""
    before, pad = pads
    options = [(pad, True)] if not ceil_mode else []
    options += [(p, ceil_mode) for p in range(pad + 1, kernel // 2 + 1)]
    options += [(p, True) for p in range(pad + 1, kernel // 2 + 1)] if not ceil_mode else []
    for p, ceil in options:
        try:
            out = pool_output_length(size, kernel, stride, before, dilation, ceil, p)
        except ShapeError:
            continue
        unread, _ = _reads(size, kernel, stride, before, dilation, out)
        if not unread or unread[-1] != size - 1:
            change = []
            if p != pad:
                change.append(f"padding {p}" if before == pad else f"padding {p} at the end")
            if ceil and not ceil_mode:
                change.append("ceil mode")
            return " and ".join(change)
    return ""


def _transpose_formula(n: int, k: int, s: int, pads: tuple[int, int], d: int, op: int) -> str:
    span = f"{k}" if d == 1 else f"{d}*({k} - 1) + 1"
    extra = f" + {op}" if op else ""
    cut = f"2*{pads[0]}" if pads[0] == pads[1] else f"({pads[0]} + {pads[1]})"
    return f"out = ({n} - 1)*{s} - {cut} + {span}{extra}"


def axis_report(layer: Layer, size: Pair, axis: int) -> AxisReport:
    """Explain one axis of ``layer`` on an input of ``size`` (see :class:`AxisReport`).

    >>> report = axis_report(parse_layer("conv:k=3,s=3"), (5, 5), 0)
    >>> report.formula, report.unread
    ('out = floor((5 + 2*0 - 3) / 3) + 1 = 1', (3, 4))
    """
    n, k, s, d = size[axis], layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
    pads = resolved_padding(layer)[axis]
    out = layer_output(layer, size)[axis]
    if layer.op == "transpose":
        op = layer.output_padding[axis]
        matching = {}
        accepted = []
        for value in range(max(s, d)):
            try:
                m = transpose_output_length(n, k, s, pads[0], d, value, pads[1])
            except ShapeError:
                continue
            accepted.append(value)
            try:
                if conv_output_length(m, k, s, pads[0], pads[1], d) == n:
                    matching[value] = m
            except ShapeError:
                pass
        sizes = (min(matching.values()), max(matching.values())) if matching else None
        return AxisReport(
            n,
            k,
            s,
            pads,
            d,
            out,
            f"{_transpose_formula(n, k, s, pads, d, op)} = {out}",
            conv_sizes=sizes,
            output_paddings=tuple(accepted),
            matching_output_paddings=matching,
        )
    dropped = None
    if layer.op == "pool" and layer.ceil_mode:
        numerator = n + pads[0] + pads[1] - (d * (k - 1) + 1)
        ceil_count = -(-numerator // s) + 1
        formula = _conv_formula(n, k, s, pads, d, out, "ceil")
        if ceil_count != out:
            dropped = (ceil_count - 1) * s - pads[0]
            formula += f" - 1 = {out}"
        else:
            formula += f" = {out}"
    else:
        formula = f"{_conv_formula(n, k, s, pads, d, out)} = {out}"
    if out * k <= _EXACT_SCAN_LIMIT:
        unread, empty = _reads(n, k, s, pads[0], d, out)
    else:  # huge: only the tail, from the last window's last tap
        last = (out - 1) * s - pads[0] + d * (k - 1)
        unread, empty = list(range(max(0, last + 1), n)), []
    # The tail: real rows after the last tap of the last window (padding can bring windows there).
    tail = min(n, max(0, n - 1 - ((out - 1) * s - pads[0] + d * (k - 1))))
    covering = None
    if tail:
        if layer.op == "conv":
            covering = _tail_cover_conv(n, k, s, pads, d)
        else:
            covering = _tail_cover_pool(n, k, s, pads, d, layer.ceil_mode)
    return AxisReport(
        n,
        k,
        s,
        pads,
        d,
        out,
        formula,
        dropped,
        tuple(unread),
        tail,
        covering,
        tuple(empty),
    )


def layer_report(layer: Layer, size: Pair) -> tuple[AxisReport, AxisReport]:
    """:func:`axis_report` for rows and columns."""
    return (axis_report(layer, size, 0), axis_report(layer, size, 1))


# ---------------------------------------------------------------------------
# Stacks and receptive fields


def _read_positions(layer: Layer, axis: int, index: int) -> list[int]:
    """Positions of the layer's input (unbounded) that its output ``index`` depends on."""
    k, s, d = layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
    before = resolved_padding(layer)[axis][0]
    if layer.op == "transpose":
        return [(index + before - t * d) // s for t in range(k) if (index + before - t * d) % s == 0]
    return [index * s - before + t * d for t in range(k)]


def dependency_set(layers: list[Layer], axis: int, index: int = 0) -> set[int]:
    """Input coordinates (unbounded, padding included) that output ``index`` of the last layer depends on.

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
