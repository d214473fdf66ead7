"""The model :mod:`convcli.teach.learn` fits: a filter is linear in its weights.

The forward pass (a correlation of the padded input), the summed squared
error and its exact gradient (itself a correlation, stride and dilation
swapping roles: see :mod:`convcli.teach.learn`), the im2col design matrix
whose rows are the input patches, its rank by NumPy's rule, and the warning
when that rank leaves the kernel undetermined.
"""

from __future__ import annotations

import numpy as np

from ..engine import correlate2d, pad2d
from ..errors import DecodeError, ParameterError
from ..shapes import ConvGeometry, PaddingSpec
from .targets import check_target, padding_spec, size_pair

Pair = tuple[int, int]


def as_plane(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ParameterError(f"the {what} must be a 2-D (gray) array; got shape {array.shape} (drop --color)")
    if array.size == 0:
        raise ParameterError(f"the {what} is empty")
    if not np.all(np.isfinite(array)):
        raise DecodeError(f"the {what} contains NaN or infinity; every value must be a finite number")
    return array.astype(np.float64)


def _forward(padded: np.ndarray, weights: np.ndarray, bias: float, geometry: ConvGeometry) -> np.ndarray:
    """Correlation of the already padded input (so the border is built once)."""
    return correlate2d(padded, weights, stride=geometry.stride, dilation=geometry.dilation, bias=bias)


def _residual(
    image: np.ndarray,
    target: np.ndarray,
    kernel: np.ndarray,
    bias: float,
    stride: Pair | int,
    padding: PaddingSpec | int,
    dilation: Pair | int,
    pad_mode: str,
    pad_value: float,
    convolve: bool,
) -> tuple[np.ndarray, np.ndarray, ConvGeometry]:
    """The forward pass of :func:`squared_error` and :func:`loss_gradient`: ``filter(image, kernel) + bias - target``.

    The target's size is checked against the geometry (:func:`~convcli.teach.targets.check_target`) and the
    input padded once; returns the residual, the padded input and the geometry (what the gradient needs).
    """
    plane = as_plane(image, "input")
    weights = np.asarray(kernel, dtype=np.float64)
    weights = weights[::-1, ::-1] if convolve else weights
    geometry = check_target(
        plane.shape, np.shape(target), weights.shape, size_pair(stride), padding_spec(padding), size_pair(dilation)
    )
    padded = pad2d(plane, geometry.padding, pad_mode, pad_value)
    residual = _forward(padded, weights, bias, geometry) - np.asarray(target, dtype=np.float64)
    return residual, padded, geometry


def _weight_gradient(padded: np.ndarray, residual: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """``dL/dW`` for ``L = sum(residual**2)``: the padded input correlated with the residual.

    Stride and dilation swap roles (see the module docstring); the output is cut to the kernel size.
    """
    kh, kw = geometry.kernel
    full = correlate2d(padded, residual, stride=geometry.dilation, dilation=geometry.stride)
    return 2.0 * full[:kh, :kw]


def squared_error(
    image: np.ndarray,
    target: np.ndarray,
    kernel: np.ndarray,
    bias: float = 0.0,
    *,
    stride: Pair | int = 1,
    padding: PaddingSpec | int = 0,
    dilation: Pair | int = 1,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
) -> float:
    """The summed squared error ``sum((filter(image, kernel) + bias - target)**2)``.

    >>> x = np.arange(9.0).reshape(3, 3)
    >>> squared_error(x, np.array([[19., 25.], [37., 44.]]), np.array([[0., 1.], [2., 3.]]))
    1.0
    """
    residual, _, _ = _residual(image, target, kernel, bias, stride, padding, dilation, pad_mode, pad_value, convolve)
    return float(np.sum(residual**2))


def loss_gradient(
    image: np.ndarray,
    target: np.ndarray,
    kernel: np.ndarray,
    bias: float = 0.0,
    *,
    stride: Pair | int = 1,
    padding: PaddingSpec | int = 0,
    dilation: Pair | int = 1,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
) -> tuple[np.ndarray, float]:
    """Gradient of :func:`squared_error` with respect to the kernel and the bias.

    Returns ``(dL/dK, dL/db)``; ``dL/dK`` has the kernel's shape and orientation
    (flipped back when ``convolve``).

    >>> g, gb = loss_gradient(np.array([[1., 2., 3.]]), np.array([[0., 0.]]), np.array([[1., 0.]]))
    >>> g, gb  # residual [1, 2]: dL/dK = 2*[1*1 + 2*2, 1*2 + 2*3]
    (array([[10., 16.]]), 6.0)
    """
    residual, padded, geometry = _residual(
        image, target, kernel, bias, stride, padding, dilation, pad_mode, pad_value, convolve
    )
    grad = _weight_gradient(padded, residual, geometry)
    return (grad[::-1, ::-1] if convolve else grad), float(2.0 * residual.sum())


def design_matrix(padded: np.ndarray, geometry: ConvGeometry, with_bias: bool = False) -> np.ndarray:
    """The im2col matrix ``A`` with ``A @ W.ravel() == correlate2d(...).ravel()``.

    Row ``i*ow + j`` holds the window ``Xpad[i*sh + u*dh, j*sw + v*dw]`` for
    ``(u, v)`` in row-major kernel order; a last column of ones with a bias.
    ``padded`` is the input already padded to ``geometry.padded``.
    """
    (sh, sw), (dh, dw), (oh, ow) = geometry.stride, geometry.dilation, geometry.output
    kh, kw = geometry.kernel
    columns = kh * kw + (1 if with_bias else 0)
    matrix = np.empty((oh * ow, columns), dtype=np.float64)
    for u in range(kh):
        for v in range(kw):
            window = padded[u * dh : u * dh + sh * (oh - 1) + 1 : sh, v * dw : v * dw + sw * (ow - 1) + 1 : sw]
            matrix[:, u * kw + v] = window.ravel()
    if with_bias:
        matrix[:, -1] = 1.0
    return matrix


def _rank_from(singular: np.ndarray, shape: tuple[int, int]) -> int:
    """NumPy's rule (``matrix_rank``/``lstsq``): singular values above ``max(shape) * eps * s_max``."""
    if singular.size == 0 or singular[0] == 0:
        return 0
    return int(np.sum(singular > max(shape) * np.finfo(np.float64).eps * singular[0]))


def _identifiability(rank: int | None, unknowns: int, learn_bias: bool) -> list[str]:
    if rank is None or rank >= unknowns:
        return []
    what = "kernel and bias are" if learn_bias else "kernel is"
    return [
        f"warning: the {what} not identifiable: the input patches have rank {rank} but there are {unknowns} "
        f"unknowns (a flat or too small input); many kernels fit equally well"
    ]
