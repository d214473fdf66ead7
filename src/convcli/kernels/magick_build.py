"""How ImageMagick builds and transforms a kernel: the record, scaling, rotation and the "optimal" widths.

The arithmetic that :mod:`convcli.kernels.magick`'s named kernels share, after
``magick/morphology.c`` (``ScaleKernelInfo``, ``RotateKernelInfo``,
``CalcKernelMetaData``) and ``magick/gem.c`` (``GetOptimalKernelWidth1D/2D``)
of ImageMagick 6: :class:`MagickKernel` (the weights with ImageMagick's origin
and label), the kernel under construction, :func:`magick_scale` (the ``!`` and
``^`` normalisations, also used by :mod:`convcli.kernels.normalize`) and
ImageMagick's constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import KernelError
from .weights import MAX_KERNEL_SIDE

#: ImageMagick's constants (magick/image-private.h and magick-type.h, IM6).
MAGICK_EPSILON = 1.0e-12
MAGICK_PI = 3.14159265358979323846264338327950288419716939937510
MAGICK_2PI = 6.28318530717958647692528676655900576839433879875020
MAGICK_SQ2PI = 2.50662827463100024161235523934010416269302368164062
MAGICK_SQ2 = 1.41421356237309504880
#: 1/QuantumRange of a Q16 build: the accuracy GetOptimalKernelWidth aims for.
QUANTUM_SCALE = 1.0 / 65535.0


# ---------------------------------------------------------------------------
# The kernel being built: values, origin and the angle ImageMagick prints


@dataclass(frozen=True)
class MagickKernel:
    """One of ImageMagick's named kernels as ImageMagick builds it.

    Attributes
    ----------
    weights : ndarray, shape (height, width)
        Row 0 on top, as ``showKernel`` prints it; applied by
        cross-correlation (``-morphology Correlate``).
    origin : (int, int)
        ``(row, column)`` of the tap ImageMagick puts on the output pixel
        (``showKernel``'s ``+X+Y`` is ``+column+row``).
    label : str
        ImageMagick's name with the angle it prints: ``Sobel@90``.
    """

    weights: np.ndarray
    origin: tuple[int, int]
    label: str

    @property
    def centred(self) -> bool:
        """True when the origin is ``((h-1)//2, (w-1)//2)``, where convcli puts it."""
        h, w = self.weights.shape
        return self.origin == ((h - 1) // 2, (w - 1) // 2)


class _Build:
    """Mutable state of a kernel under construction (values row-major, origin, angle)."""

    def __init__(self, kind: str, values: np.ndarray, origin: tuple[int, int] | None = None) -> None:
        self.kind = kind
        self.values = np.array(values, dtype=np.float64)
        h, w = self.values.shape
        self.y: int = origin[0] if origin is not None else (h - 1) // 2
        self.x: int = origin[1] if origin is not None else (w - 1) // 2
        self.angle = 0.0

    def scale(self, factor: float) -> None:
        """``ScaleKernelInfo(kernel, factor, NoValue)``: every value times ``factor``."""
        self.values = self.values * factor

    def correlate_normalize(self) -> None:
        """``CalcKernelMetaData`` (values under 1e-12 in size become 0), then ``ScaleKernelInfo(kernel, 1, ^)``."""
        values = np.where(np.abs(self.values) < MAGICK_EPSILON, 0.0, self.values)
        self.values = magick_scale(values, "^")

    def rotate(self, angle: float, what: str) -> None:
        """``RotateKernelInfo``: multiples of 90 degrees, and 45 for 3x3 kernels."""
        angle = math.fmod(angle, 360.0)
        if angle < 0:
            angle += 360.0
        if angle > 337.5 or angle <= 22.5:
            return
        if self.kind == "blur":  # a 1-D symmetric kernel: 180 degrees is useless, 270 is 90
            if 135.0 < angle <= 225.0:
                return
            if 225.0 < angle <= 315.0:
                angle -= 180.0
        h, w = self.values.shape
        if 22.5 < math.fmod(angle, 90.0) <= 67.5:
            if (h, w) != (3, 3):
                raise KernelError(f"{what}: ImageMagick rotates only 3x3 kernels by 45 degrees; this one is {w}x{h}")
            flat = self.values.ravel()
            ring = [0, 1, 2, 5, 8, 7, 6, 3]  # clockwise around the centre
            rotated = flat.copy()
            for i, position in enumerate(ring):
                rotated[position] = flat[ring[i - 1]]
            x, y = self.x - 1, self.y - 1
            if (x, y) != (0, 0):
                if x == y:
                    x = 0
                elif x == 0:
                    x = -y
                elif x == -y:
                    y = 0
                elif y == 0:
                    y = x
            angle = self._turn(rotated.reshape(3, 3), (y + 1, x + 1), 45.0, angle)
        if 45.0 < math.fmod(angle, 180.0) <= 135.0:
            if w == 1 and h != 1:  # a column becomes a row: ImageMagick transposes it, a quarter turn anticlockwise
                angle = self._turn(self.values.reshape(w, h), (self.x, self.y), 270.0, angle)
            elif h == 1 or w == h:  # a row becomes a column, a square turns: a quarter turn clockwise
                angle = self._turn(np.rot90(self.values, -1).copy(), (self.x, h - 1 - self.y), 90.0, angle)
            else:
                raise KernelError(f"{what}: ImageMagick cannot rotate a non-square {w}x{h} kernel by 90 degrees")
        if 135.0 < angle <= 225.0:
            h, w = self.values.shape
            self._turn(self.values.ravel()[::-1].reshape(h, w).copy(), (h - self.y - 1, w - self.x - 1), 180.0, angle)

    def _turn(self, values: np.ndarray, origin: tuple[int, int], degrees: float, angle: float) -> float:
        """Take the kernel turned clockwise by ``degrees`` (its values and ``(row, column)`` origin); the angle left.

        ``self.angle``, the angle ImageMagick prints, grows by ``degrees``; the
        returned angle still to turn is ``angle - degrees``, modulo 360.
        """
        self.values = values
        self.y, self.x = origin
        self.angle = math.fmod(self.angle + degrees, 360.0)
        return math.fmod(angle + (360.0 - degrees), 360.0)

    def result(self, label: str) -> MagickKernel:
        weights = self.values + 0.0
        weights.setflags(write=False)
        if abs(self.angle) >= MAGICK_EPSILON:
            label = f"{label}@{self.angle:g}"
        return MagickKernel(weights, (int(self.y), int(self.x)), label)


def magick_scale(values: np.ndarray, flag: str, factor: float = 1.0) -> np.ndarray:
    """``ScaleKernelInfo(kernel, factor, flag)``: ImageMagick's ``convolve:scale`` normalisations.

    ``"!"`` (NormalizeValue): divide by ``|sum|``, or, for a zero-summing
    kernel (``|sum| < 1e-12``), by the sum of its positive values. ``"^"``
    (CorrelateNormalizeValue): positive values divided by their sum and
    negative ones by the absolute value of theirs, so the kernel sums to 0
    (a part summing to less than 1e-12 in size is left as it is). ``""``:
    only ``factor``. The result is multiplied by ``factor`` (ImageMagick
    multiplies by ``factor / scale``).

    >>> magick_scale(np.array([[1., 2., 1.]]), "!")
    array([[0.25, 0.5 , 0.25]])
    >>> magick_scale(np.array([[-1., 0., 3.]]), "^")
    array([[-1.,  0.,  1.]])
    """
    values = np.asarray(values, dtype=np.float64)
    positive = float(values[values >= 0].sum())
    negative = float(values[values < 0].sum())
    pos_scale = 1.0
    if flag == "!":
        total = positive + negative
        pos_scale = abs(total) if abs(total) >= MAGICK_EPSILON else positive
    if flag == "^":
        pos_scale = positive if abs(positive) >= MAGICK_EPSILON else 1.0
        neg_scale = -negative if abs(negative) >= MAGICK_EPSILON else 1.0
    else:
        neg_scale = pos_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        pos_factor = factor / pos_scale
        neg_factor = factor / neg_scale
    return np.where(values >= 0, values * pos_factor, values * neg_factor)


# ---------------------------------------------------------------------------
# Sizes: ImageMagick's "optimal" widths (magick/gem.c)


def optimal_width_1d(radius: float, sigma: float, what: str = "kernel") -> int:
    """``GetOptimalKernelWidth1D``: ``2*ceil(radius)+1``, or the width where a 1-D Gaussian's tail drops below 1/65535."""
    if radius > MAGICK_EPSILON:
        return int(2.0 * math.ceil(radius) + 1.0)
    gamma = abs(sigma)
    if gamma <= MAGICK_EPSILON:
        return 3
    alpha = 1.0 / (2.0 * gamma * gamma)
    beta = 1.0 / (MAGICK_SQ2PI * gamma)
    width = 5
    while True:
        j = width // 2
        i = np.arange(-j, j + 1, dtype=np.float64)
        normalize = float(np.sum(np.exp(-(i * i) * alpha) * beta))
        value = math.exp(-float(j * j) * alpha) * beta / normalize
        if value < QUANTUM_SCALE or value < MAGICK_EPSILON:
            return width - 2
        width += 2
        if width > MAX_KERNEL_SIDE + 2:
            raise _too_large(what, sigma)


def optimal_width_2d(radius: float, sigma: float, what: str = "kernel") -> int:
    """``GetOptimalKernelWidth2D``: as :func:`optimal_width_1d` for a 2-D Gaussian."""
    if radius > MAGICK_EPSILON:
        return int(2.0 * math.ceil(radius) + 1.0)
    gamma = abs(sigma)
    if gamma <= MAGICK_EPSILON:
        return 3
    alpha = 1.0 / (2.0 * gamma * gamma)
    beta = 1.0 / (MAGICK_2PI * gamma * gamma)
    width = 5
    while True:
        j = width // 2
        i = np.arange(-j, j + 1, dtype=np.float64)
        squares = i[:, None] ** 2 + i[None, :] ** 2
        normalize = float(np.sum(np.exp(-squares * alpha) * beta))
        value = math.exp(-float(j * j) * alpha) * beta / normalize
        if value < QUANTUM_SCALE or value < MAGICK_EPSILON:
            return width - 2
        width += 2
        if width > MAX_KERNEL_SIDE + 2:
            raise _too_large(what, sigma)


def _too_large(what: str, sigma: float) -> KernelError:
    return KernelError(
        f"{what}: sigma {sigma:g} needs a kernel over {MAX_KERNEL_SIDE} wide; give a smaller sigma or a radius"
    )


def _check_width(width: int, what: str) -> int:
    if width > MAX_KERNEL_SIDE:
        raise KernelError(f"{what} is {width} wide; kernels are limited to {MAX_KERNEL_SIDE} per side")
    return width
