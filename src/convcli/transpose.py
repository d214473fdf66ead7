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
from .shapes import Pair, format_pair, parse_pair, transpose_output_length


@dataclass(frozen=True)
class TransposeGeometry:
    """Resolved geometry of one transposed convolution; sizes are ``(H, W)``, padding symmetric per axis."""

    input: Pair
    kernel: Pair
    stride: Pair
    padding: Pair
    output_padding: Pair
    dilation: Pair
    output: Pair


def transpose_geometry(
    input_size: Pair,
    kernel: Pair,
    *,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
) -> TransposeGeometry:
    """Resolve the geometry (output size from :func:`convcli.shapes.transpose_output_length`).

    >>> transpose_geometry((4, 3), (3, 3), stride=2, padding=1, output_padding=(1, 0)).output
    (8, 5)
    """
    size = parse_pair(input_size, "input size", 1)
    kernel_pair = parse_pair(kernel, "kernel size", 1)
    stride_pair = parse_pair(stride, "stride", 1)
    padding_pair = parse_pair(padding, "padding", 0)
    output_padding_pair = parse_pair(output_padding, "output padding", 0)
    dilation_pair = parse_pair(dilation, "dilation", 1)
    output = tuple(
        transpose_output_length(
            size[a], kernel_pair[a], stride_pair[a], padding_pair[a], dilation_pair[a], output_padding_pair[a]
        )
        for a in range(2)
    )
    return TransposeGeometry(size, kernel_pair, stride_pair, padding_pair, output_padding_pair, dilation_pair, output)  # type: ignore[arg-type]


def reachable_lengths(length: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> dict[int, int]:
    """Output lengths reachable along one axis, mapped to the output padding that gives each.

    PyTorch accepts an output padding below the stride or below the dilation.

    >>> reachable_lengths(300, 4, stride=2, padding=1)
    {600: 0, 601: 1}
    """
    result = {}
    for extra in range(max(stride, dilation)):
        try:
            result[transpose_output_length(length, kernel, stride, padding, dilation, extra)] = extra
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
    padding: int | Pair = 0,
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
    padding_pair = parse_pair(padding, "padding", 0)
    dilation_pair = parse_pair(dilation, "dilation", 1)
    reachable = [
        reachable_lengths(size[a], kernel_pair[a], stride_pair[a], padding_pair[a], dilation_pair[a]) for a in range(2)
    ]
    if wanted[0] in reachable[0] and wanted[1] in reachable[1]:
        return (reachable[0][wanted[0]], reachable[1][wanted[1]])
    raise ShapeError(
        f"output size {format_pair(wanted)} cannot be reached from {format_pair(size)} with kernel "
        f"{format_pair(kernel_pair)}, stride {format_pair(stride_pair)}, padding {format_pair(padding_pair)}, "
        f"dilation {format_pair(dilation_pair)}: reachable heights {_span_text(reachable[0])}, widths "
        f"{_span_text(reachable[1])}; pick one of those or change --padding/--stride"
    )


def conv_transpose2d(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
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
    padding : int or (H, W)
        Rows/columns removed from each side of the full result.
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
