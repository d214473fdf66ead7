"""Choosing the algorithm: kernel analysis, a cost model measured on this machine, and :class:`Plan`.

The constants below are nanoseconds per output element, measured on a 2-core
machine with ``python bench/calibrate.py`` (the NumPy methods: estimate against
measurement) and ``python bench/run.py`` (OpenCV's functions); the README's
Performance section lists them and the crossovers they imply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import KernelError, ParameterError
from ..kernels.weights import rank1_factors
from ..shapes import ConvGeometry, PaddingSpec, conv_geometry
from . import calibration
from .strips import direct_cost, separable_cost

Pair = tuple[int, int]

METHODS = ("auto", "direct", "separable", "fft", "box")
BACKENDS = ("auto", "numpy", "opencv")

# Cost model, nanoseconds per output element (2 threads, float32, measured at 1024x1024 and 4096x4096).
# NumPy path: one array pass (a multiply or an add over a cache-sized strip); a lone tap is two passes,
# taps of equal |weight| share one multiply (see strips.passes); strided windows cost more per kept
# output. The separable method's own model (tap by tap or BLAS) is strips.separable_cost.
# Gathering the padded input rows a chunk reads into its buffer (by polyphase component when strided: a
# strided copy), per padded-input element read.
_NP_GATHER = 0.5
_NP_STRIDED_GATHER = 1.5
# Strided passes cost more per kept output as the stride grows (more polyphase components, shorter arrays per
# NumPy call): a factor 1 + (sh*sw - 1) / this (1024 and 2048, random 3x3-15x15, strides 2 and 4).
_NP_STRIDED_DIRECT = 50.0
# The separable method's strided passes: a flat x1.3 at strides 2 and 4 (the Intel Xeon, bench/calibrate.py, two
# runs: against direct, separable measured 1.08x its estimate at stride 2 and 0.7x at stride 4 with the former
# 1 + (sh*sw - 1)/16, so the penalty hardly grows with the stride).
_NP_STRIDED_SEPARABLE = 1.3
# Strided FFT: its polyphase tiles cost this share of the stride-1 transform plus a part that shrinks with the
# kept outputs: 0.35 + this / (sh*sw), about 0.65 at stride 2 and 0.43 at stride 4 (1024 and 2048, measured).
_FFT_STRIDED = 1.2
# Running sums (box): float64 cumulative sums down and across, differences, scale.
_NP_BOX = 28.0
# FFT (overlap-save tiles, rfft2 on all cores): per padded-input element and per output element.
_FFT_PER_INPUT = 20.0
_FFT_PER_OUTPUT = 3.0
# OpenCV path (float32, stride 1): filter2D per tap below its own DFT switch, sepFilter2D per tap and per
# term (its intermediate), boxFilter.
_CV_TAP = 0.055
_CV_SEP_TAP = 0.04
_CV_SEP_TERM = 0.12
# Once an image no longer fits the cache (4096x4096 against 1024x1024, bench/run.py section 1), every OpenCV
# call pays for memory traffic, sepFilter2D most (its intermediate rows): ns per output added above this size.
# 3x3 rank 1 at 1024: sepFilter2D 0.36 vs filter2D 0.39 ms; at 4096: 15.3 vs 11.8 ms. Box 15x15 at 1024:
# sepFilter2D 1.15 vs boxFilter 1.5 ms; box 31x31: 2.55 vs 1.57 ms.
_CV_SEP_LARGE = 0.55
_CV_TAP_LARGE = 0.3
_CV_BOX_LARGE = 0.45
_CV_CACHED_OUTPUTS = 1 << 22
_CV_BOX = 1.4
_CV_BOX_PER_SIDE = 0.006
# OpenCV's filter2D switches to a one-core DFT at this kernel area (float32), costing about this much.
_CV_DFT_AREA = 130
_CV_DFT = 12.5
# Reading one polyphase component (a strided copy), per padded-input element.
_CV_GATHER = 3.0
# Computing at stride 1 and keeping every s-th output: the strided copy of the kept outputs (per kept output),
# on top of the stride-1 cost.
_SUBSAMPLE = 1.5

#: More separable terms than this are never worth it (each term is two 1-D passes).
MAX_SEPARABLE_TERMS = 4


@dataclass(frozen=True)
class Plan:
    """What :func:`convcli.engine.correlate2d` will do: the geometry, the method, the reason and the backend."""

    geometry: ConvGeometry
    method: str
    reason: str
    backend: str = "numpy"
    terms: tuple = field(default=(), repr=False, compare=False)
    #: Set when it is cheaper to compute every output at stride 1 with this geometry and keep every s-th one.
    full: ConvGeometry | None = field(default=None, repr=False, compare=False)


#: Relative residual ``||K - K_r||_F / ||K||_F`` a rank-``r`` split may leave, by the precision the work runs at.
#: float32: 2**-20 (about 9.5e-7), 16 units of float32 rounding (u = 2**-24): casting the weights to float32
#: already moves the kernel by up to u in that norm, and the rounding of the two 1-D passes and the input's own
#: float32 rounding put the result several u from the exact correlation, so dropping a term this small is no
#: change a float32 result can tell apart (a 15x15 Gaussian written with 12 significant digits leaves about
#: 1e-12 and is rank 1). float64: 1e-13, the SVD's own rounding on kernels of a few thousand taps per side.
SEPARABLE_RTOL = {"float32": 2.0**-20, "float64": 1e-13}


def separable_rtol(dtype: Any) -> float:
    """The rank tolerance of :func:`separable_terms` for work in ``dtype`` (float32, or float64 for the rest).

    >>> separable_rtol(np.float32) == 2.0**-20, separable_rtol(np.float64)
    (True, 1e-13)
    """
    return SEPARABLE_RTOL["float32" if np.dtype(dtype) == np.float32 else "float64"]


def separable_terms(kernel: np.ndarray, rtol: float = SEPARABLE_RTOL["float64"]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The kernel as a sum of ``outer(column, row)`` terms, as few as ``rtol`` allows.

    A rank-1 kernel is split by :func:`rank1_factors` when its factors are
    within ``rtol`` (exact for integer kernels such as Sobel). Otherwise the SVD, keeping the fewest
    leading terms whose residual ``||K - sum||_F`` (the root of the sum of
    the dropped squared singular values) is at most ``rtol * ||K||_F``; see
    :data:`SEPARABLE_RTOL` for the tolerance per precision.

    >>> len(separable_terms(np.ones((5, 5)))), len(separable_terms(np.eye(3)))
    (1, 3)

    A 15x15 Gaussian as a text file holds it, 12 significant digits: rank 1
    at float32's tolerance, not at float64's.

    >>> line = np.exp(-((np.arange(15) - 7) ** 2) / 15.0)
    >>> written = np.vectorize(lambda v: float(f"{v:.12g}"))(np.outer(line, line) / line.sum() ** 2)
    >>> len(separable_terms(written, rtol=separable_rtol(np.float32))), len(separable_terms(written)) > 1
    (1, True)
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if not np.any(kernel):
        return []
    norm = float(np.linalg.norm(kernel))
    factors = rank1_factors(kernel)
    if factors is not None and np.linalg.norm(np.outer(*factors) - kernel) <= rtol * norm:
        return [factors]
    u, s, vt = np.linalg.svd(kernel)
    # dropped[r] = ||K - K_r||_F: the root of the sum of the squared singular values after the first r.
    tail = np.sqrt(np.cumsum((s * s)[::-1])[::-1])
    dropped = np.append(tail, 0.0)
    rank = int(np.argmax(dropped <= rtol * norm))
    return [(u[:, i] * np.sqrt(s[i]), vt[i] * np.sqrt(s[i])) for i in range(rank)]


@lru_cache(maxsize=64)
def _analysis(data: bytes, shape: tuple[int, int], rtol: float = SEPARABLE_RTOL["float64"]) -> list:
    """:func:`separable_terms` cached by the kernel's bytes (planning a small filter must cost microseconds)."""
    return separable_terms(np.frombuffer(data, dtype=np.float64).reshape(shape), rtol)


def is_box(kernel: np.ndarray) -> bool:
    """True when every tap has the same non-zero weight (a box: running sums apply).

    >>> is_box(np.full((3, 5), 1 / 15)), is_box(np.eye(2))
    (True, False)
    """
    kernel = np.asarray(kernel)
    first = kernel.flat[0]
    return bool(first != 0 and np.all(kernel == first))


def opencv_available() -> bool:
    """OpenCV installed and not switched off by ``CONVCLI_NO_OPENCV=1``.

    Looked up without importing it (``import cv2`` takes tens of milliseconds):
    the import happens when a plan runs on OpenCV.
    """
    if os.environ.get("CONVCLI_NO_OPENCV", "") not in ("", "0"):
        return False
    return _opencv_installed()


@lru_cache(maxsize=1)
def _opencv_installed() -> bool:
    import sys

    if "cv2" in sys.modules:
        return True
    from importlib.util import find_spec

    try:
        return find_spec("cv2") is not None
    except (ImportError, ValueError):
        return False


#: ``auto`` leaves OpenCV out below this many outputs (whether or not cv2 is imported): importing it costs more
#: (40-120 ms) than it can save on a small image (a 451x300 photo's 3x3 filter takes about 1 ms either way).
CV_MIN_OUTPUTS = 1 << 19


def _worth_separating(kernel: np.ndarray, terms: list) -> bool:
    """Rank 1, or at most MAX_SEPARABLE_TERMS terms whose 1-D taps add up to fewer than the kernel's."""
    rank = len(terms)
    if rank == 1:
        return True
    return 1 < rank <= MAX_SEPARABLE_TERMS and rank * sum(kernel.shape) < kernel.size


def _costs(
    geometry: ConvGeometry, kernel: np.ndarray, terms: list, opencv: bool, raw: bool = False
) -> dict[tuple[str, str], float]:
    """Estimated nanoseconds of each (method, backend) that can run this correlation.

    The NumPy FFT's estimate comes from this machine's measured tile costs,
    OpenCV's from its functions' measured costs here at a few kernel sizes, and the
    direct and separable methods' from the fixed model times how far it was off here
    (:func:`convcli.engine.calibration.tap_scale`), unless ``raw`` or the calibration is off.
    """
    outputs = geometry.output[0] * geometry.output[1]
    measured = calibration.opencv_costs(outputs) if opencv and not raw else {}
    costs = _model_costs(geometry, kernel, terms, opencv, measured)
    if not raw:
        scale = calibration.tap_scale(outputs)
        for method in ("direct", "separable"):
            if (method, "numpy") in costs:
                costs[(method, "numpy")] *= scale
        table = calibration.fft_table(outputs)
        if table:  # small work has no table: the FFT module is not imported for it
            from .fft import estimate_ns

            estimate = estimate_ns(geometry, table, calibration.fft_speedup(outputs))
            if estimate is not None:
                costs[("fft", "numpy")] = estimate
    return costs


def measured_ns(points: dict[int, float], x: float, grows: bool = True) -> float:
    """ns per output at size ``x`` from costs measured at a few sizes: linear between them, the first below;
    above the last, extended along the last two points when the cost ``grows`` with the size, else flat.

    >>> measured_ns({3: 1.0, 7: 2.0, 15: 2.0}, 5), measured_ns({3: 1.0, 7: 2.0}, 1), measured_ns({3: 1.0, 7: 2.0}, 11)
    (1.5, 1.0, 3.0)
    >>> measured_ns({3: 1.0, 7: 2.0}, 11, grows=False)
    2.0
    """
    sizes = sorted(points)
    if x <= sizes[0] or len(sizes) == 1:
        return points[sizes[0]] if x <= sizes[0] or not grows else points[sizes[0]] * x / sizes[0]
    if x >= sizes[-1] and not grows:
        return points[sizes[-1]]
    upper = next((i for i, size in enumerate(sizes) if size >= x), len(sizes) - 1)
    a, b = sizes[upper - 1], sizes[upper]
    value = points[a] + (points[b] - points[a]) * (x - a) / (b - a)
    return max(value, points[sizes[-1]]) if x > sizes[-1] else value


def _model_costs(
    geometry: ConvGeometry, kernel: np.ndarray, terms: list, opencv: bool, measured: dict | None = None
) -> dict[tuple[str, str], float]:
    """The fixed model's ns per (method, backend); OpenCV's per-output costs from ``measured`` when given
    (:func:`convcli.engine.calibration.opencv_costs`: boxFilter by side, sepFilter2D by mean side per term,
    filter2D by taps, its DFT flat), the model's constants otherwise."""
    measured = measured or {}
    (kh, kw), (sh, sw) = kernel.shape, geometry.stride
    outputs = geometry.output[0] * geometry.output[1]
    inputs = geometry.padded[0] * geometry.padded[1]
    taps = int(np.count_nonzero(kernel))
    box = is_box(kernel)
    separable = _worth_separating(kernel, terms)
    plain = (sh, sw) == (1, 1) and geometry.dilation == (1, 1)
    costs: dict[tuple[str, str], float] = {}
    # Every chunk first gathers the padded rows it reads (strided: by polyphase component, a strided copy),
    # then every pass is contiguous and covers only the kept outputs (the separable pass down: kept rows, all
    # columns). The FFT's polyphase tiles transform less than the whole input.
    strided = (sh, sw) != (1, 1)
    gather = inputs * (_NP_STRIDED_GATHER if strided else _NP_GATHER)
    extra_phases = sh * sw - 1
    costs[("direct", "numpy")] = (
        outputs * direct_cost(kernel, geometry)[0] * (1 + extra_phases / _NP_STRIDED_DIRECT) + gather
    )
    if separable:
        costs[("separable", "numpy")] = (
            outputs * separable_cost(terms, geometry)[0] * (_NP_STRIDED_SEPARABLE if strided else 1.0) + gather
        )
    if box:
        costs[("box", "numpy")] = outputs * _NP_BOX * sw
    costs[("fft", "numpy")] = (_FFT_PER_INPUT * inputs + _FFT_PER_OUTPUT * outputs) * (
        0.35 + _FFT_STRIDED / (sh * sw) if strided else 1.0
    )
    if opencv:
        large = outputs > _CV_CACHED_OUTPUTS

        def per_output(method: str, x: float, model: float, past_cache: float = 0.0, grows: bool = True) -> float:
            # Measured costs include what an image past the caches adds (calibration.blend); the model adds it here.
            points = measured.get(method)
            return measured_ns(points, x, grows) if points else model + (past_cache if large else 0.0)

        # Strided or dilated: one filter2D per polyphase component, each read by a strided copy.
        phases = inputs * _CV_GATHER if not plain else 0.0
        if kh * kw < _CV_DFT_AREA or not plain:
            costs[("direct", "opencv")] = phases + outputs * per_output("direct", taps, taps * _CV_TAP, _CV_TAP_LARGE)
        if plain:
            if kh * kw >= _CV_DFT_AREA:
                costs[("fft", "opencv")] = outputs * per_output("fft", kh * kw, _CV_DFT, grows=False)
            if separable:
                side = (kh + kw) / 2
                term = per_output("separable", side, 2 * side * _CV_SEP_TAP + _CV_SEP_TERM, _CV_SEP_LARGE)
                costs[("separable", "opencv")] = outputs * len(terms) * term
            if box:
                side = max(kh, kw)
                cost = per_output("box", side, _CV_BOX + _CV_BOX_PER_SIDE * side, _CV_BOX_LARGE, grows=False)
                costs[("box", "opencv")] = outputs * cost
    return costs


def plan_correlation(
    input_size: Pair,
    kernel: np.ndarray,
    *,
    stride: Pair = (1, 1),
    padding: PaddingSpec = (0, 0),
    dilation: Pair = (1, 1),
    method: str = "auto",
    dtype: Any = np.float32,
    backend: str = "auto",
    job_images: int = 0,
) -> Plan:
    """Resolve the geometry and choose the method and backend.

    ``auto`` estimates each method's time with a cost model measured on this
    machine (nanoseconds per output: array passes for ``direct`` and per
    separable term, running sums for ``box``, transforms for ``fft``) and
    picks the cheapest; the reason says which and why. ``backend='auto'`` may
    use OpenCV for float32 work when it is importable and ``CONVCLI_NO_OPENCV``
    is not set (``Plan.backend`` says who runs: OpenCV's filter2D counts as
    ``fft`` for kernels of 130 taps or more, where it switches to its DFT);
    ``'numpy'`` forces NumPy/SciPy. Plans are cached (they are immutable), so
    planning a small filter costs microseconds.

    ``job_images``: how many images the job filters (the command line's count);
    OpenCV's plans are then charged each image's share of importing OpenCV
    (:func:`convcli.engine.calibration.opencv_import_ns`), so a one-shot run of a
    mid-size image stays on NumPy. 0 charges nothing. The charge never depends
    on whether cv2 happens to be imported already, nor on how many processes
    run the job, so every process of a job picks the same plan.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.size == 0:
        raise KernelError(f"kernel must be a non-empty 2-D array, got shape {kernel.shape}")
    stride = (stride, stride) if isinstance(stride, int) else stride
    dilation = (dilation, dilation) if isinstance(dilation, int) else dilation
    padding = (padding, padding) if isinstance(padding, int) else padding
    try:
        key = (
            tuple(input_size),
            kernel.tobytes(),
            kernel.shape,
            tuple(stride),
            padding if isinstance(padding, str) else tuple(padding),
            tuple(dilation),
            method,
            np.dtype(dtype).str,  # type: ignore[call-overload]
            backend,
            int(job_images),
            opencv_available() if backend != "numpy" else False,
            calibration.token(),
        )
        hash(key)
    except TypeError:
        return _plan(input_size, kernel, stride, padding, dilation, method, dtype, backend, job_images)
    return _cached_plan(key)


@lru_cache(maxsize=256)
def _cached_plan(key: tuple) -> Plan:
    input_size, data, shape, stride, padding, dilation, method, dtype, backend, images, _, _ = key
    kernel = np.frombuffer(data, dtype=np.float64).reshape(shape)
    return _plan(input_size, kernel, stride, padding, dilation, method, np.dtype(dtype), backend, images)


def _plan(
    input_size: Pair,
    kernel: np.ndarray,
    stride: Pair,
    padding: PaddingSpec,
    dilation: Pair,
    method: str,
    dtype: Any,
    backend: str,
    job_images: int = 0,
) -> Plan:
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if backend not in BACKENDS:
        raise ParameterError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    geometry = conv_geometry(input_size, (kernel.shape[0], kernel.shape[1]), stride, padding, dilation)
    opencv = backend != "numpy" and np.dtype(dtype) == np.float32 and opencv_available()
    if opencv and backend == "auto" and geometry.output[0] * geometry.output[1] < CV_MIN_OUTPUTS:
        # Never OpenCV here, even when cv2 happens to be imported: the choice (and the last bits of the result)
        # must not depend on what else the process has loaded.
        opencv = False
    if backend == "opencv" and np.dtype(dtype) == np.float32 and not opencv:
        raise ParameterError("backend 'opencv' needs opencv-python-headless: pip install 'convcli[fast]'")
    terms = _analysis(kernel.tobytes(), kernel.shape, separable_rtol(dtype))
    if method == "separable" and not _worth_separating(kernel, terms):
        raise ParameterError(
            "method 'separable' needs a rank-1 kernel, or a sum of a few rank-1 terms with fewer taps in all than "
            f"the kernel; this {kernel.shape[0]}x{kernel.shape[1]} kernel has rank {len(terms)} (use auto, direct or fft)"
        )
    if method == "box" and not is_box(kernel):
        raise ParameterError("method 'box' needs a kernel whose taps are all equal and non-zero (use auto or direct)")
    costs = _costs(geometry, kernel, terms, opencv)
    full = None
    if geometry.stride != (1, 1):
        # The obvious alternative to computing only the kept outputs: compute all of them (stride 1, same
        # padding) with the fastest stride-1 method and keep every s-th; never be slower than that.
        full = conv_geometry(geometry.input, geometry.kernel, (1, 1), geometry.padding, geometry.dilation)
        keep = geometry.output[0] * geometry.output[1] * _SUBSAMPLE
        for key, value in _costs(full, kernel, terms, opencv).items():
            costs[(key[0], key[1] + ", all then subsampled")] = value + keep
    imported = 0.0
    if opencv and job_images > 0 and backend == "auto":
        imported = calibration.opencv_import_ns() / job_images
        for key in costs:
            if key[1].startswith("opencv"):
                costs[key] += imported
    candidates = [key for key in costs if method in ("auto", key[0])]
    if backend == "opencv" and any(b.startswith("opencv") for _, b in candidates):
        # OpenCV where it can run the method; NumPy/SciPy for what it cannot (strided boxes, for one).
        candidates = [key for key in candidates if key[1].startswith("opencv")]
    best = min(candidates, key=lambda key: costs[key])
    runner = best[1].split(",")[0]
    subsampled = full if best[1] != runner else None
    if method != "auto":
        return Plan(geometry, method, f"requested (on {best[1]})", runner, tuple(terms), subsampled)
    shape = f"{kernel.shape[0]}x{kernel.shape[1]}"
    kind = "box" if is_box(kernel) else f"rank-{len(terms)}" if len(terms) <= MAX_SEPARABLE_TERMS else "full-rank"
    others = ", ".join(f"{m} on {b} {costs[(m, b)] / 1e6:.3g}" for m, b in costs if (m, b) != best)
    reason = f"{best[0]} on {best[1]}: {kind} {shape} kernel, estimated {costs[best] / 1e6:.3g} ms, the least (vs {others} ms)"
    if imported:
        reason += f"; OpenCV's estimates include {imported / 1e6:.3g} ms for importing it (this image's share)"
    return Plan(geometry, best[0], reason, runner, tuple(terms), subsampled)
