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

#: Largest upsampling factor accepted by :func:`bilinear_kernel` and :func:`nearest_kernel`.
MAX_UPSAMPLE_FACTOR = 256


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


def _pair(value: int | Pair | str, what: str, minimum: int) -> Pair:
    return parse_pair(value if not isinstance(value, list) else tuple(value), what, minimum)  # type: ignore[arg-type]


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
    size = _pair(input_size, "input size", 1)
    kernel_pair = _pair(kernel, "kernel size", 1)
    stride_pair = _pair(stride, "stride", 1)
    padding_pair = _pair(padding, "padding", 0)
    output_padding_pair = _pair(output_padding, "output padding", 0)
    dilation_pair = _pair(dilation, "dilation", 1)
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
    size = _pair(input_size, "input size", 1)
    kernel_pair = _pair(kernel, "kernel size", 1)
    wanted = _pair(requested, "output size", 1)
    stride_pair = _pair(stride, "stride", 1)
    padding_pair = _pair(padding, "padding", 0)
    dilation_pair = _pair(dilation, "dilation", 1)
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
    (sh, sw), (dh, dw), (ph, pw), (oh, ow) = geometry.stride, geometry.dilation, geometry.padding, geometry.output
    rows, cols = image.shape
    full = np.zeros(
        (
            max(ph + oh, (rows - 1) * sh + dh * (weights.shape[0] - 1) + 1),
            max(pw + ow, (cols - 1) * sw + dw * (weights.shape[1] - 1) + 1),
        ),
        dtype=dtype,
    )
    scratch = np.empty_like(values)
    for u in range(weights.shape[0]):
        for v in range(weights.shape[1]):
            weight = weights[u, v]
            if weight == 0:
                continue
            np.multiply(values, weight, out=scratch)
            full[u * dh : u * dh + sh * (rows - 1) + 1 : sh, v * dw : v * dw + sw * (cols - 1) + 1 : sw] += scratch
    out = full[ph : ph + oh, pw : pw + ow]
    if bias:
        out = out + dtype(bias)
    return np.ascontiguousarray(out)


# ---------------------------------------------------------------------------
# Upsampling kernels


def _factor(factor: int | Pair) -> Pair:
    pair = _pair(factor, "upsampling factor", 1)
    if max(pair) > MAX_UPSAMPLE_FACTOR:
        raise KernelError(f"upsampling factor {format_pair(pair)} is too large; use 1 to {MAX_UPSAMPLE_FACTOR}")
    return pair


def _bilinear_profile(factor: int) -> np.ndarray:
    size = 2 * factor - factor % 2
    centre = (size - 1) / 2.0
    # (f - |x - c|) / f is 1 - |x - c|/f, written so that thirds and the like round only once.
    return (factor - np.abs(np.arange(size, dtype=np.float64) - centre)) / factor


def bilinear_kernel(factor: int | Pair = 2) -> np.ndarray:
    """The standard bilinear upsampling kernel for a stride of ``factor`` (as used to initialise FCNs).

    Size ``2f - f % 2`` per axis, weights ``(1 - |x - c|/f)`` with ``c`` the
    centre, as an outer product of the two axes' profiles. With stride ``f``
    and padding ``f // 2`` a transposed convolution gives exactly ``f`` times
    the size and, away from the border, the values of bilinear interpolation
    (``align_corners=False``); the border fades towards the zero padding.

    >>> bilinear_kernel(2)[0]
    array([0.0625, 0.1875, 0.1875, 0.0625])
    >>> bilinear_kernel(3).shape
    (5, 5)
    """
    fh, fw = _factor(factor)
    return np.outer(_bilinear_profile(fh), _bilinear_profile(fw))


def nearest_kernel(factor: int | Pair = 2) -> np.ndarray:
    """Ones, ``f x f``: with stride ``f`` (and no padding) each pixel becomes an ``f x f`` block.

    >>> nearest_kernel((2, 3))
    array([[1., 1., 1.],
           [1., 1., 1.]])
    """
    fh, fw = _factor(factor)
    return np.ones((fh, fw))
