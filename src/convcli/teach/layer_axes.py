"""One layer, one axis: the output-size formula and what the windows read (``convcli shape``'s per-layer facts).

Pure Python (no NumPy), so ``convcli shape`` starts fast. :func:`axis_report`
writes the formula with the numbers put in, and finds the input rows no
window reads (and the option change that would reach them), the windows that
read only padding, the rows PyTorch's ceil mode drops, and for a transposed
layer the output paddings PyTorch accepts and the conv sizes that map back.
The sizes themselves come from :func:`~convcli.teach.layers.layer_output`
(that is, :mod:`convcli.shapes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ShapeError
from ..shapes import Pair, conv_geometry, conv_output_length, pool_output_length, transpose_output_length
from .layers import Layer, layer_output, resolved_padding

# Above this many windows per axis, the rows a window never reads are counted at the end only.
_EXACT_SCAN_LIMIT = 2_000_000


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

    >>> from convcli.teach.layers import parse_layer
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
