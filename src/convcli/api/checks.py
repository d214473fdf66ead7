"""Checking what the caller gave the array functions, and what they give back.

Arrays, pairs, paddings, origins, numbers, kernels and precisions checked and
put in canonical form, each mistake refused in one line that names the
argument; the checked settings records (:func:`geometry`, :func:`pool_settings`,
:func:`upsample_settings`) built from keyword arguments as the public functions
take them; the geometry of a pooling from its settings (:func:`pool_geometry_for`);
and the overflow check of a result (:func:`check_finite_result`).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import resolve_pad_mode
from ..errors import ParameterError
from ..kernels import Kernel, resolve_kernel
from ..limits import LimitError, check_geometry
from ..shapes import SAME_EXTRA, Pair, format_pair, padding_sides, parse_padding, parse_pair
from .settings import Geometry, PoolSettings, UpsampleSettings

if TYPE_CHECKING:
    from ..pooling import PoolGeometry

PRECISIONS = ("auto", "float32", "float64")


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
    from ..io.pixels import extremes

    if not result.size or all(math.isfinite(end) for end in extremes(result)[:2]):
        return result  # NaN and infinity show in the extremes: one read, in chunks on the worker threads
    finite = np.isfinite(result)
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


def pool_geometry_for(size: Pair, settings: PoolSettings) -> PoolGeometry:
    """The geometry of the pooling ``settings`` describe on an ``(H, W)`` input of ``size``.

    The one place the settings' window, stride, padding, dilation and ceil mode
    are handed to :func:`~convcli.pooling.pool_geometry`, for the in-memory, the
    streamed and the command line's runs alike.
    """
    from ..pooling import pool_geometry

    return pool_geometry(
        size,
        settings.size,
        stride=settings.stride,
        padding=settings.padding,
        dilation=settings.dilation,
        ceil_mode=settings.ceil_mode,
    )


def upsample_settings(
    *,
    stride: Any,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    output_size: Any = None,
    bias: float = 0.0,
) -> UpsampleSettings:
    """A checked :class:`UpsampleSettings`; ``padding=None`` or ``'auto'`` is resolved per kernel (:func:`~convcli.api.upsampling.upsample_padding`)."""
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
