"""The numerical engine: 2-D cross-correlation and convolution on arrays.

Conventions
-----------
* :func:`correlate2d` does **not** flip the kernel (as ``torch.nn.functional.conv2d``,
  ``scipy.ndimage.correlate`` and OpenCV's ``filter2D``)::

      out[i, j] = bias + sum_{u,v} K[u, v] * Xpad[i*sh + u*dh, j*sw + v*dw]

* :func:`convolve2d` is :func:`correlate2d` with the kernel flipped by 180
  degrees; with no padding it equals ``scipy.signal.convolve2d(mode="valid")``.
* Output size per axis: ``floor((M + p_before + p_after - d*(k-1) - 1)/s) + 1``,
  computed by :func:`convcli.shapes.conv_geometry` (the single source of truth).
* Border modes (names as NumPy/PyTorch; aliases in :data:`PAD_MODE_ALIASES`):
  ``zeros``, ``constant`` (with a value), ``reflect`` (edge not repeated),
  ``symmetric`` (edge repeated), ``replicate``, ``circular``.
* Computation happens in the input's floating dtype (float32 stays float32);
  integer input is computed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import KernelError, ParameterError
from .shapes import ConvGeometry, PaddingSpec, conv_geometry

Pair = tuple[int, int]

#: Canonical border modes and the ``numpy.pad`` mode that implements each.
PAD_MODES: dict[str, str] = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "circular": "wrap",
}

#: Other libraries' unambiguous names for the same borders. SciPy's ``reflect``
#: is *not* an alias: it means ``symmetric`` there and ``reflect`` here.
PAD_MODE_ALIASES: dict[str, str] = {
    "zero": "zeros",
    "grid-constant": "constant",  # SciPy
    "mirror": "reflect",  # SciPy ndimage
    "reflect101": "reflect",  # OpenCV BORDER_REFLECT_101
    "reflect-101": "reflect",
    "reflect_101": "reflect",
    "border-reflect-101": "reflect",
    "border_reflect_101": "reflect",
    "border-default": "reflect",
    "grid-mirror": "symmetric",  # SciPy ndimage (its 'reflect')
    "border-reflect": "symmetric",  # OpenCV BORDER_REFLECT
    "border_reflect": "symmetric",
    "half-symmetric": "symmetric",
    "edge": "replicate",  # NumPy
    "nearest": "replicate",  # SciPy ndimage
    "border-replicate": "replicate",  # OpenCV
    "border_replicate": "replicate",
    "wrap": "circular",  # NumPy, SciPy
    "grid-wrap": "circular",  # SciPy ndimage
    "border-wrap": "circular",  # OpenCV
    "border_wrap": "circular",
    "periodic": "circular",
}

METHODS = ("auto", "direct", "separable", "fft")

# Kernels with at most this many taps are applied tap by tap; above it a
# separable kernel is split in two 1-D passes, any other goes through the FFT.
_DIRECT_MAX_TAPS = 25
_FFT_MIN_TAPS = 100


def resolve_pad_mode(name: str) -> str:
    """Canonical border-mode name for ``name`` (case-insensitive, aliases accepted).

    >>> resolve_pad_mode("mirror"), resolve_pad_mode("edge"), resolve_pad_mode("wrap")
    ('reflect', 'replicate', 'circular')
    """
    key = name.strip().lower()
    if key in PAD_MODES:
        return key
    if key in PAD_MODE_ALIASES:
        return PAD_MODE_ALIASES[key]
    choices = ", ".join(PAD_MODES)
    raise ParameterError(f"unknown pad mode {name!r}; use one of {choices} (or an alias listed in the README)")


def pad2d(
    image: np.ndarray, padding: tuple[tuple[int, int], tuple[int, int]], mode: str = "zeros", value: float = 0.0
) -> np.ndarray:
    """Pad a 2-D array; ``mode`` is a canonical or alias border name (see the module docstring).

    ``reflect``, ``symmetric`` and ``circular`` padding wider than the image
    repeat the pattern as ``numpy.pad`` does.
    """
    canonical = resolve_pad_mode(mode)
    if padding == ((0, 0), (0, 0)):
        return image
    if canonical == "zeros":
        return np.pad(image, padding, mode="constant", constant_values=0)
    if canonical == "constant":
        return np.pad(image, padding, mode="constant", constant_values=value)
    return np.pad(image, padding, mode=PAD_MODES[canonical])  # type: ignore[call-overload]


def rank1_factors(kernel: np.ndarray, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray] | None:
    """Split a rank-1 kernel exactly into ``column (kh,)`` and ``row (kw,)`` with ``outer(column, row) == kernel``.

    The factors are read off the kernel itself (the column through its largest
    entry, and that entry's row divided by it), so integer kernels such as
    Sobel give integer factors and exact results. ``None`` when the kernel is
    not rank 1 to within ``rtol`` of its largest entry.

    >>> rank1_factors(np.array([[1., 0., -1.]] * 3))
    (array([1., 1., 1.]), array([ 1.,  0., -1.]))
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    peak_index = np.unravel_index(np.argmax(np.abs(kernel)), kernel.shape)
    peak = kernel[peak_index]
    if peak == 0:
        return None
    # Sign chosen so the column's largest entry is positive ([1 2 1] x [-1 0 1] for Sobel).
    sign = 1.0 if peak > 0 else -1.0
    column = sign * kernel[:, peak_index[1]]
    row = sign * kernel[peak_index[0], :] / peak
    if np.max(np.abs(np.outer(column, row) - kernel)) > rtol * abs(peak):
        return None
    return column, row


@dataclass(frozen=True)
class Plan:
    """What :func:`correlate2d` will do: the geometry and the method with the reason."""

    geometry: ConvGeometry
    method: str
    reason: str


def plan_correlation(
    input_size: Pair,
    kernel: np.ndarray,
    *,
    stride: Pair = (1, 1),
    padding: PaddingSpec = (0, 0),
    dilation: Pair = (1, 1),
    method: str = "auto",
) -> Plan:
    """Resolve geometry and choose the method (``auto`` picks by kernel size and separability)."""
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.size == 0:
        raise KernelError(f"kernel must be a non-empty 2-D array, got shape {kernel.shape}")
    geometry = conv_geometry(input_size, (kernel.shape[0], kernel.shape[1]), stride, padding, dilation)
    taps = kernel.size
    separable = rank1_factors(kernel) is not None
    if method == "separable" and not separable:
        raise ParameterError("method 'separable' needs a rank-1 kernel; this one is not (use auto, direct or fft)")
    if method != "auto":
        return Plan(geometry, method, "requested")
    if taps <= _DIRECT_MAX_TAPS:
        return Plan(geometry, "direct", f"{taps} taps <= {_DIRECT_MAX_TAPS}")
    if separable:
        return Plan(geometry, "separable", "the kernel is rank 1: two 1-D passes")
    if taps >= _FFT_MIN_TAPS:
        return Plan(geometry, "fft", f"{taps} taps of a non-separable kernel")
    return Plan(geometry, "direct", f"{taps} taps of a non-separable kernel, below the FFT threshold")


def _windows(array: np.ndarray, offset: Pair, step: Pair, count: Pair) -> np.ndarray:
    """View of ``array[offset + step*i]`` for ``i < count`` on both axes (no copy)."""
    return array[
        offset[0] : offset[0] + step[0] * (count[0] - 1) + 1 : step[0],
        offset[1] : offset[1] + step[1] * (count[1] - 1) + 1 : step[1],
    ]


def _correlate_direct(padded: np.ndarray, kernel: np.ndarray, geometry: ConvGeometry, out: np.ndarray) -> None:
    kernel = kernel.astype(out.dtype)
    scratch = np.empty_like(out)
    for u in range(kernel.shape[0]):
        for v in range(kernel.shape[1]):
            weight = kernel[u, v]
            if weight == 0:
                continue
            view = _windows(
                padded, (u * geometry.dilation[0], v * geometry.dilation[1]), geometry.stride, geometry.output
            )
            np.multiply(view, weight, out=scratch)
            out += scratch


def _correlate_separable(padded: np.ndarray, kernel: np.ndarray, geometry: ConvGeometry, out: np.ndarray) -> None:
    factors = rank1_factors(kernel)
    if factors is None:
        raise ParameterError("method 'separable' needs a rank-1 kernel; this one is not (use auto, direct or fft)")
    column, row = (f.astype(out.dtype) for f in factors)
    (sh, sw), (dh, dw), (oh, ow) = geometry.stride, geometry.dilation, geometry.output
    # Pass 1 (down the columns) keeps only the output rows; pass 2 the output columns.
    rows = np.zeros((oh, padded.shape[1]), dtype=out.dtype)
    scratch = np.empty_like(rows)
    for u, weight in enumerate(column):
        if weight != 0:
            np.multiply(padded[u * dh : u * dh + sh * (oh - 1) + 1 : sh, :], weight, out=scratch)
            rows += scratch
    scratch = np.empty_like(out)
    for v, weight in enumerate(row):
        if weight != 0:
            np.multiply(rows[:, v * dw : v * dw + sw * (ow - 1) + 1 : sw], weight, out=scratch)
            out += scratch


def _correlate_fft(padded: np.ndarray, kernel: np.ndarray, geometry: ConvGeometry, out: np.ndarray) -> None:
    from scipy import signal

    (dh, dw) = geometry.dilation
    if (dh, dw) != (1, 1):
        dilated = np.zeros(geometry.span, dtype=kernel.dtype)
        dilated[::dh, ::dw] = kernel
        kernel = dilated
    full = signal.fftconvolve(padded, kernel[::-1, ::-1].astype(out.dtype), mode="valid")
    out += _windows(full, (0, 0), geometry.stride, geometry.output)


_IMPLEMENTATIONS = {"direct": _correlate_direct, "separable": _correlate_separable, "fft": _correlate_fft}


def correlate2d(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: Pair | int = 1,
    padding: PaddingSpec | int = 0,
    dilation: Pair | int = 1,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    bias: float = 0.0,
    method: str = "auto",
) -> np.ndarray:
    """2-D cross-correlation (the kernel is not flipped), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    image : ndarray, shape (M, N)
        Input; float32 stays float32, other dtypes are computed in float64.
    kernel : ndarray, shape (kh, kw)
    stride, dilation : int or (H, W)
        At least 1.
    padding : int, (H, W), ``'same'`` or ``'valid'``
        Symmetric padding per axis; ``'same'`` as PyTorch (stride 1, the odd
        extra row/column at the bottom/right).
    pad_mode : str
        Border mode: ``zeros``, ``constant``, ``reflect``, ``symmetric``,
        ``replicate``, ``circular`` or an alias.
    pad_value : float
        Fill value for ``constant``.
    bias : float
        Added to every output element.
    method : {'auto', 'direct', 'separable', 'fft'}
        All give the same numbers to rounding; ``auto`` picks the fastest.

    Returns
    -------
    ndarray, shape (floor((M + 2p - d(k-1) - 1)/s) + 1, ...)

    Examples
    --------
    >>> x = np.arange(9.0).reshape(3, 3)
    >>> correlate2d(x, np.array([[0., 1.], [2., 3.]]))
    array([[19., 25.],
           [37., 43.]])
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ParameterError(f"the engine works on 2-D arrays; got shape {image.shape}")
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    kernel = np.asarray(kernel, dtype=np.float64)
    stride_pair = (stride, stride) if isinstance(stride, int) else tuple(stride)
    dilation_pair = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    padding_spec: PaddingSpec = (padding, padding) if isinstance(padding, int) else padding
    plan = plan_correlation(
        (image.shape[0], image.shape[1]),
        kernel,
        stride=stride_pair,  # type: ignore[arg-type]
        padding=padding_spec,
        dilation=dilation_pair,  # type: ignore[arg-type]
        method=method,
    )
    padded = pad2d(image.astype(dtype, copy=False), plan.geometry.padding, pad_mode, pad_value)
    out = np.full(plan.geometry.output, bias, dtype=dtype)
    # Implementations get the float64 kernel: separability is judged before rounding to float32.
    _IMPLEMENTATIONS[plan.method](padded, kernel, plan.geometry, out)
    return out


def convolve2d(image: np.ndarray, kernel: np.ndarray, **options) -> np.ndarray:
    """True 2-D convolution: :func:`correlate2d` with the kernel flipped by 180 degrees.

    Takes the same keyword options. With no padding it equals
    ``scipy.signal.convolve2d(image, kernel, mode="valid")``.

    The flipped kernel is ``[[3, 2], [1, 0]]``: ``0×3 + 1×2 + 3×1 + 4×0 = 5``.

    >>> convolve2d(np.arange(9.0).reshape(3, 3), np.array([[0., 1.], [2., 3.]]))
    array([[ 5., 11.],
           [23., 29.]])
    """
    return correlate2d(image, np.asarray(kernel)[::-1, ::-1], **options)


def apply_kernels(image: np.ndarray, kernels: Sequence[np.ndarray], *, convolve: bool = False, **options) -> np.ndarray:
    """Apply several kernels one after the other (a chain: blur, then edges)."""
    result = image
    for kernel in kernels:
        result = (convolve2d if convolve else correlate2d)(result, kernel, **options)
    return result
