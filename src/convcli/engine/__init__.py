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

Methods (all give the same numbers to rounding; ``auto`` picks by a cost model
measured on this machine, see :mod:`convcli.engine.plan`): ``direct`` (tap by
tap on 1-D views of row chunks, on all cores), ``separable`` (1-D passes per rank-1 term of
the kernel's SVD), ``box`` (running sums), ``fft`` (real FFTs in tiles).
Stride and dilation are computed natively by every method: only the kept
outputs, no zero-stuffed kernel. With OpenCV installed (``convcli[fast]``)
float32 work goes through its filter2D/sepFilter2D/boxFilter where that is
faster; ``CONVCLI_NO_OPENCV=1`` or ``backend='numpy'`` forces NumPy.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..errors import ParameterError
from ..shapes import PaddingSpec
from .borders import PAD_MODE_ALIASES, PAD_MODES, gather, pad2d, resolve_pad_mode
from .plan import BACKENDS, METHODS, Plan, is_box, opencv_available, plan_correlation, rank1_factors, separable_terms

Pair = tuple[int, int]

__all__ = [
    "per_channel",
    "BACKENDS",
    "METHODS",
    "PAD_MODES",
    "PAD_MODE_ALIASES",
    "Plan",
    "convolve2d",
    "correlate2d",
    "gather",
    "is_box",
    "opencv_available",
    "pad2d",
    "plan_correlation",
    "rank1_factors",
    "resolve_pad_mode",
    "separable_terms",
]


#: Prepared OpenCV calls by :func:`_fast_key`: a repeated call skips the planning.
_FAST_CALLS: dict[tuple, Callable[[np.ndarray], np.ndarray]] = {}


def _fast_key(image, kernel, stride, padding, dilation, pad_mode, pad_value, method, backend) -> tuple | None:  # type: ignore[no-untyped-def]
    """Everything a prepared OpenCV call depends on, for a C-contiguous float32 image; None otherwise."""
    if not (type(image) is np.ndarray and image.dtype == np.float32 and image.ndim == 2 and image.flags.c_contiguous):
        return None
    if type(kernel) is not np.ndarray:
        return None
    key = (
        image.shape,
        kernel.shape,
        kernel.dtype.str,
        kernel.tobytes(),
        stride,
        padding,
        dilation,
        pad_mode,
        pad_value,
        method,
        backend,
        os.environ.get("CONVCLI_NO_OPENCV", ""),
    )
    try:
        hash(key)
    except TypeError:  # lists as stride or padding
        return None
    return key


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
    backend: str = "auto",
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
    method : {'auto', 'direct', 'separable', 'fft', 'box'}
        All give the same numbers to rounding; ``auto`` picks the fastest.
    backend : {'auto', 'numpy', 'opencv'}
        ``auto`` uses OpenCV for float32 when importable (and
        ``CONVCLI_NO_OPENCV`` is unset); results agree to 1e-5 relative.

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
    fast_key = _fast_key(image, kernel, stride, padding, dilation, pad_mode, pad_value, method, backend)
    call = _FAST_CALLS.get(fast_key) if fast_key is not None else None
    if call is not None:
        # The same OpenCV call as last time (a loop over frames, a benchmark): skip the planning, about 10 us.
        out = call(image)
        if bias:
            out += out.dtype.type(bias)
        return out
    from . import strips

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
        dtype=dtype,
        backend=backend,
    )
    mode = resolve_pad_mode(pad_mode)
    source = image.astype(dtype, copy=False)
    geometry = plan.full or plan.geometry
    terms = list(plan.terms)
    if plan.backend == "opencv":
        from .opencv import correlate_opencv, prepared_opencv

        prepared = prepared_opencv(kernel, terms, plan.method, geometry, mode, pad_value)
        if prepared is None:  # strided, dilated, or a border OpenCV lacks: a padded copy or the polyphase split
            out = correlate_opencv(source, kernel, terms, plan.method, geometry, mode, pad_value)
        else:
            if fast_key is not None and plan.full is None and source is image:
                if len(_FAST_CALLS) >= 64:
                    _FAST_CALLS.clear()
                _FAST_CALLS[fast_key] = prepared
            out = prepared(np.ascontiguousarray(source))
    else:
        out = np.empty(geometry.output, dtype=dtype)
        if plan.method == "direct":
            strips.correlate_direct(source, kernel, geometry, mode, pad_value, out)
        elif plan.method == "separable":
            strips.correlate_separable(source, terms, geometry, mode, pad_value, out)
        elif plan.method == "box":
            strips.correlate_box(source, float(kernel.flat[0]), geometry, mode, pad_value, out)
        else:
            from .fft import correlate_fft  # only here: small jobs never need the FFT module

            correlate_fft(source, kernel, geometry, mode, pad_value, out)
    if plan.full is not None:
        # Computed at stride 1 (cheaper here than the kept outputs alone): keep every s-th output.
        (oh, ow), (sh, sw) = plan.geometry.output, plan.geometry.stride
        out = np.ascontiguousarray(out[: (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw])
    if bias:
        out += out.dtype.type(bias)
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


def per_channel(function, array: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``function`` on a 2-D array, or on each channel of an ``(H, W, C)`` array, the results stacked (``--color``)."""
    if array.ndim == 3:
        return np.stack([function(array[:, :, c]) for c in range(array.shape[2])], axis=2)
    return function(array)
