"""Pooling on 2-D arrays: max, mean and min, with PyTorch's semantics.

Conventions
-----------
* Window ``(i, j)`` covers the padded input rows ``i*sh + u*dh`` and columns
  ``j*sw + v*dw`` for ``u < kh``, ``v < kw``; the stride defaults to the size.
* ``max`` equals ``torch.nn.functional.max_pool2d``: padding counts as
  ``-inf`` (it never wins), so a window that holds only padding gives ``-inf``
  as PyTorch does. ``min`` is ``-max(-x)``: its padding counts as ``+inf``.
* ``mean`` equals ``torch.nn.functional.avg_pool2d`` (no dilation): padding
  is zeros. With ``count_include_pad`` (the default) the divisor is the part
  of the window inside the padded input, so the piece of a ``ceil_mode``
  window that runs past the right/bottom padding is never counted; without
  it the divisor is the number of real input elements in the window.
* Output size per axis: :func:`convcli.shapes.pool_output_length`
  (``floor_or_ceil((n + 2p - d*(k-1) - 1)/s) + 1``, PyTorch's ceil_mode rule).
* Uneven padding ``((top, bottom), (left, right))``, which PyTorch's pooling
  has no argument for, is defined as padding the input so (with -inf, +inf or
  zeros, as ``F.pad``) and pooling it without padding; each side is at most
  half the window, and a ceil_mode window must start inside the input or the
  top/left padding (PyTorch's rule with ``p`` the top/left side).
* float32 input stays float32; anything else is computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, ShapeError
from .shapes import (
    Pair,
    Sides,
    effective_kernel,
    format_padding,
    format_pair,
    padding_sides,
    parse_padding,
    parse_pair,
    pool_output_length,
    trailing_unread,
)

POOL_OPS = ("max", "mean", "min")


@dataclass(frozen=True)
class PoolGeometry:
    """Resolved geometry of one 2-D pooling: sizes are ``(H, W)``.

    ``padding`` is the top and left side; ``padding_after`` the bottom and
    right when they differ (``None``: the same, PyTorch's symmetric padding).
    """

    input: Pair
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    ceil_mode: bool
    output: Pair
    padding_after: Pair | None = None

    @property
    def sides(self) -> Sides:
        """The padding per side, ``((top, bottom), (left, right))``."""
        after = self.padding if self.padding_after is None else self.padding_after
        return ((self.padding[0], after[0]), (self.padding[1], after[1]))

    def padding_text(self) -> str:
        """``1x1``, or ``top,bottom x left,right`` when uneven."""
        return format_padding(self.sides)

    @property
    def span(self) -> Pair:
        """Size of the dilated window."""
        return (effective_kernel(self.kernel[0], self.dilation[0]), effective_kernel(self.kernel[1], self.dilation[1]))

    def uncovered(self) -> Pair:
        """Real input rows and columns at the bottom/right that no window reaches (``(0, 0)`` when all are used)."""
        rows, cols = (
            trailing_unread(
                self.input[a], self.kernel[a], self.stride[a], self.padding[a], self.output[a], self.dilation[a]
            )
            for a in range(2)
        )
        return (rows, cols)


def pool_geometry(
    input_size: Pair,
    size: int | Pair,
    *,
    stride: int | Pair | None = None,
    padding: object = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
) -> PoolGeometry:
    """Resolve the geometry of a pooling (output size from :func:`convcli.shapes.pool_output_length`).

    Raises
    ------
    ShapeError
        When the padding is more than half the window size or the window does
        not fit the padded input.

    Examples
    --------
    >>> pool_geometry((5, 5), 3, ceil_mode=True).output
    (2, 2)
    >>> pool_geometry((5, 4), (2, 2)).uncovered()
    (1, 0)
    """
    kernel = parse_pair(size, "pool size", 1)
    stride_pair = kernel if stride is None else parse_pair(stride, "stride", 1)
    sides = padding_sides(parse_padding(padding, "padding", named=False))  # type: ignore[arg-type]
    dilation_pair = parse_pair(dilation, "dilation", 1)
    output = tuple(
        pool_output_length(
            input_size[a], kernel[a], stride_pair[a], sides[a][0], dilation_pair[a], ceil_mode, sides[a][1]
        )
        for a in range(2)
    )
    before, after = (sides[0][0], sides[1][0]), (sides[0][1], sides[1][1])
    return PoolGeometry(
        input=(int(input_size[0]), int(input_size[1])),
        kernel=kernel,
        stride=stride_pair,
        padding=before,
        dilation=dilation_pair,
        ceil_mode=bool(ceil_mode),
        output=output,  # type: ignore[arg-type]
        padding_after=None if after == before else after,
    )


def _pad_for_windows(image: np.ndarray, geometry: PoolGeometry, fill: float) -> np.ndarray:
    """Pad with ``fill`` so that every window, including a ceil_mode window past the padding, is inside the array."""
    pads = []
    for axis in range(2):
        needed = geometry.stride[axis] * (geometry.output[axis] - 1) + geometry.span[axis]
        before = geometry.padding[axis]
        after = max(0, needed - before - image.shape[axis])
        pads.append((before, after))
    if pads == [(0, 0), (0, 0)]:
        return image
    return np.pad(image, pads, mode="constant", constant_values=fill)


# Bytes of the row buffer one strip uses (a quarter of the 1 MiB L2 of the machines measured).
_STRIP_BYTES = 1 << 18
# Below this many outputs pooling runs in the calling thread.
_PARALLEL_MIN_OUTPUTS = 1 << 16


def _reduce_strip(
    padded: np.ndarray, geometry: PoolGeometry, ufunc: np.ufunc, out: np.ndarray, start: int, stop: int
) -> None:
    """Reduce the windows of output rows ``start:stop`` into ``out[start:stop]``: down the rows, then the columns."""
    (sh, sw), (dh, dw), (kh, kw), ow = geometry.stride, geometry.dilation, geometry.kernel, geometry.output[1]
    count = stop - start
    first = start * sh
    rows = np.empty((count, padded.shape[1]), dtype=out.dtype)
    np.copyto(rows, padded[first : first + sh * (count - 1) + 1 : sh, :])
    for u in range(1, kh):
        top = first + u * dh
        ufunc(rows, padded[top : top + sh * (count - 1) + 1 : sh, :], out=rows)
    target = out[start:stop]
    np.copyto(target, rows[:, 0 : sw * (ow - 1) + 1 : sw])
    for v in range(1, kw):
        ufunc(target, rows[:, v * dw : v * dw + sw * (ow - 1) + 1 : sw], out=target)


def _reduce_windows(padded: np.ndarray, geometry: PoolGeometry, ufunc: np.ufunc) -> np.ndarray:
    """Reduce every window with ``ufunc`` (maximum, minimum or add), separably: down the rows, then along the columns.

    Works in strips of output rows (each with a cache-sized row buffer) on all
    cores; every output element sees the same operations in the same order
    whatever the strips, so the result does not depend on them.
    """
    from . import parallel

    oh, ow = geometry.output
    out = np.empty((oh, ow), dtype=padded.dtype)
    per_strip = max(1, _STRIP_BYTES // max(1, padded.shape[1] * padded.itemsize))
    tasks = [(padded, geometry, ufunc, out, start, min(oh, start + per_strip)) for start in range(0, oh, per_strip)]
    parallel.run_parallel(tasks, _reduce_strip, parallel=oh * ow >= _PARALLEL_MIN_OUTPUTS)
    return out


def _mean_divisors(
    length: int, kernel: int, stride: int, padding: int | tuple[int, int], count: int, include_pad: bool
) -> np.ndarray:
    """Per-window element counts along one axis, exactly as PyTorch's avg_pool2d divides.

    ``padding`` is one side's amount (both sides) or ``(before, after)``: a
    window is clipped to the padded input ``[-before, length + after)``.
    """
    before, after = padding if isinstance(padding, tuple) else (padding, padding)
    start = np.arange(count, dtype=np.int64) * stride - before
    end = np.minimum(start + kernel, length + after)
    if include_pad:
        return end - start
    return np.minimum(end, length) - np.maximum(start, 0)


def pool2d(
    image: np.ndarray,
    op: str = "max",
    *,
    size: int | Pair = 2,
    stride: int | Pair | None = None,
    padding: object = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Max, mean or min pooling of a 2-D array (PyTorch ``max_pool2d`` / ``avg_pool2d`` semantics).

    Parameters
    ----------
    image : ndarray, shape (M, N)
        Input; float32 stays float32, other dtypes are computed in float64.
    op : {'max', 'mean', 'min'}
        ``max`` pads with ``-inf``, ``min`` with ``+inf`` (it is ``-max(-x)``),
        ``mean`` with zeros.
    size : int or (H, W)
        Window size.
    stride : int or (H, W), optional
        Step between windows; default: the window size.
    padding : int, (H, W) or per side
        Added on both sides of each axis; at most half the window size.
        ``((top, bottom), (left, right))`` or ``"TOP,BOTTOM,LEFT,RIGHT"``:
        each side its own amount (see the module docstring).
    dilation : int or (H, W)
        Spacing between window taps (``max`` and ``min`` only, as PyTorch).
    ceil_mode : bool
        Round the output size up: one more window when the last one would
        start inside the input or the left padding.
    count_include_pad : bool
        ``mean`` only: divide by the window's size inside the padded input
        (``True``, PyTorch's default) or by its real input elements.

    Returns
    -------
    ndarray, shape (pool_output_length(M, ...), pool_output_length(N, ...))

    Raises
    ------
    ParameterError
        For an unknown ``op`` or a dilation with ``mean``.
    ShapeError
        When the padding is more than half the size or the window does not fit.

    Examples
    --------
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> pool2d(x, "max", size=2)
    array([[ 5.,  7.],
           [13., 15.]])
    >>> pool2d(x, "mean", size=2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> pool2d(np.arange(3.0).reshape(1, 3), "mean", size=(1, 2), ceil_mode=True)
    array([[0.5, 2. ]])
    """
    if op not in POOL_OPS:
        raise ParameterError(f"unknown pooling op {op!r}; use one of {', '.join(POOL_OPS)}")
    image = np.asarray(image)
    if image.ndim != 2:
        raise ParameterError(f"pooling works on 2-D arrays; got shape {image.shape}")
    geometry = pool_geometry(
        (image.shape[0], image.shape[1]), size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    if op == "mean" and geometry.dilation != (1, 1):
        raise ParameterError(
            f"mean pooling has no dilation (got {format_pair(geometry.dilation)}), as torch avg_pool2d; "
            "drop --dilation or use --op max/min"
        )
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    values = image.astype(dtype, copy=False)
    if op == "max":
        return _reduce_windows(_pad_for_windows(values, geometry, -np.inf), geometry, np.maximum)
    if op == "min":  # min(a, b) == -max(-a, -b): no negated copy of the input
        return _reduce_windows(_pad_for_windows(values, geometry, np.inf), geometry, np.minimum)
    sums = _reduce_windows(_pad_for_windows(values, geometry, 0.0), geometry, np.add)
    counts = [
        _mean_divisors(
            geometry.input[a],
            geometry.kernel[a],
            geometry.stride[a],
            geometry.sides[a],
            geometry.output[a],
            count_include_pad,
        )
        for a in range(2)
    ]
    if min(counts[0].min(), counts[1].min()) < 1:  # cannot happen with PyTorch's rules; guard the division
        raise ShapeError("a pooling window holds no input element; reduce the padding")
    if counts[0].min() == counts[0].max() and counts[1].min() == counts[1].max():  # one divisor: in place
        sums /= dtype(counts[0][0] * counts[1][0])
        return sums
    return sums / np.outer(counts[0], counts[1]).astype(dtype)
