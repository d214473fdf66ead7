"""ImageMagick's named convolution kernels (``im:Sobel:90``, ``im:Gaussian:0x2``...), value for value.

The weights equal what ImageMagick 6.9.11 prints for
``convert xc: -define morphology:showKernel=1 -morphology Convolve 'KERNEL' null:``
(``tests/test_kernels_magick.py`` compares every kernel and a grid of
arguments with the real program at its printed precision, 6 significant
digits). The algorithms follow ``magick/morphology.c`` (``ParseKernelName``,
``AcquireKernelBuiltIn``, ``ScaleKernelInfo``, ``RotateKernelInfo``) and
``magick/gem.c`` (``GetOptimalKernelWidth1D/2D``) of ImageMagick 6; where
6.9.11 behaves differently from the source we read, the program wins and the
difference is noted below.

Syntax
------
``im:NAME[:ARGS]``: the name case-insensitive as ImageMagick takes it
(``im:sobel`` is ``im:Sobel``), the arguments an ImageMagick geometry
(``RADIUSxSIGMA``, ``RADIUS,SIGMA1,SIGMA2``, ``TYPE,ANGLE``...) with
ImageMagick's defaults (0 for a missing number, 1 for ``Unity``'s scale).

Conventions (established with the real program)
-----------------------------------------------
* Weights are listed as ImageMagick lists them: row 0 on top, column 0 on the
  left; ``kernel.weights[i, j]`` is row ``i`` of the printed table.
* ``-morphology Correlate K`` is cross-correlation with ``K`` (convcli's
  default); ``-morphology Convolve K`` flips ``K`` by 180 degrees (convcli's
  ``--convolve``). Shown with a 5x5 impulse of 1000 in a 16-bit PGM:
  ``convert imp.pgm -morphology Convolve '3x3: 1,2,3,4,5,6,7,8,9' -depth 16
  pgm:-`` reproduces the kernel around the impulse (1000 ... 9000 reading
  order), ``Correlate`` the kernel turned by 180 degrees.
* The origin of a ``WxH`` kernel is ``((H-1)//2, (W-1)//2)`` (row, column):
  the centre for odd sizes, the tap just above/left of the centre for even
  ones, so a correlation window spans one more tap below/right, as PyTorch's
  'same'. ``Correlate '2x2: 1,2,3,4'`` on the impulse at (2, 2) writes 4 at
  (1, 1) and 1 at (2, 2). ``Convolve`` reflects the kernel *and* its origin
  (it computes ``sum K[u, v] X[i - u + oy, j - v + ox]``), so for even sizes
  it equals convcli's ``--convolve`` only with the extra row/column placed
  top/left ('same' as ndimage), not with PyTorch's placement.
* Some kernels have their origin elsewhere: ``Comet`` at its first tap
  (``+0+0``; ``Comet:...,180`` at its last). convcli applies kernels about
  their centre, so such a kernel is shifted relative to ImageMagick until an
  origin can be given; :class:`MagickKernel` keeps the origin and the
  kernel's description states it.
* Edges: ImageMagick's default virtual pixels (``-virtual-pixel Edge``)
  repeat the edge pixel, convcli's ``--pad-mode replicate``. So ``convert in
  -morphology Convolve K out`` is ``convcli filter in -k im:K --convolve
  --padding same --pad-mode replicate`` (for odd sizes, and even sizes with
  the top/left placement above); ``Correlate`` the same without
  ``--convolve``. A non-HDRI build (Q16) clips results to ``[0, QuantumRange]``
  and rounds them to integers; add ``-bias`` / ``-define convolve:bias=`` to
  keep negative responses.

Normalisation as ImageMagick does it (the "Normalized" / "Zero-Summing"
lines of ``showKernel``): ``Gaussian`` and ``Blur`` are divided by their sum;
``DoG`` and ``LoG`` have their positive and negative parts scaled separately
to +1 and -1 (``ScaleKernelInfo`` with ``^``, so they sum to 0); ``Comet`` is
divided by its sum; ``FreiChen`` types 1, 2 and 11-19 carry fixed factors
(``sqrt(2)/2``, ``1/2``, ``1/6``, ``1/3``, as written in the source:
``1.0/2.0*MagickSQ2`` is ``sqrt(2)/2``, not ``1/(2 sqrt(2))``); the other
named constants (``Sobel``, ``Laplacian``, ``Binomial``...) are not
normalised. :mod:`convcli.kernels.normalize` applies ``!`` and ``^`` to any
kernel.

Deliberate refusals (ImageMagick would produce something else)
--------------------------------------------------------------
* Lists of kernels: ``FreiChen:10`` (nine kernels) and the ``@``, ``>``,
  ``<`` expansion flags; convcli resolves a spec to one kernel.
* A fractional radius whose ``2*R+1`` truncates to an even width for
  ``Gaussian``, ``DoG``, ``LoG``: 6.9.11 then fills only part of the kernel
  and prints uninitialised memory (``Gaussian:1.5x1`` is 4x4 with values
  like ``5e-239``).
* ``Binomial`` radius above 8: ImageMagick's 64-bit integer factorials
  overflow (``Binomial:9`` prints a sum of 3.76e9 instead of 4^18).
* A 45-degree rotation of a kernel that is not 3x3, a 90-degree rotation of
  a non-square 2-D kernel (ImageMagick prints an error and goes on).
* Arguments that are not a geometry (``im:Sobel:abc``), which ImageMagick
  reads as 0 without a word.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import KernelError, UnknownKernelError
from .weights import MAX_KERNEL_SIDE

#: ImageMagick's constants (magick/image-private.h and magick-type.h, IM6).
MAGICK_EPSILON = 1.0e-12
MAGICK_PI = 3.14159265358979323846264338327950288419716939937510
MAGICK_2PI = 6.28318530717958647692528676655900576839433879875020
MAGICK_SQ2PI = 2.50662827463100024161235523934010416269302368164062
MAGICK_SQ2 = 1.41421356237309504880
#: 1/QuantumRange of a Q16 build: the accuracy GetOptimalKernelWidth aims for.
QUANTUM_SCALE = 1.0 / 65535.0

#: Largest ``Binomial`` radius whose integer arithmetic fits ImageMagick's 64 bits.
MAX_BINOMIAL_RADIUS = 8


@dataclass(frozen=True)
class Geometry:
    """An ImageMagick geometry argument: ``rho x sigma + xi + psi`` and which were given.

    ``given`` holds ``"rho"``, ``"sigma"``, ``"xi"``, ``"psi"`` for the
    numbers present; ``flags`` the meta characters (``!``, ``^``, ``%``,
    ``@``, ``<``, ``>``, ``#``).
    """

    rho: float = 0.0
    sigma: float = 0.0
    xi: float = 0.0
    psi: float = 0.0
    given: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FOUR = re.compile(rf"^\s*({_NUMBER.pattern})[ ,]+({_NUMBER.pattern})[ ,]+({_NUMBER.pattern})[ ,]+({_NUMBER.pattern})")


def parse_geometry(text: str, what: str = "geometry") -> Geometry:
    """Parse an ImageMagick geometry as ``ParseGeometry`` does (``0x2``, ``0x1,90``, ``0,1,2``, ``5x3+1+1``).

    Numbers are separated by ``x``, ``,`` or ``/`` (and ``+``/``-`` before
    the offsets); four numbers separated by spaces or commas are taken as
    they stand. Unlike ImageMagick, anything that is not part of a geometry
    is an error instead of a silent 0.

    >>> g = parse_geometry("0x1,90")
    >>> g.rho, g.sigma, g.xi, sorted(g.given)
    (0.0, 1.0, 90.0, ['rho', 'sigma', 'xi'])
    """
    four = _FOUR.match(text)
    if four:
        rho, sigma, xi, psi = (float(four.group(i)) for i in range(1, 5))
        return Geometry(rho, sigma, xi, psi, frozenset({"rho", "sigma", "xi", "psi"}))
    flags = set()
    chars = []
    for c in text:
        if c.isspace() or c in "()":
            continue
        if c in "%!<>#^@":
            flags.add(c)
        elif c in "+-,./:xXeE0123456789":
            chars.append(c)
        else:
            raise KernelError(f"{what}: {text!r} is not an ImageMagick geometry such as 90, 0x2 or 0x1,90")
    p = "".join(chars)
    values: dict[str, float] = {}
    pos = 0

    def number() -> float | None:
        nonlocal pos
        match = _NUMBER.match(p, pos)
        if not match:
            return None
        pos = match.end()
        return float(match.group())

    match = _NUMBER.match(p, 0)
    if match and (match.end() == len(p) or p[match.end()] in "xX:,/"):
        values["rho"] = float(match.group())
        pos = match.end()
    if pos < len(p) and p[pos] in "xX:,/":
        separator = p[pos]
        pos += 1
        if separator in ",/" or pos >= len(p) or p[pos] not in "+-":
            value = number()
            if value is not None:
                values["sigma"] = value
    negative = {"xi": False, "psi": False}
    for key in ("xi", "psi"):
        if pos < len(p) and p[pos] in "+-,/:":
            if p[pos] in ",/:":
                pos += 1
            while pos < len(p) and p[pos] in "+-":
                negative[key] ^= p[pos] == "-"
                pos += 1
            value = number()
            if value is not None:
                values[key] = -value if negative[key] else value
        else:
            break
    if pos != len(p):
        raise KernelError(f"{what}: {text!r} is not an ImageMagick geometry such as 90, 0x2 or 0x1,90")
    if "rho" in values and "sigma" not in values and "xi" in values and negative["xi"] and "psi" not in values:
        values["sigma"] = values.pop("xi")  # ImageMagick's negative height: 30x-20 is 30 and -20
    for value in values.values():
        if not math.isfinite(value):
            raise KernelError(f"{what}: {text!r} holds a number that is not finite")
    return Geometry(
        values.get("rho", 0.0),
        values.get("sigma", 0.0),
        values.get("xi", 0.0),
        values.get("psi", 0.0),
        frozenset(values),
        frozenset(flags),
    )


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
            self.values = rotated.reshape(3, 3)
            if (self.x, self.y) != (1, 1):
                x, y = self.x - 1, self.y - 1
                if x == y:
                    x = 0
                elif x == 0:
                    x = -y
                elif x == -y:
                    y = 0
                elif y == 0:
                    y = x
                self.x, self.y = x + 1, y + 1
            angle = math.fmod(angle + 315.0, 360.0)
            self.angle = math.fmod(self.angle + 45.0, 360.0)
        if 45.0 < math.fmod(angle, 180.0) <= 135.0:
            if w == 1 or h == 1:  # transpose a 1-D kernel
                self.values = self.values.reshape(w, h)
                self.x, self.y = self.y, self.x
                if self.values.shape[1] == 1:
                    angle = math.fmod(angle + 270.0, 360.0)
                    self.angle = math.fmod(self.angle + 90.0, 360.0)
                else:
                    angle = math.fmod(angle + 90.0, 360.0)
                    self.angle = math.fmod(self.angle + 270.0, 360.0)
            elif w == h:
                self.values = np.rot90(self.values, -1).copy()  # clockwise
                x = self.x * 2 - w + 1
                y = self.y * 2 - h + 1
                self.x = int((-y + w - 1) / 2)
                self.y = int((x + h - 1) / 2)
                angle = math.fmod(angle + 270.0, 360.0)
                self.angle = math.fmod(self.angle + 90.0, 360.0)
            else:
                raise KernelError(f"{what}: ImageMagick cannot rotate a non-square {w}x{h} kernel by 90 degrees")
        if 135.0 < angle <= 225.0:
            h, w = self.values.shape
            self.values = self.values.ravel()[::-1].reshape(h, w).copy()
            self.x = w - self.x - 1
            self.y = h - self.y - 1
            angle = math.fmod(angle - 180.0, 360.0)
            self.angle = math.fmod(self.angle + 180.0, 360.0)

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


# ---------------------------------------------------------------------------
# The kernels


def _gaussian_grid(width: int, sigma: float, inverse_b: float) -> np.ndarray:
    """``exp(-(u^2+v^2)/(2 sigma^2)) * B`` on a width x width grid centred at (width-1)//2."""
    r = (width - 1) // 2
    u = np.arange(-r, r + 1, dtype=np.float64)
    squares = u[None, :] ** 2 + u[:, None] ** 2
    a = 1.0 / (2.0 * sigma * sigma)
    return np.exp(-squares * a) * (1.0 / inverse_b)


def _gaussian_or_unity(width: int, sigma: float) -> np.ndarray:
    """The 2-D Gaussian ``exp(-r^2/(2 sigma^2)) / (2 pi sigma^2)``, or a 1 at the centre when sigma is about 0."""
    if sigma > MAGICK_EPSILON:
        return _gaussian_grid(width, sigma, MAGICK_2PI * sigma * sigma)
    return _unity(width)


def _unity(width: int) -> np.ndarray:
    values = np.zeros((width, width))
    values[(width - 1) // 2, (width - 1) // 2] = 1.0
    return values


def _radius_width(g: Geometry, what: str) -> int | None:
    """Gaussian/DoG/LoG: ``(size_t)(2*radius+1)`` when radius >= 1 (refusing even widths, see the module)."""
    if g.rho < 1.0:
        return None
    width = _check_width(int(2.0 * g.rho + 1.0), what)
    if width % 2 == 0:
        raise KernelError(
            f"{what}: radius {g.rho:g} gives an even width {width}, which ImageMagick 6 fills only in part; "
            "use a whole radius"
        )
    return width


def _gaussian(g: Geometry, what: str) -> _Build:
    sigma = abs(g.sigma)
    width = _radius_width(g, what) or _check_width(optimal_width_2d(g.rho, sigma, what), what)
    values = _gaussian_or_unity(width, sigma)
    build = _Build("gaussian", values)
    build.correlate_normalize()
    return build


def _dog(g: Geometry, what: str) -> _Build:
    sigma, sigma2 = abs(g.sigma), abs(g.xi)
    width = _radius_width(g, what)
    if width is None:
        width = _check_width(optimal_width_2d(g.rho, sigma if sigma >= sigma2 else sigma2, what), what)
    values = _gaussian_or_unity(width, sigma)
    values = values - _gaussian_or_unity(width, sigma2)
    build = _Build("gaussian", values)
    build.correlate_normalize()
    return build


def _log(g: Geometry, what: str) -> _Build:
    sigma = abs(g.sigma)
    width = _radius_width(g, what) or _check_width(optimal_width_2d(g.rho, sigma, what), what)
    if sigma > MAGICK_EPSILON:
        r = (width - 1) // 2
        u = np.arange(-r, r + 1, dtype=np.float64)
        squares = u[None, :] ** 2 + u[:, None] ** 2
        big_r = squares * (1.0 / (2.0 * sigma * sigma))
        values = (1 - big_r) * np.exp(-big_r) * (1.0 / (MAGICK_PI * sigma**4))
    else:
        values = _unity(width)
    build = _Build("gaussian", values)
    build.correlate_normalize()
    return build


def _blur(g: Geometry, what: str) -> _Build:
    sigma = abs(g.sigma)
    width = int(2.0 * g.rho + 1.0) if g.rho >= 1.0 else optimal_width_1d(g.rho, sigma, what)
    _check_width(width, what)
    values = np.zeros(width)
    if sigma > MAGICK_EPSILON:
        # KernelRank 3: a Gaussian sampled 3 times per tap, each tap the sum of its 3 samples.
        v = (width * 3 - 1) // 2
        s = sigma * 3
        alpha = 1.0 / (2.0 * s * s)
        beta = 1.0 / (MAGICK_SQ2PI * s)
        u = np.arange(-v, v + 1)
        np.add.at(values, (u + v) // 3, np.exp(-(u * u).astype(np.float64) * alpha) * beta)
    else:
        values[(width - 1) // 2] = 1.0
    build = _Build("blur", values[np.newaxis, :])
    build.correlate_normalize()
    build.rotate(g.xi, what)
    return build


def _comet(g: Geometry, what: str) -> _Build:
    sigma = abs(g.sigma)
    width = (optimal_width_1d(g.rho, sigma, what) - 1) // 2 + 1 if g.rho < 1.0 else int(g.rho)
    _check_width(width, what)
    values = np.zeros(width)
    if sigma > MAGICK_EPSILON:
        v = width * 3
        s = sigma * 3
        a = 1.0 / (2.0 * s * s)
        u = np.arange(v)
        np.add.at(values, u // 3, np.exp(-(u * u).astype(np.float64) * a))
    else:
        values[0] = 1.0
    build = _Build("comet", values[np.newaxis, :], (0, 0))
    build.values = magick_scale(build.values, "!")
    build.rotate(g.xi, what)
    return build


def _binomial(g: Geometry, what: str) -> _Build:
    radius = 1 if g.rho < 1.0 else int(g.rho)
    if radius > MAX_BINOMIAL_RADIUS:
        raise KernelError(
            f"{what}: radius {radius} overflows ImageMagick's 64-bit factorials; use 1 to {MAX_BINOMIAL_RADIUS}"
        )
    width = 2 * radius + 1
    row = np.array([math.comb(width - 1, k) for k in range(width)], dtype=np.float64)
    return _Build("binomial", np.outer(row, row))


_LAPLACIANS = {
    0: [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    1: [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
    2: [[-2, 1, -2], [1, 4, 1], [-2, 1, -2]],
    3: [[1, -2, 1], [-2, 4, -2], [1, -2, 1]],
    5: [[-4, -1, 0, -1, -4], [-1, 2, 3, 2, -1], [0, 3, 4, 3, 0], [-1, 2, 3, 2, -1], [-4, -1, 0, -1, -4]],
    7: [
        [-10, -5, -2, -1, -2, -5, -10],
        [-5, 0, 3, 4, 3, 0, -5],
        [-2, 3, 6, 7, 6, 3, -2],
        [-1, 4, 7, 8, 7, 4, -1],
        [-2, 3, 6, 7, 6, 3, -2],
        [-5, 0, 3, 4, 3, 0, -5],
        [-10, -5, -2, -1, -2, -5, -10],
    ],
    15: [[0, 0, -1, 0, 0], [0, -1, -2, -1, 0], [-1, -2, 16, -2, -1], [0, -1, -2, -1, 0], [0, 0, -1, 0, 0]],
    19: [
        [0, -1, -1, -2, -2, -2, -1, -1, 0],
        [-1, -2, -4, -5, -5, -5, -4, -2, -1],
        [-1, -4, -5, -3, 0, -3, -5, -4, -1],
        [-2, -5, -3, 12, 24, 12, -3, -5, -2],
        [-2, -5, 0, 24, 40, 24, 0, -5, -2],
        [-2, -5, -3, 12, 24, 12, -3, -5, -2],
        [-1, -4, -5, -3, 0, -3, -5, -4, -1],
        [-1, -2, -4, -5, -5, -5, -4, -2, -1],
        [0, -1, -1, -2, -2, -2, -1, -1, 0],
    ],
}


def _laplacian(g: Geometry, what: str) -> _Build:
    # ImageMagick's switch: types 0-3, 5, 7, 15, 19; any other number is type 0 (Laplacian:4 is the 8-neighbour one).
    return _Build("laplacian", np.array(_LAPLACIANS.get(int(g.rho), _LAPLACIANS[0]), dtype=np.float64))


def _fixed(kind: str, rows: list[list[float]]) -> Callable[[Geometry, str], _Build]:
    def build(g: Geometry, what: str) -> _Build:
        kernel = _Build(kind, np.array(rows, dtype=np.float64))
        kernel.rotate(g.rho, what)
        return kernel

    return build


_S = MAGICK_SQ2
_FREICHEN_SCALE = 1.0 / 2.0 * MAGICK_SQ2  # as written in morphology.c: sqrt(2)/2
_FREICHEN: dict[int, tuple[list[list[float]], float]] = {
    0: ([[1, 0, -1], [_S, 0, -_S], [1, 0, -1]], 1.0),
    1: ([[1, 0, -1], [_S, 0, -_S], [1, 0, -1]], _FREICHEN_SCALE),
    2: ([[1, _S, 0], [_S, 0, -_S], [0, -_S, -1]], _FREICHEN_SCALE),
    11: ([[1, 0, -1], [_S, 0, -_S], [1, 0, -1]], _FREICHEN_SCALE),
    12: ([[1, _S, 1], [0, 0, 0], [1, _S, 1]], _FREICHEN_SCALE),
    13: ([[_S, -1, 0], [-1, 0, 1], [0, 1, -_S]], _FREICHEN_SCALE),
    14: ([[0, 1, -_S], [-1, 0, 1], [_S, -1, 0]], _FREICHEN_SCALE),
    15: ([[0, -1, 0], [1, 0, 1], [0, -1, 0]], 1.0 / 2.0),
    16: ([[1, 0, -1], [0, 0, 0], [-1, 0, 1]], 1.0 / 2.0),
    17: ([[1, -2, 1], [-2, 4, -2], [-1, -2, 1]], 1.0 / 6.0),  # the -1 at the bottom left is ImageMagick's
    18: ([[-2, 1, -2], [1, 4, 1], [-2, 1, -2]], 1.0 / 6.0),
    19: ([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1.0 / 3.0),
}


def _freichen(g: Geometry, what: str) -> _Build:
    kind = int(g.rho)
    if kind == 10:
        raise KernelError(
            f"{what}: FreiChen:10 is a list of nine kernels; convcli takes one at a time (FreiChen:11 to FreiChen:19)"
        )
    rows, factor = _FREICHEN.get(kind, _FREICHEN[0])
    build = _Build("freichen", np.array(rows, dtype=np.float64))
    if factor != 1.0:
        build.scale(factor)
    if abs(g.sigma) >= MAGICK_EPSILON:
        build.rotate(g.sigma, what)
    elif g.rho > 30.0 or g.rho < -30.0:
        build.rotate(g.rho, what)  # a large "type" is an angle for type 0
    return build


def _unity_kernel(g: Geometry, what: str) -> _Build:
    scale = g.rho if "rho" in g.given else 1.0
    return _Build("unity", np.array([[scale]]))


@dataclass(frozen=True)
class _Entry:
    name: str
    usage: str
    default: str
    description: str
    build: Callable[[Geometry, str], _Build]


_ENTRIES = [
    _Entry("Unity", "im:Unity[:SCALE]", "Unity", "1x1 kernel holding SCALE (default 1)", _unity_kernel),
    _Entry(
        "Gaussian",
        "im:Gaussian:RADIUSxSIGMA",
        "Gaussian:0x1",
        "2-D Gaussian, sum 1; radius 0 = ImageMagick's automatic size (tail below 1/65535)",
        _gaussian,
    ),
    _Entry(
        "DoG",
        "im:DoG:RADIUS,SIGMA1,SIGMA2",
        "DoG:0,1,2",
        "difference of Gaussians, positive and negative parts scaled to +1 and -1 (sum 0)",
        _dog,
    ),
    _Entry(
        "LoG",
        "im:LoG:RADIUSxSIGMA",
        "LoG:0x1",
        "Laplacian of Gaussian (positive centre), parts scaled to +1 and -1 (sum 0)",
        _log,
    ),
    _Entry(
        "Blur",
        "im:Blur:RADIUSxSIGMA[,ANGLE]",
        "Blur:0x1",
        "1-D Gaussian row (ImageMagick's 3x oversampled curve), sum 1; ANGLE 90 makes it a column",
        _blur,
    ),
    _Entry(
        "Comet",
        "im:Comet:WIDTHxSIGMA[,ANGLE]",
        "Comet:0x1",
        "half a 1-D Gaussian, sum 1; ImageMagick's origin is its first tap (convcli centres it)",
        _comet,
    ),
    _Entry(
        "Binomial",
        "im:Binomial[:RADIUS]",
        "Binomial",
        "binomial coefficients C(n,u)*C(n,v), not normalised (sum 4^n); radius 1 to 8",
        _binomial,
    ),
    _Entry(
        "Laplacian",
        "im:Laplacian[:TYPE]",
        "Laplacian",
        "discrete Laplacians: 0 (8-neighbour, centre 8), 1 (4-neighbour), 2, 3, 5 (5x5), 7 (7x7), 15 and 19 "
        "(LoG 5x5, 9x9); other types are 0",
        _laplacian,
    ),
    _Entry(
        "Sobel",
        "im:Sobel[:ANGLE]",
        "Sobel",
        "Sobel [1 0 -1; 2 0 -2; 1 0 -1], turned clockwise by ANGLE (45-degree steps)",
        _fixed("sobel", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
    ),
    _Entry(
        "Roberts",
        "im:Roberts[:ANGLE]",
        "Roberts",
        "Roberts [0 0 0; 1 -1 0; 0 0 0], turned clockwise by ANGLE",
        _fixed("roberts", [[0, 0, 0], [1, -1, 0], [0, 0, 0]]),
    ),
    _Entry(
        "Prewitt",
        "im:Prewitt[:ANGLE]",
        "Prewitt",
        "Prewitt [1 0 -1] x3 rows, turned clockwise by ANGLE",
        _fixed("prewitt", [[1, 0, -1], [1, 0, -1], [1, 0, -1]]),
    ),
    _Entry(
        "Compass",
        "im:Compass[:ANGLE]",
        "Compass",
        "Prewitt's compass [1 1 -1; 1 -2 -1; 1 1 -1], turned clockwise by ANGLE",
        _fixed("compass", [[1, 1, -1], [1, -2, -1], [1, 1, -1]]),
    ),
    _Entry(
        "Kirsch",
        "im:Kirsch[:ANGLE]",
        "Kirsch",
        "Kirsch's compass [5 -3 -3; 5 0 -3; 5 -3 -3], turned clockwise by ANGLE",
        _fixed("kirsch", [[5, -3, -3], [5, 0, -3], [5, -3, -3]]),
    ),
    _Entry(
        "FreiChen",
        "im:FreiChen[:TYPE[,ANGLE]]",
        "FreiChen",
        "Frei-Chen: type 0 (Sobel with sqrt 2), 1, 2, 11-19 (ImageMagick's pre-weighted set); TYPE over 30 is an angle",
        _freichen,
    ),
]
_BY_NAME = {entry.name.lower(): entry for entry in _ENTRIES}

#: The ImageMagick kernel names convcli knows, as ImageMagick spells them.
MAGICK_KERNEL_NAMES = tuple(entry.name for entry in _ENTRIES)

_NAME_RE = re.compile(r"^\s*([A-Za-z]+)[\s,:]*(.*?)\s*$", re.DOTALL)


def magick_kernel(text: str) -> MagickKernel:
    """Build ImageMagick's named kernel ``NAME[:ARGS]`` (without ``im:``) as ImageMagick 6.9.11 does.

    Raises
    ------
    UnknownKernelError
        The name is not one of :data:`MAGICK_KERNEL_NAMES`.
    KernelError
        The arguments are not a geometry, or ask for something convcli refuses
        (see the module docstring).

    Examples
    --------
    >>> magick_kernel("Sobel:90").weights
    array([[ 1.,  2.,  1.],
           [ 0.,  0.,  0.],
           [-1., -2., -1.]])
    >>> magick_kernel("Comet:0x1,180").origin
    (0, 4)
    """
    what = f"kernel 'im:{text.strip()}'"
    match = _NAME_RE.match(text)
    entry = _BY_NAME.get(match.group(1).lower()) if match else None
    if match is None or entry is None:
        names = ", ".join(MAGICK_KERNEL_NAMES)
        raise UnknownKernelError(f"{what}: not one of ImageMagick's convolution kernels known here ({names})")
    geometry = parse_geometry(match.group(2), what)
    if geometry.flags & {"@", "<", ">"}:
        raise KernelError(
            f"{what}: the '@', '<' and '>' flags make ImageMagick list rotated copies; give one angle instead "
            f"(e.g. im:{entry.name}:45)"
        )
    return entry.build(geometry, what).result(entry.name)


def magick_catalogue() -> list[tuple[str, str, str]]:
    """``(usage, default spec, description)`` of every ``im:`` kernel, for ``convcli kernels``."""
    return [(entry.usage, f"im:{entry.default}", entry.description) for entry in _ENTRIES]
