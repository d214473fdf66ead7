"""The built-in kernels by name (``gaussian:7``, ``vertical``, ``bilinear:2``...), each a readable grid or a formula."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import KernelError
from ..shapes import Pair, format_pair, parse_pair
from .weights import MAX_KERNEL_SIDE

#: Largest upsampling factor accepted by :func:`bilinear_kernel` and :func:`nearest_kernel`.
MAX_UPSAMPLE_FACTOR = 256


# ---------------------------------------------------------------------------
# Catalogue


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    usage: str
    description: str
    build: Callable[[list[str]], np.ndarray]
    max_params: int


_CATALOGUE: dict[str, CatalogueEntry] = {}


def _register(name: str, usage: str, description: str, max_params: int = 0):
    def decorator(build: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
        _CATALOGUE[name] = CatalogueEntry(name, usage, description, build, max_params)
        return build

    return decorator


def _int_param(params: list[str], index: int, default: int, what: str, minimum: int = 1, maximum: int = 1023) -> int:
    if index >= len(params) or params[index] == "":
        return default
    text = params[index]
    try:
        value = int(text)
    except ValueError:
        raise KernelError(f"{what} {text!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise KernelError(f"{what} {value} is out of range; use {minimum} to {maximum}")
    return value


def _float_param(params: list[str], index: int, what: str) -> float | None:
    if index >= len(params) or params[index] == "":
        return None
    try:
        value = float(params[index])
    except ValueError:
        raise KernelError(f"{what} {params[index]!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise KernelError(f"{what} {params[index]!r} must be a positive number")
    return value


def _fixed(matrix: Sequence[Sequence[float]]) -> Callable[[list[str]], np.ndarray]:
    return lambda params: np.array(matrix, dtype=np.float64)


_SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
_PREWITT_X = [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]
_SCHARR_X = [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]

_register("vertical", "vertical", "vertical edges: rows [1, 0, -1]; positive where the left side is brighter")(
    _fixed([[1, 0, -1]] * 3)
)
_register("horizontal", "horizontal", "horizontal edges: 1s on top, -1s below; positive where the top is brighter")(
    _fixed([[1, 1, 1], [0, 0, 0], [-1, -1, -1]])
)
for _name, _base, _label in (
    ("sobel", _SOBEL_X, "Sobel"),
    ("prewitt", _PREWITT_X, "Prewitt"),
    ("scharr", _SCHARR_X, "Scharr"),
):
    _register(f"{_name}-x", f"{_name}-x", f"{_label} d/dx: positive where brightness increases to the right")(
        _fixed(_base)
    )
    _register(f"{_name}-y", f"{_name}-y", f"{_label} d/dy: positive where brightness increases downwards")(
        _fixed([list(row) for row in zip(*_base)])
    )
_register("sharpen", "sharpen", "sharpen: 5 at the centre, -1 at the four neighbours (sum 1)")(
    _fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
)
_register("emboss", "emboss", "emboss: relief lit from the bottom right (sum 1)")(
    _fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
)


@_register("laplacian", "laplacian[:4|8]", "Laplacian, 4-neighbour ([0 1 0; 1 -4 1; 0 1 0]) or 8-neighbour", 1)
def _laplacian(params: list[str]) -> np.ndarray:
    neighbours = _int_param(params, 0, 4, "laplacian neighbours", 4, 8)
    if neighbours == 4:
        return np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    if neighbours == 8:
        return np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], dtype=np.float64)
    raise KernelError(f"laplacian neighbours {neighbours} must be 4 or 8")


def _size_param(params: list[str], index: int, default: int, what: str) -> tuple[int, int]:
    if index >= len(params) or params[index] == "":
        return (default, default)
    match = re.fullmatch(r"(\d{1,9})(?:x(\d{1,9}))?", params[index])
    if not match:
        raise KernelError(f"{what} {params[index]!r} is not N or HxW")
    size = (int(match.group(1)), int(match.group(2) or match.group(1)))
    if min(size) < 1 or max(size) > MAX_KERNEL_SIDE:
        raise KernelError(f"{what} {params[index]!r} is out of range; use 1 to {MAX_KERNEL_SIDE}")
    return size


@_register("identity", "identity[:SIZE]", "identity: 1 at the centre (row and column (k-1)//2), default 3x3", 1)
def _identity(params: list[str]) -> np.ndarray:
    rows, cols = _size_param(params, 0, 3, "identity size")
    kernel = np.zeros((rows, cols))
    kernel[(rows - 1) // 2, (cols - 1) // 2] = 1.0
    return kernel


@_register("blur", "blur[:SIZE|HxW]", "box blur: the mean of a SIZE x SIZE window, default 3x3 (sum 1)", 1)
def _blur(params: list[str]) -> np.ndarray:
    rows, cols = _size_param(params, 0, 3, "blur size")
    return np.full((rows, cols), 1.0 / (rows * cols))


@_register(
    "gaussian",
    "gaussian[:SIZE[:SIGMA]]",
    "Gaussian blur exp(-(x^2+y^2)/(2 sigma^2)) on a SIZE-point grid, sum 1; default 7x7, sigma sqrt(SIZE/2); "
    "gaussian::SIGMA sizes it to 2*ceil(3 sigma)+1",
    2,
)
def _gaussian(params: list[str]) -> np.ndarray:
    sigma = _float_param(params, 1, "gaussian sigma")
    default_size = 7 if sigma is None else 2 * math.ceil(3 * sigma) + 1
    size = _int_param(params, 0, default_size, "gaussian size", 1, MAX_KERNEL_SIDE)
    # sigma^2 = SIZE/2 makes the default exp(-(x^2 + y^2)/SIZE): for 7 the classic tutorial kernel.
    two_sigma_squared = float(size) if sigma is None else 2.0 * sigma * sigma
    grid = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    profile = np.exp(-(grid * grid) / two_sigma_squared)
    # Built as an outer product so that it is exactly separable.
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def _difference(order: int) -> np.ndarray:
    return np.array([(-1) ** i * math.comb(order, i) for i in range(order + 1)], dtype=np.float64)


@_register(
    "diff-x",
    "diff-x[:ORDER]",
    "finite difference along x (a row): order 1 is [1, -1] (x[j] - x[j+1]), order d has d+1 taps (-1)^i C(d,i)",
    1,
)
def _diff_x(params: list[str]) -> np.ndarray:
    return _difference(_int_param(params, 0, 1, "difference order", 1, 64))[np.newaxis, :]


@_register("diff-y", "diff-y[:ORDER]", "finite difference along y (a column): order 1 is [1; -1] (x[i] - x[i+1])", 1)
def _diff_y(params: list[str]) -> np.ndarray:
    return _difference(_int_param(params, 0, 1, "difference order", 1, 64))[:, np.newaxis]


@_register(
    "edge",
    "edge:V1,V2",
    "directional derivative along (v1, v2), x right and y down: (v1*sobel-x + v2*sobel-y)/|v|",
    1,
)
def _edge(params: list[str]) -> np.ndarray:
    if not params or not params[0]:
        raise KernelError("edge needs a direction, e.g. edge:1,0 (x right) or edge:1,1 (diagonal down-right)")
    parts = [p for p in re.split(r"[,\s]+", params[0]) if p]
    try:
        v1, v2 = (float(p) for p in parts)
    except ValueError:
        raise KernelError(f"edge direction {params[0]!r} must be two numbers V1,V2") from None
    norm = math.hypot(v1, v2)
    if not math.isfinite(norm) or norm == 0:
        raise KernelError(f"edge direction {params[0]!r} must be a non-zero finite vector")
    sobel_x = np.array(_SOBEL_X, dtype=np.float64)
    return (v1 * sobel_x + v2 * sobel_x.T) / norm


def catalogue() -> list[CatalogueEntry]:
    """The built-in kernels, in catalogue order."""
    return list(_CATALOGUE.values())


# ---------------------------------------------------------------------------
# Upsampling kernels (the weights behind bilinear:F and nearest:F)


def _factor(factor: int | Pair) -> Pair:
    pair = parse_pair(factor, "upsampling factor", 1)
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


# ---------------------------------------------------------------------------
# Upsampling kernels (convcli upsample, issue 4). Registered last so that the
# catalogue's earlier entries keep their order; the weights come from
# convcli.transpose, which depends only on errors and shapes.


def _factor_param(params: list[str], what: str) -> tuple[int, int]:
    if not params or params[0] == "":
        return (2, 2)
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", params[0])
    if not match:
        raise KernelError(f"{what} {params[0]!r} is not N or HxW")
    factor = (int(match.group(1)), int(match.group(2) or match.group(1)))
    if not 1 <= min(factor) <= max(factor) <= MAX_UPSAMPLE_FACTOR:
        raise KernelError(f"{what} {params[0]!r} is out of range; use 1 to {MAX_UPSAMPLE_FACTOR}")
    return factor


@_register(
    "bilinear",
    "bilinear[:FACTOR|HxW]",
    "bilinear upsampling for stride FACTOR (default 2; upsample takes a bare 'bilinear' from --stride): "
    "size 2f - f%2, weights (1 - |x - c|/f) per axis (FCN); stride f, padding f//2 gives f times the size",
    1,
)
def _bilinear(params: list[str]) -> np.ndarray:
    return bilinear_kernel(_factor_param(params, "bilinear factor"))


@_register(
    "nearest",
    "nearest[:FACTOR|HxW]",
    "nearest-neighbour upsampling for stride FACTOR (default 2; upsample takes a bare 'nearest' from --stride): "
    "ones, f x f",
    1,
)
def _nearest(params: list[str]) -> np.ndarray:
    return nearest_kernel(_factor_param(params, "nearest factor"))
