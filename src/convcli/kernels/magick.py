"""ImageMagick's named convolution kernels (``im:Sobel:90``, ``im:Gaussian:0x2``...), value for value.

The weights equal what ImageMagick 6.9.11 prints for
``convert xc: -define morphology:showKernel=1 -morphology Convolve 'KERNEL' null:``
(``tests/test_kernels_magick.py`` compares every kernel and a grid of
arguments with the real program at its printed precision, 6 significant
digits). The algorithms follow ``magick/morphology.c`` (``ParseKernelName``,
``AcquireKernelBuiltIn``, ``ScaleKernelInfo``, ``RotateKernelInfo``) and
``magick/gem.c`` (``GetOptimalKernelWidth1D/2D``) of ImageMagick 6; where
6.9.11 behaves differently from the source we read, the program wins and the
difference is noted below. The arguments are parsed by
:mod:`convcli.kernels.magick_geometry`; the arithmetic the kernels share (the
:class:`MagickKernel` record, scaling, rotation, the optimal widths) is in
:mod:`convcli.kernels.magick_build`; this module holds the kernels themselves
and their catalogue.

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
from .magick_build import (
    MAGICK_2PI,
    MAGICK_EPSILON,
    MAGICK_PI,
    MAGICK_SQ2,
    MAGICK_SQ2PI,
    MagickKernel,
    _Build,
    _check_width,
    magick_scale,
    optimal_width_1d,
    optimal_width_2d,
)
from .magick_geometry import Geometry, parse_geometry

#: Largest ``Binomial`` radius whose integer arithmetic fits ImageMagick's 64 bits.
MAX_BINOMIAL_RADIUS = 8


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
