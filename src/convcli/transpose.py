"""Transposed convolution (one channel) and the kernels that make it an upsampler.

Conventions
-----------
* :func:`conv_transpose2d` equals ``torch.nn.functional.conv_transpose2d``
  with one input and one output channel. Every input pixel scatters a copy of
  the kernel (not flipped) scaled by its value::

      full[i*sh + u*dh, j*sw + v*dw] += X[i, j] * K[u, v]
      out = full[ph : ph + out_h, pw : pw + out_w] + bias

  so ``padding`` *removes* rows/columns on each side and ``output_padding``
  adds rows/columns at the bottom/right only (they receive no scattered value
  beyond what the kernel reaches; the bias still applies).
* Uneven padding ``((top, bottom), (left, right))``, which PyTorch has no
  argument for, cuts ``top`` rows from the top and ``bottom`` from the bottom
  of ``full``: the adjoint of a convolution padded that way, and what
  ``conv_transpose2d(padding=0)`` followed by the slice
  ``[top : H - bottom, left : W - right]`` gives.
* It is the adjoint of :func:`convcli.engine.correlate2d` with the same
  kernel, stride, padding and dilation: ``<correlate2d(x, K), y> ==
  <conv_transpose2d(y, K), x>`` when ``output_padding`` makes the shapes match.
* Output size per axis: :func:`convcli.shapes.transpose_output_length`,
  ``(n - 1)*s - 2p + d*(k - 1) + output_padding + 1``.
* float32 input stays float32; anything else is computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import KernelError, ParameterError, ShapeError
from .shapes import (
    Pair,
    Sides,
    effective_kernel,
    format_padding,
    format_pair,
    padding_sides,
    parse_padding,
    parse_pair,
    sides_of,
    transpose_output_length,
)


@dataclass(frozen=True)
class TransposeGeometry:
    """Resolved geometry of one transposed convolution; sizes are ``(H, W)``.

    ``padding`` is the cut at the top and left; ``padding_after`` the cut at
    the bottom and right when it differs (``None``: the same as ``padding``,
    PyTorch's symmetric padding).
    """

    input: Pair
    kernel: Pair
    stride: Pair
    padding: Pair
    output_padding: Pair
    dilation: Pair
    output: Pair
    padding_after: Pair | None = None

    @property
    def sides(self) -> Sides:
        """The cut per side, ``((top, bottom), (left, right))``."""
        after = self.padding if self.padding_after is None else self.padding_after
        return ((self.padding[0], after[0]), (self.padding[1], after[1]))

    def padding_text(self) -> str:
        """``1x1``, or ``top,bottom x left,right`` when uneven."""
        return format_padding(self.sides)


def _sides(padding: object) -> Sides:
    return padding_sides(parse_padding(padding, "padding", named=False))  # type: ignore[arg-type]


def transpose_geometry(
    input_size: Pair,
    kernel: Pair,
    *,
    stride: int | Pair = 1,
    padding: object = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
) -> TransposeGeometry:
    """Resolve the geometry (output size from :func:`convcli.shapes.transpose_output_length`).

    ``padding`` is any padding spec of :func:`convcli.shapes.parse_padding`
    but the names: ``N``, ``(H, W)`` or per side.

    >>> transpose_geometry((4, 3), (3, 3), stride=2, padding=1, output_padding=(1, 0)).output
    (8, 5)
    >>> transpose_geometry((4, 3), (3, 3), stride=2, padding="1,0,1,1").output
    (8, 5)
    """
    size = parse_pair(input_size, "input size", 1)
    kernel_pair = parse_pair(kernel, "kernel size", 1)
    stride_pair = parse_pair(stride, "stride", 1)
    sides = _sides(padding)
    output_padding_pair = parse_pair(output_padding, "output padding", 0)
    dilation_pair = parse_pair(dilation, "dilation", 1)
    output = tuple(
        transpose_output_length(
            size[a], kernel_pair[a], stride_pair[a], sides[a][0], dilation_pair[a], output_padding_pair[a], sides[a][1]
        )
        for a in range(2)
    )
    before = (sides[0][0], sides[1][0])
    after = (sides[0][1], sides[1][1])
    return TransposeGeometry(
        size,
        kernel_pair,
        stride_pair,
        before,
        output_padding_pair,
        dilation_pair,
        output,  # type: ignore[arg-type]
        None if after == before else after,
    )


def factor_padding(kernel: Pair, stride: Pair, dilation: Pair = (1, 1)) -> tuple[Pair | Sides, Pair]:
    """The padding and output padding that make a transposed convolution exactly ``stride`` times the input.

    Per axis the full result is ``(n - 1)*s + d*(k - 1) + 1`` long, so
    ``c = d*(k - 1) + 1 - s`` rows must go: ``c // 2`` from each side when
    ``c`` is even (``bilinear:F`` at stride ``F`` gives ``F // 2``,
    ``nearest:F`` gives 0); when it is odd, ``(c + 1) // 2`` from each side
    and one row back as output padding (PyTorch can say that), or, where
    PyTorch refuses that output padding (stride and dilation 1), the cut
    ``(c + 1) // 2`` at the top and ``c // 2`` at the bottom; when the kernel
    is shorter than the stride, no padding and ``-c`` rows of output padding.

    Examples
    --------
    >>> factor_padding((4, 4), (2, 2))
    ((1, 1), (0, 0))
    >>> factor_padding((5, 5), (3, 3)), factor_padding((3, 3), (3, 3))
    (((1, 1), (0, 0)), ((0, 0), (0, 0)))
    >>> factor_padding((5, 5), (2, 2))
    ((2, 2), (1, 1))
    >>> factor_padding((4, 4), (1, 1))
    (((2, 1), (2, 1)), (0, 0))
    """
    cuts = []
    extras = []
    for axis in range(2):
        cut = effective_kernel(kernel[axis], dilation[axis]) - stride[axis]
        if cut < 0:
            cuts.append((0, 0))
            extras.append(-cut)
        elif cut % 2 == 0:
            cuts.append((cut // 2, cut // 2))
            extras.append(0)
        elif max(stride[axis], dilation[axis]) > 1:
            cuts.append(((cut + 1) // 2, (cut + 1) // 2))
            extras.append(1)
        else:
            cuts.append(((cut + 1) // 2, cut // 2))
            extras.append(0)
    return sides_of(cuts[0][0], cuts[0][1], cuts[1][0], cuts[1][1]), (extras[0], extras[1])


def reachable_lengths(
    length: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, pad_after: int | None = None
) -> dict[int, int]:
    """Output lengths reachable along one axis, mapped to the output padding that gives each.

    PyTorch accepts an output padding below the stride or below the dilation.

    >>> reachable_lengths(300, 4, stride=2, padding=1)
    {600: 0, 601: 1}
    """
    result = {}
    for extra in range(max(stride, dilation)):
        try:
            result[transpose_output_length(length, kernel, stride, padding, dilation, extra, pad_after)] = extra
        except ShapeError:
            continue
    return result


def _span_text(lengths: dict[int, int]) -> str:
    if not lengths:
        return "none"
    low, high = min(lengths), max(lengths)
    return str(low) if low == high else f"{low}..{high}"


def output_padding_for(
    input_size: Pair,
    kernel: Pair,
    requested: Pair,
    *,
    stride: int | Pair = 1,
    padding: object = 0,
    dilation: int | Pair = 1,
) -> Pair:
    """The output padding that makes a transposed convolution produce ``requested`` (``(H, W)``).

    This is what PyTorch's ``ConvTranspose2d(...)(x, output_size=...)`` does.

    Raises
    ------
    ShapeError
        When a size cannot be reached; the message lists the reachable sizes.

    Examples
    --------
    >>> output_padding_for((300, 200), (4, 4), (601, 400), stride=2, padding=1)
    (1, 0)
    """
    size = parse_pair(input_size, "input size", 1)
    kernel_pair = parse_pair(kernel, "kernel size", 1)
    wanted = parse_pair(requested, "output size", 1)
    stride_pair = parse_pair(stride, "stride", 1)
    sides = _sides(padding)
    dilation_pair = parse_pair(dilation, "dilation", 1)
    reachable = [
        reachable_lengths(size[a], kernel_pair[a], stride_pair[a], sides[a][0], dilation_pair[a], sides[a][1])
        for a in range(2)
    ]
    if wanted[0] in reachable[0] and wanted[1] in reachable[1]:
        return (reachable[0][wanted[0]], reachable[1][wanted[1]])
    raise ShapeError(
        f"output size {format_pair(wanted)} cannot be reached from {format_pair(size)} with kernel "
        f"{format_pair(kernel_pair)}, stride {format_pair(stride_pair)}, padding {format_padding(sides)}, "
        f"dilation {format_pair(dilation_pair)}: reachable heights {_span_text(reachable[0])}, widths "
        f"{_span_text(reachable[1])}; pick one of those or change --padding/--stride"
    )


def conv_transpose2d(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: int | Pair = 1,
    padding: object = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
    bias: float = 0.0,
) -> np.ndarray:
    """Transposed 2-D convolution of one channel, as ``torch.nn.functional.conv_transpose2d``.

    Parameters
    ----------
    image : ndarray, shape (M, N)
        Input; float32 stays float32, other dtypes are computed in float64.
    kernel : ndarray, shape (kh, kw)
        Scattered as is (not flipped), see the module docstring.
    stride, dilation : int or (H, W)
        At least 1.
    padding : int, (H, W) or per side
        Rows/columns removed from each side of the full result;
        ``((top, bottom), (left, right))`` or ``"TOP,BOTTOM,LEFT,RIGHT"`` cut
        each side by its own amount.
    output_padding : int or (H, W)
        Rows/columns added at the bottom/right; smaller than the stride or the
        dilation (PyTorch's rule).
    bias : float
        Added to every output element.

    Returns
    -------
    ndarray, shape ((M-1)*sh - 2*ph + dh*(kh-1) + oph + 1, ...)

    Examples
    --------
    >>> conv_transpose2d(np.array([[1., 2.]]), np.array([[1., 10.]]), stride=2)
    array([[ 1., 10.,  2., 20.]])
    >>> conv_transpose2d(np.array([[1., 2.]]), np.array([[1., 10.]]))
    array([[ 1., 12., 20.]])
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ParameterError(f"the transposed convolution works on 2-D arrays; got shape {image.shape}")
    weights = np.asarray(kernel, dtype=np.float64)
    if weights.ndim != 2 or weights.size == 0:
        raise KernelError(f"kernel must be a non-empty 2-D array, got shape {weights.shape}")
    geometry = transpose_geometry(
        (image.shape[0], image.shape[1]),
        (weights.shape[0], weights.shape[1]),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    values = image.astype(dtype, copy=False)
    weights = weights.astype(dtype)
    out = np.empty(geometry.output, dtype=dtype)
    _polyphase(values, weights, geometry, out)
    if bias:
        out += dtype(bias)
    return out


# ---------------------------------------------------------------------------
# Polyphase evaluation in row strips

# Bytes of the accumulator of one strip (a quarter of the 1 MiB L2 of the machines measured).
_STRIP_BYTES = 1 << 18
# Below this many outputs the work runs in the calling thread.
_PARALLEL_MIN_OUTPUTS = 1 << 16


def _axis_phases(length: int, out_length: int, kernel: int, stride: int, padding: int, dilation: int) -> list:
    """Per output phase ``b`` along one axis: ``(b, count, taps)`` with ``taps`` a list of ``(u, first, stop, src)``.

    Output index ``y = b + stride*t`` is row ``r = y + padding`` of the full
    result, which tap ``u`` reaches from input index ``(r - u*dilation)/stride``
    when that is a whole number in ``[0, length)``: for ``t`` in ``[first, stop)``
    the input index is ``src + t``.
    """
    phases = []
    for b in range(min(stride, out_length)):
        count = len(range(b, out_length, stride))
        r0 = b + padding
        taps = []
        for u in range(kernel):
            shift = r0 - u * dilation
            if shift % stride:
                continue
            src = shift // stride  # input index at t = 0
            first, stop = max(0, -src), min(count, length - src)
            if first < stop:
                taps.append((u, first, stop, src))
        phases.append((b, count, taps))
    return phases


def _polyphase_strip(
    values: np.ndarray, weights: np.ndarray, row_phases: list, col_phases: list, stride: Pair, out: np.ndarray,
    t0: int, t1: int,
) -> None:  # fmt: skip
    """Output rows ``b + stride*t`` for ``t0 <= t < t1`` of every row phase ``b``, all column phases."""
    sh, sw = stride
    for b, count, row_taps in row_phases:
        stop_t = min(t1, count)
        if stop_t <= t0:
            continue
        for c, width, col_taps in col_phases:
            acc = np.zeros((stop_t - t0, width), dtype=out.dtype)
            scratch = np.empty_like(acc)
            # Taps in the order (u, v) the scatter form adds them, from zero: the same sums, rounded alike.
            for u, first, stop, src in row_taps:
                lo, hi = max(first, t0), min(stop, stop_t)
                if lo >= hi:
                    continue
                for v, cfirst, cstop, csrc in col_taps:
                    weight = weights[u, v]
                    if weight == 0:
                        continue
                    part = scratch[lo - t0 : hi - t0, cfirst:cstop]
                    np.multiply(values[src + lo : src + hi, csrc + cfirst : csrc + cstop], weight, out=part)
                    target = acc[lo - t0 : hi - t0, cfirst:cstop]
                    np.add(target, part, out=target)
            out[b + sh * t0 : b + sh * (stop_t - 1) + 1 : sh, c::sw] = acc


def _polyphase(values: np.ndarray, weights: np.ndarray, geometry: TransposeGeometry, out: np.ndarray) -> None:
    """Fill ``out`` with the transposed convolution, one output phase at a time, in row strips on all cores.

    Output phase ``(b, c)`` (rows ``b::sh``, columns ``c::sw``) is a plain
    correlation of the input with the taps of the kernel that land on it, so
    no zero-stuffed or full-size intermediate is made; each output element
    gets the same products added in the same order as the scatter form.
    """
    from . import parallel

    (sh, sw), (dh, dw), (ph, pw), (oh, ow) = geometry.stride, geometry.dilation, geometry.padding, geometry.output
    row_phases = _axis_phases(values.shape[0], oh, weights.shape[0], sh, ph, dh)
    col_phases = _axis_phases(values.shape[1], ow, weights.shape[1], sw, pw, dw)
    per_strip = max(1, _STRIP_BYTES // max(1, ow * out.itemsize))
    longest = max(count for _, count, _ in row_phases)
    tasks = [
        (values, weights, row_phases, col_phases, (sh, sw), out, t0, min(longest, t0 + per_strip))
        for t0 in range(0, longest, per_strip)
    ]
    parallel.run_parallel(tasks, _polyphase_strip, parallel=oh * ow >= _PARALLEL_MIN_OUTPUTS)
