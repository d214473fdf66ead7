"""Arrays in, arrays out: :func:`filter`, :func:`pool` and :func:`upsample`, the one implementation.

The command line calls the same functions (``filter_array``, ``pool_array``,
``upsample_array``) with a settings record built once from its options; the
public functions below build that record from keyword arguments. Every
function works on a 2-D array ``(H, W)`` or, channel by channel, on an
``(H, W, C)`` array (what ``--color`` loads), and never changes its input.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import Plan, correlate2d, per_channel, plan_correlation, resolve_pad_mode
from ..errors import ParameterError
from ..kernels import Kernel, parse_kernel_spec, resolve_kernel
from ..limits import LimitError, check_geometry
from ..shapes import SAME_EXTRA, Pair, format_pair, padding_sides, parse_padding, parse_pair
from .settings import FilterSettings, Geometry, PoolSettings, UpsampleSettings

if TYPE_CHECKING:  # pooling and transpose are imported by the functions of pool and upsample (start-up, issue 19)
    from ..pooling import PoolGeometry
    from ..transpose import TransposeGeometry

PRECISIONS = ("auto", "float32", "float64")
#: Catalogue kernels whose bare name takes its factor from the upsampling stride.
FACTOR_KERNELS = ("bilinear", "nearest")


# ---------------------------------------------------------------------------
# Checking what the caller gave


def as_image(image: Any, what: str = "image") -> np.ndarray:
    """``image`` as a real-valued NumPy array of 2 (``(H, W)``) or 3 (``(H, W, C)``) dimensions.

    Integer and boolean arrays are accepted (and computed in float64); nothing
    is copied when the input already is an array.
    """
    try:
        array = np.asarray(image)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} is not an array of numbers; give a 2-D (H, W) or 3-D (H, W, C) array") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ParameterError(f"{what} holds {array.dtype} values; give real numbers (a NumPy array of floats)")
    if np.iscomplexobj(array):
        raise ParameterError(f"{what} holds complex values; give real numbers")
    if array.ndim not in (2, 3):
        raise ParameterError(
            f"{what} has shape {array.shape}; give a 2-D (H, W) array, or (H, W, C) to filter each channel"
        )
    if array.size == 0:
        raise ParameterError(f"{what} has shape {array.shape} and holds no values")
    if array.dtype == np.bool_:
        array = array.astype(np.float64)
    return array


def _pair(value: Any, what: str, minimum: int = 1) -> Pair:
    """``N`` or ``(H, W)`` (ints, NumPy ints or the command line's ``"HxW"`` text) as a checked pair."""
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, np.integer) for v in value):
        value = (int(value[0]), int(value[1]))
    if isinstance(value, bool) or not isinstance(value, (int, str, tuple, list)):
        raise ParameterError(f"{what} {value!r} is not N or (H, W)")
    if isinstance(value, (tuple, list)) and (
        len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ParameterError(f"{what} {value!r} is not N or (H, W): give two whole numbers")
    return parse_pair(value, what, minimum)


def _padding(value: Any, named: bool = True) -> Any:
    """A padding spec (``N``, ``(H, W)``, ``'same'``, four sides...) checked and in canonical form."""
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str, tuple, list)):
        raise ParameterError(f"padding {value!r} is not N, (H, W), (top, bottom, left, right) or a name")
    if isinstance(value, (tuple, list)):
        value = [int(v) if isinstance(v, np.integer) else v for v in value]
    return parse_padding(value, "padding", named=named)


def _flat(padding: Any) -> Any:
    """Padding as a flat tuple of ints for :func:`check_geometry` (names as they are)."""
    if isinstance(padding, str):
        return padding
    (t, b), (left, r) = padding_sides(padding)
    return (t, left) if (t, left) == (b, r) else (t, b, left, r)


def _origin(value: Any) -> Pair:
    """An origin: ``N`` (both axes), ``(rows, columns)`` or ``"Y,X"``; negative values move the window down/right."""
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, (tuple, list)):
        value = tuple(int(v) if isinstance(v, np.integer) else v for v in value)
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ParameterError(f"origin {value!r} is not N or (rows, columns): give two whole numbers")
    elif isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParameterError(f"origin {value!r} is not N or (rows, columns)")
    try:
        return parse_pair(value, "origin", minimum=-(1 << 62))
    except ParameterError:
        raise ParameterError(f"origin {value!r} is not Y,X (rows, columns; e.g. 1,0 or -1,-1)") from None


def geometry(
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
    origin: Any = 0,
    same_extra: str | None = None,
) -> Geometry:
    """A checked :class:`~convcli.api.settings.Geometry` from keyword arguments as the public functions take them.

    ``same_extra`` (``'bottom-right'``, PyTorch's and the default, or
    ``'top-left'``, which only goes with ``padding='same'``).

    >>> geometry(stride=2, padding="same").stride
    (2, 2)
    >>> geometry(padding="0,1,2,3").padding
    ((0, 1), (2, 3))
    """
    spec = _padding(padding)
    if same_extra is not None:
        if same_extra not in SAME_EXTRA:
            raise ParameterError(f"same_extra {same_extra!r} is not one of {', '.join(SAME_EXTRA)}")
        if spec != "same" and same_extra != "bottom-right":  # the default side, harmless to name
            raise ParameterError(
                f"same extra {same_extra!r} places the extra row/column of padding 'same' (even kernels); "
                "give padding 'same' or drop it"
            )
    record = Geometry(
        stride=_pair(stride, "stride"),
        padding=spec,
        dilation=_pair(dilation, "dilation"),
        pad_mode=resolve_pad_mode(str(pad_mode)),
        pad_value=_finite(pad_value, "pad_value"),
        convolve=bool(convolve),
        origin=_origin(origin),
        same_extra=same_extra or "bottom-right",
    )
    check_geometry(stride=record.stride, padding=_flat(record.padding), dilation=record.dilation, origin=record.origin)
    return record


def check_placement(shape: Geometry, kernels: Sequence[Kernel]) -> None:
    """Refuse, before any work, an origin that some kernel's padding cannot hold (the message gives the range).

    >>> check_placement(geometry(padding="same", origin=(1, 0)), as_kernels("gaussian:3"))
    >>> check_placement(geometry(padding=1, origin=(2, 0)), as_kernels("gaussian:3"))
    Traceback (most recent call last):
    ...
    convcli.errors.ShapeError: origin 2,0 is out of range for the 3x3 kernel with padding 1x1: rows take -1..1, columns -1..1 (an origin moves the window within the padding; pad more to move it further)
    """
    for kernel in kernels:
        shape.sides(kernel.shape)


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} {value!r} is not a number") from None
    if not np.isfinite(number):
        raise ParameterError(f"{what} {value!r} must be a finite number")
    return number


@contextlib.contextmanager
def _overflow_checked() -> Iterator[None]:
    """Compute without NumPy's overflow warnings (in this thread and the engine's worker threads):
    :func:`check_finite_result` then refuses the result in one line instead."""
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        yield


def check_finite_result(result: np.ndarray, what: str, fix: str) -> np.ndarray:
    """Refuse a result with infinite or NaN values computed from finite ones (an overflow), never hand it on.

    >>> check_finite_result(np.array([1.0, 2.0]), "filtering", "")
    array([1., 2.])
    >>> check_finite_result(np.array([np.inf], dtype=np.float32), "filtering", "use --precision float64")
    Traceback (most recent call last):
    ...
    convcli.limits.LimitError: filtering overflows float32: 1 output value is beyond ±3.4e+38 (infinite or NaN); use --precision float64
    """
    if result.dtype.kind != "f":
        return result
    finite = np.isfinite(result)
    if finite.all():
        return result
    count = int(finite.size - np.count_nonzero(finite))
    top = float(np.finfo(result.dtype).max)
    raise LimitError(
        f"{what} overflows {result.dtype}: {count:,} output value{' is' if count == 1 else 's are'} beyond "
        f"±{top:.2g} (infinite or NaN); {fix}"
    )


def _fix(dtype: Any, values: str) -> str:
    if np.dtype(dtype) == np.float32:
        return f"use --precision float64 (precision='float64'), or smaller {values}"
    return f"use smaller {values}"


# ---------------------------------------------------------------------------
# filter


@dataclass(frozen=True)
class Filtered:
    """What :func:`filter_array` did: the result, and the kernel and plan of each step (in order)."""

    array: np.ndarray
    kernels: tuple[Kernel, ...]
    plans: tuple[Plan, ...]


def as_kernels(kernel: Any) -> list[Kernel]:
    """A list of :class:`~convcli.kernels.Kernel` from one kernel or a list of them (applied in turn).

    A list of numbers, or of lists of numbers, is one kernel's weights, not a
    chain: ``[1, -1]`` and ``[[0, 1], [2, 3]]`` are single kernels. A chain is
    a list of specs, ``Kernel`` records or 2-D arrays:
    ``["gaussian:5", "vertical"]``.

    >>> [k.name for k in as_kernels(["gaussian:5", "vertical"])]
    ['gaussian-5', 'vertical']
    >>> [k.shape for k in as_kernels([[0, 1], [2, 3]])]
    [(2, 2)]
    """
    if isinstance(kernel, (list, tuple)) and kernel and not _is_weights(kernel):
        return [resolve_kernel(item) for item in kernel]
    return [resolve_kernel(kernel)]


def _is_weights(items: Sequence[Any]) -> bool:
    """True for a nested list of numbers (one kernel's weights), false for a list of kernels."""
    first = items[0]
    if isinstance(first, (int, float, np.number)):
        return True
    return isinstance(first, (list, tuple)) and bool(first) and isinstance(first[0], (int, float, np.number))


def _working_dtype(array: np.ndarray, precision: str) -> Any:
    if precision not in PRECISIONS:
        raise ParameterError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return np.float32
    if precision == "float64":
        return np.float64
    return np.float32 if array.dtype == np.float32 else np.float64


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


def pool_settings(
    size: Any = 2,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    op: str = "max",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> PoolSettings:
    """A checked :class:`PoolSettings` (the rules of ``convcli pool``: no dilation for mean)."""
    from ..pooling import POOL_OPS

    if op not in POOL_OPS:
        raise ParameterError(f"op {op!r} is not one of {', '.join(POOL_OPS)}")
    settings = PoolSettings(
        op=op,
        size=_pair(size, "pool size"),
        stride=None if stride is None else _pair(stride, "stride"),
        padding=_padding(padding, named=False),
        dilation=_pair(dilation, "dilation"),
        ceil_mode=bool(ceil_mode),
        count_include_pad=bool(count_include_pad),
    )
    check_geometry(stride=settings.stride, padding=_flat(settings.padding), dilation=settings.dilation)
    if op == "mean" and settings.dilation != (1, 1):
        raise ParameterError(
            f"dilation {format_pair(settings.dilation)} does not apply to op 'mean' (PyTorch's avg_pool2d has no "
            "dilation); drop it or use op 'max'/'min'"
        )
    return settings


def pool_array(image: np.ndarray, settings: PoolSettings) -> tuple[np.ndarray, PoolGeometry]:
    """Pool a checked 2-D or ``(H, W, C)`` array; returns the result and the resolved geometry."""
    from ..pooling import pool2d, pool_geometry

    resolved = pool_geometry(
        (image.shape[0], image.shape[1]),
        settings.size,
        stride=settings.stride,
        padding=settings.padding,
        dilation=settings.dilation,
        ceil_mode=settings.ceil_mode,
    )
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


def upsample_settings(
    *,
    stride: Any,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    output_size: Any = None,
    bias: float = 0.0,
) -> UpsampleSettings:
    """A checked :class:`UpsampleSettings`; ``padding=None`` or ``'auto'`` is resolved per kernel (:func:`upsample_padding`)."""
    auto = padding is None or (isinstance(padding, str) and padding.strip().lower() == "auto")
    settings = UpsampleSettings(
        stride=_pair(stride, "stride"),
        padding="auto" if auto else _padding(padding, named=False),
        output_padding=_pair(output_padding, "output padding", minimum=0),
        dilation=_pair(dilation, "dilation"),
        output_size=None if output_size is None else _pair(output_size, "output size"),
        bias=_finite(bias, "bias"),
    )
    if settings.output_size is not None and settings.output_padding != (0, 0):
        raise ParameterError("output size sets the output padding itself; drop the output padding")
    check_geometry(stride=settings.stride, padding=_flat(settings.padding), dilation=settings.dilation)
    return settings


def is_factor_kernel(kernel: Kernel) -> bool:
    """True for a named upsampling kernel (``bilinear``, ``bilinear:F``, ``nearest``, ``nearest:F``).

    >>> is_factor_kernel(resolve_kernel("bilinear:3")), is_factor_kernel(resolve_kernel("gaussian:3"))
    (True, False)
    """
    return kernel.spec.strip().lower().split(":", 1)[0] in FACTOR_KERNELS


def upsample_padding(kernel: Kernel, settings: UpsampleSettings) -> tuple[Any, Pair]:
    """The padding and output padding an upsampling uses: as given, or chosen when ``padding`` is ``'auto'``.

    ``'auto'`` with a named upsampling kernel (:data:`FACTOR_KERNELS`) takes
    :func:`convcli.transpose.factor_padding` (exactly ``stride`` times the
    size); with any other kernel it is 0, PyTorch's default. An
    ``output_size`` then sets the output padding from that padding.

    >>> upsample_padding(upsampling_kernel("bilinear", (2, 2)), upsample_settings(stride=2, padding="auto"))
    ((1, 1), (0, 0))
    """
    if settings.padding != "auto":
        return settings.padding, settings.output_padding
    if not is_factor_kernel(kernel):
        return (0, 0), settings.output_padding
    if settings.output_padding != (0, 0):
        raise ParameterError(
            f"output padding {format_pair(settings.output_padding)} goes with an explicit padding for -k "
            f"{kernel.spec} (PyTorch's meaning); give the padding too (--padding), or drop the output padding and "
            "let the padding be chosen"
        )
    from ..transpose import factor_padding

    padding, extra = factor_padding(kernel.shape, settings.stride, settings.dilation)
    return padding, (extra if settings.output_size is None else (0, 0))


def upsampling_kernel(kernel: Any, stride: Pair) -> Kernel:
    """The kernel of an upsampling: a bare ``bilinear``/``nearest`` takes ``stride`` as its factor.

    >>> upsampling_kernel("bilinear", (2, 2)).shape
    (4, 4)
    >>> upsampling_kernel("bilinear:3", (2, 2)).shape
    (5, 5)
    """
    resolved = resolve_kernel(kernel)
    name = resolved.spec.strip().lower()
    if name in FACTOR_KERNELS:
        factor = str(stride[0]) if stride[0] == stride[1] else format_pair(stride)
        return parse_kernel_spec(f"{name}:{factor}")
    return resolved


def upsample_geometry(size: Pair, kernel: Kernel, settings: UpsampleSettings) -> TransposeGeometry:
    """The geometry of an upsampling of an ``(H, W)`` input (``output_size`` resolved to an output padding)."""
    from ..transpose import output_padding_for, transpose_geometry

    padding, output_padding = upsample_padding(kernel, settings)
    if settings.output_size is not None:
        output_padding = output_padding_for(
            size,
            kernel.shape,
            settings.output_size,
            stride=settings.stride,
            padding=padding,
            dilation=settings.dilation,
        )
    return transpose_geometry(
        size,
        kernel.shape,
        stride=settings.stride,
        padding=padding,
        output_padding=output_padding,
        dilation=settings.dilation,
    )


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
