"""Arrays in, arrays out: :func:`filter`, :func:`pool` and :func:`upsample`, the one implementation.

The command line calls the same functions (``filter_array``, ``pool_array``,
``upsample_array``) with a settings record built once from its options; the
public functions below build that record from keyword arguments (checked by
:mod:`convcli.api.checks`; an upsampling's kernel and padding resolved by
:mod:`convcli.api.upsampling`). Every function works on a 2-D array
``(H, W)`` or, channel by channel, on an ``(H, W, C)`` array (what
``--color`` loads), and never changes its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import Plan, correlate2d, per_channel, plan_correlation
from ..kernels import Kernel
from ..shapes import Pair
from .checks import (
    _finite,
    _fix,
    _overflow_checked,
    _working_dtype,
    as_image,
    as_kernels,
    check_finite_result,
    geometry,
    pool_geometry_for,
    pool_settings,
    upsample_settings,
)
from .settings import FilterSettings, PoolSettings, UpsampleSettings
from .upsampling import upsample_geometry, upsampling_kernel

if TYPE_CHECKING:  # pooling and transpose are imported by the functions of pool and upsample (start-up, issue 19)
    from ..pooling import PoolGeometry
    from ..transpose import TransposeGeometry


# ---------------------------------------------------------------------------
# filter


@dataclass(frozen=True)
class Filtered:
    """What :func:`filter_array` did: the result, and the kernel and plan of each step (in order)."""

    array: np.ndarray
    kernels: tuple[Kernel, ...]
    plans: tuple[Plan, ...]


def plan_filter(size: Pair, kernels: Sequence[Kernel], settings: FilterSettings, dtype: Any = np.float64) -> list[Plan]:
    """The plan of each step of a chain on an ``(H, W)`` input: geometry, method and cost (nothing is computed)."""
    plans = []
    for kernel in kernels:
        weights = kernel.weights[::-1, ::-1] if settings.geometry.convolve else kernel.weights
        plan = plan_correlation(
            size,
            weights,
            stride=settings.geometry.stride,
            padding=settings.geometry.sides(kernel.shape),
            dilation=settings.geometry.dilation,
            method=settings.method,
            dtype=dtype,
            job_images=settings.job_images,
        )
        plans.append(plan)
        size = plan.geometry.output
    return plans


def filter_array(image: np.ndarray, kernels: Sequence[Kernel], settings: FilterSettings) -> Filtered:
    """Apply ``kernels`` one after another to a checked 2-D or ``(H, W, C)`` array (the chain of ``--chain``)."""
    dtype = _working_dtype(image, settings.precision)
    result = image.astype(dtype, copy=False)
    plans = []
    shape = settings.geometry
    for kernel in kernels:
        weights = kernel.weights[::-1, ::-1] if shape.convolve else kernel.weights
        (plan,) = plan_filter((result.shape[0], result.shape[1]), [kernel], settings, dtype)
        plans.append(plan)

        def step(
            plane: np.ndarray,
            weights: np.ndarray = weights,
            method: str = plan.method,
            backend: str = plan.backend,
            offset: float = kernel.offset,
            padding: Any = plan.geometry.padding,
        ) -> np.ndarray:
            return correlate2d(
                plane,
                weights,
                stride=shape.stride,
                padding=padding,
                dilation=shape.dilation,
                pad_mode=shape.pad_mode,
                pad_value=shape.pad_value,
                bias=settings.bias + offset,  # a libvips .mat kernel's offset is added as a bias
                method=method,
                backend=backend,  # the plan's, whatever a plan of this call alone would pick
            )

        with _overflow_checked():
            result = per_channel(step, result)
        check_finite_result(
            result, f"filtering with {kernel.name}", _fix(dtype, "kernel weights, bias or input values")
        )
    return Filtered(result, tuple(kernels), tuple(plans))


def filter(  # noqa: A001 (the public name mirrors the command)
    image: Any,
    kernel: Any,
    *,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    bias: float = 0.0,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
    method: str = "auto",
    precision: str = "auto",
    origin: int | Pair = 0,
    same_extra: str | None = None,
) -> np.ndarray:
    """Filter an image with a kernel (or a chain of kernels), as ``convcli filter`` does.

    Cross-correlation, the kernel not flipped, as ``torch.nn.functional.conv2d``::

        out[i, j] = bias + sum_{u,v} K[u, v] * Xpad[i*sh + u*dh, j*sw + v*dw]

    With ``convolve=True`` the kernel is flipped by 180 degrees first (true
    convolution: with no padding, ``scipy.signal.convolve2d(mode="valid")``).

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, C)
        A 2-D array is filtered; an ``(H, W, C)`` array channel by channel.
        Not modified.
    kernel : str, array-like, Kernel, or a list of them
        A spec (``"gaussian:7"``, ``"0 1; 2 3"``, a file path), weights
        (``[[0, 1], [2, 3]]``; ``[1, -1]`` is one row) or a
        :class:`~convcli.kernels.Kernel`; a list of specs/kernels/2-D arrays is
        applied in turn (``["gaussian:5", "vertical"]``, like ``--chain``).
    stride, dilation : int or (H, W)
        Step between windows; spacing between kernel taps. At least 1.
    padding : int, (H, W), 'same', 'valid' or per side
        Rows/columns added on each side. ``'same'`` keeps the size (stride 1
        only; an odd total puts the extra row/column at the bottom/right, as
        PyTorch, unless ``same_extra='top-left'``). Per side:
        ``"TOP,BOTTOM,LEFT,RIGHT"``, ``(top, bottom, left, right)``,
        ``((top, bottom), (left, right))`` or PyTorch ``F.pad``'s order
        ``"torch:LEFT,RIGHT,TOP,BOTTOM"``.
    origin : int or (rows, columns)
        SciPy ndimage's ``origin``: the window moves ``origin`` rows up and
        columns left (negative: down/right), one padding row moving from the
        bottom to the top per step; the size never changes. Each axis takes
        ``-top .. bottom`` of its padding (with ``'same'`` and
        ``same_extra='top-left'``: ``-(k//2) .. (k-1)//2``, SciPy's range).
    same_extra : {'bottom-right', 'top-left'}, optional
        With ``padding='same'`` and an even kernel: the side that gets the
        extra row/column; ``'bottom-right'`` (the default) is PyTorch's,
        ``'top-left'`` is SciPy ndimage's, ImageMagick's and libvips'.
    bias : float
        Added to every output value (of every step of a chain); a kernel's own
        offset (a libvips ``.mat`` file's) is added to it.
    pad_mode : str
        Border values: ``zeros``, ``constant`` (``pad_value``), ``reflect``
        (edge not repeated), ``symmetric`` (edge repeated), ``replicate``,
        ``circular``, or an alias of another library (``'nearest'``,
        ``'wrap'``, ``'mirror'``...).
    pad_value : float
        Fill value of ``pad_mode='constant'``.
    convolve : bool
        Flip the kernel (true convolution) instead of correlating.
    method : {'auto', 'direct', 'separable', 'fft', 'box'}
        Algorithm; all give the same numbers to rounding, ``auto`` the fastest.
    precision : {'auto', 'float32', 'float64'}
        ``auto``: float32 input is computed in float32, anything else in float64.

    Returns
    -------
    ndarray
        Per axis ``floor((n + p_before + p_after - d*(k-1) - 1) / s) + 1``
        (:func:`convcli.output_size`); channels kept.

    Raises
    ------
    ParameterError, ShapeError, KernelError
        A bad argument; the one-line message names it (``stride 0x0 must be
        at least 1``...).

    Examples
    --------
    The classic example: a 2x2 kernel over a 3x3 input, no padding.

    >>> x = np.arange(9.0).reshape(3, 3)
    >>> filter(x, "0 1; 2 3")
    array([[19., 25.],
           [37., 43.]])

    ``0×0 + 1×1 + 3×2 + 4×3 = 19``. Convolution flips the kernel to
    ``[[3, 2], [1, 0]]``:

    >>> filter(x, [[0, 1], [2, 3]], convolve=True)
    array([[ 5., 11.],
           [23., 29.]])

    The 6x8 edge image (white, a black band in columns 2 to 5) and ``[1, -1]``:
    1 where white turns black, -1 where black turns white.

    >>> edges = np.ones((6, 8)); edges[:, 2:6] = 0
    >>> filter(edges, [1, -1])[0]
    array([ 0.,  1.,  0.,  0.,  0., -1.,  0.])

    An origin moves the window: with ``origin=(0, 1)`` output ``[i, j]`` reads
    the window one column to the left, as ``scipy.ndimage.correlate``.

    >>> filter(np.arange(5.0).reshape(1, 5), [[0, 1, 0]], padding="same", origin=(0, 1))
    array([[0., 0., 1., 2., 3.]])
    """
    array = as_image(image)
    settings = FilterSettings(
        geometry(
            stride=stride,
            padding=padding,
            dilation=dilation,
            pad_mode=pad_mode,
            pad_value=pad_value,
            convolve=convolve,
            origin=origin,
            same_extra=same_extra,
        ),
        bias=_finite(bias, "bias"),
        method=method,
        precision=precision,
    )
    return filter_array(array, as_kernels(kernel), settings).array


# ---------------------------------------------------------------------------
# pool


def pool_array(image: np.ndarray, settings: PoolSettings) -> tuple[np.ndarray, PoolGeometry]:
    """Pool a checked 2-D or ``(H, W, C)`` array; returns the result and the resolved geometry."""
    from ..pooling import pool2d

    resolved = pool_geometry_for((image.shape[0], image.shape[1]), settings)
    with _overflow_checked():
        result = per_channel(
            lambda plane: pool2d(
                plane,
                settings.op,
                size=settings.size,
                stride=settings.stride,
                padding=settings.padding,
                dilation=settings.dilation,
                ceil_mode=settings.ceil_mode,
                count_include_pad=settings.count_include_pad,
            ),
            image,
        )
    if settings.op == "mean":  # max/min give -inf/+inf only where a window reads padding alone, as PyTorch
        check_finite_result(result, "mean pooling", "use smaller input values")
    return result, resolved


def pool(
    image: Any,
    size: int | Pair = 2,
    *,
    stride: int | Pair | None = None,
    padding: int | Pair | str | tuple[int, int, int, int] = 0,
    dilation: int | Pair = 1,
    op: str = "max",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Max, mean or min pooling, as ``convcli pool`` and ``torch.nn.functional.max_pool2d`` / ``avg_pool2d``.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, C)
        Pooled channel by channel; not modified.
    size : int or (H, W)
        Window size.
    stride : int or (H, W), optional
        Step between windows; default the window size (PyTorch's default).
    padding : int, (H, W) or per side
        Added on both sides; at most half the window (PyTorch's rule). ``max``
        pads with -inf, ``min`` with +inf, ``mean`` with zeros. Per side
        (``"TOP,BOTTOM,LEFT,RIGHT"``, ``(top, bottom, left, right)``,
        ``"torch:LEFT,RIGHT,TOP,BOTTOM"``), which PyTorch's pooling lacks:
        as if the input were padded so (``F.pad`` with -inf, +inf or 0) and
        pooled without padding, each side at most half the window; a
        ``ceil_mode`` window must start inside the input or the top/left
        padding.
    dilation : int or (H, W)
        Spacing between window taps; ``max`` and ``min`` only.
    op : {'max', 'mean', 'min'}
        ``min`` is ``-max_pool2d(-x)``.
    ceil_mode : bool
        Round the output size up: one more, partial window when it starts
        inside the input or the left padding.
    count_include_pad : bool
        ``mean`` only: divide by the window's size inside the padded input
        (``True``, PyTorch's default) or by its real input values.

    Returns
    -------
    ndarray
        Per axis ``floor((n + 2p - d*(k-1) - 1) / s) + 1`` (``ceil`` with
        ``ceil_mode``, keeping only windows that start inside).

    Examples
    --------
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> pool(x, 2)
    array([[ 5.,  7.],
           [13., 15.]])
    >>> pool(x, 2, op="mean")
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> pool(np.arange(25.0).reshape(5, 5), 2, ceil_mode=True).shape
    (3, 3)
    """
    settings = pool_settings(
        size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        op=op,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )
    return pool_array(as_image(image), settings)[0]


# ---------------------------------------------------------------------------
# upsample


def upsample_array(
    image: np.ndarray, kernel: Kernel, settings: UpsampleSettings
) -> tuple[np.ndarray, TransposeGeometry]:
    """Upsample a checked 2-D or ``(H, W, C)`` array; returns the result and the resolved geometry."""
    from ..transpose import conv_transpose2d

    resolved = upsample_geometry((image.shape[0], image.shape[1]), kernel, settings)
    with _overflow_checked():
        result = per_channel(
            lambda plane: conv_transpose2d(
                plane,
                kernel.weights,
                stride=resolved.stride,
                padding=resolved.sides,
                output_padding=resolved.output_padding,
                dilation=resolved.dilation,
                bias=settings.bias + kernel.offset,
            ),
            image,
        )
    check_finite_result(
        result, f"upsampling with {kernel.name}", _fix(result.dtype, "kernel weights, bias or input values")
    )
    return result, resolved


def upsample(
    image: Any,
    kernel: Any,
    *,
    stride: int | Pair,
    padding: int | Pair | str | tuple[int, int, int, int] | None = None,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
    output_size: int | Pair | None = None,
    bias: float = 0.0,
) -> np.ndarray:
    """Transposed convolution, as ``convcli upsample`` and ``torch.nn.functional.conv_transpose2d``.

    Every input pixel adds a copy of the kernel (not flipped) times its value,
    placed ``stride`` apart; where copies overlap they add up. Then
    ``padding`` rows/columns are cut from each side and ``output_padding``
    added at the bottom/right.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, C)
        Channel by channel; not modified.
    kernel : str, array-like or Kernel
        Any kernel :func:`convcli.kernel` takes. A bare ``"bilinear"`` or
        ``"nearest"`` takes ``stride`` as its factor; ``"bilinear:F"`` fixes it.
    stride : int or (H, W)
        Spacing of the input pixels in the output (the upsampling factor).
    padding : int, (H, W), per side, 'auto' or None
        Cut from each side of the full result (PyTorch's meaning). Per side
        (``"TOP,BOTTOM,LEFT,RIGHT"``, ``(top, bottom, left, right)``,
        ``"torch:LEFT,RIGHT,TOP,BOTTOM"``), which PyTorch lacks: that many
        rows/columns cut from each side, the adjoint of a convolution padded
        so. ``None`` (the default) or ``'auto'``: a named upsampling kernel
        (``bilinear``, ``nearest``) gets the padding and output padding that
        give exactly ``stride`` times the size
        (:func:`convcli.transpose.factor_padding`: ``F // 2`` for
        ``bilinear:F`` at stride ``F``); any other kernel gets 0.
    output_padding : int or (H, W)
        Added at the bottom/right; smaller than the stride or the dilation.
        Only with an explicit ``padding``.
    dilation : int or (H, W)
        Spacing between kernel taps.
    output_size : int or (H, W), optional
        The wanted size; sets ``output_padding`` (an unreachable size raises
        :class:`~convcli.errors.ShapeError` listing the reachable ones).
    bias : float
        Added to every output value.

    Returns
    -------
    ndarray
        Per axis ``(n - 1)*s - 2p + d*(k - 1) + output_padding + 1``.

    Examples
    --------
    ``[[0, 1], [2, 3]]`` with itself: each input pixel spreads a copy of the kernel.

    >>> x = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> upsample(x, x, stride=1)
    array([[ 0.,  0.,  1.],
           [ 0.,  4.,  6.],
           [ 4., 12.,  9.]])
    >>> upsample(x, "nearest", stride=2)
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])

    A bare ``bilinear`` at stride 2 is ``bilinear:2`` (4x4) with padding 1
    chosen: exactly twice the size (``padding=0`` gives PyTorch's 2n + 2).

    >>> upsample(np.ones((3, 5)), "bilinear", stride=2).shape, upsample(np.ones((3, 5)), "bilinear", stride=2, padding=0).shape
    ((6, 10), (8, 12))
    """
    settings = upsample_settings(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        output_size=output_size,
        bias=bias,
    )
    return upsample_array(as_image(image), upsampling_kernel(kernel, settings.stride), settings)[0]
