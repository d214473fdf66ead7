"""The tap-by-tap methods timed on this machine: how far the fixed model's constants are off here.

The NumPy direct and separable methods are estimated from per-pass constants
(:data:`convcli.engine.strips.PASS_NS` and the rest) fitted on one CPU. On
another they can be off by a factor that is nearly the same for every kernel of
a kind: on a 2-core AMD EPYC the direct method ran at 0.4-0.7 of its estimate and
the separable one at 0.4-0.8, while the FFT's estimate (from its own probe) was
right, so with the FFT calibrated and the taps not, ``auto`` chose within 1.1x of
the fastest method in only 38-39 of the 48 cells of ``bench/calibrate.py`` (worst
2.0-2.1x: the FFT where the separable method was faster). :func:`probe_taps` runs each *variant* of the
two methods on a 1024x2048 image (past the caches, as the large work that is
calibrated) and returns measured over estimated time per variant
(:data:`VARIANTS`); the plan multiplies the fixed model's estimates of both
methods by their geometric mean (:func:`convcli.engine.calibration.tap_scale`).

An earlier attempt scaled the methods by a probe on a 512x512 image and made the
choice worse: the image fitted the caches, which the work that matters does not.
"""

from __future__ import annotations

import time

import numpy as np

from ..parallel import serial
from ..shapes import conv_geometry
from . import strips

#: Rows and columns of the probe's image: 2M outputs, 8 MB of float32.
PROBE_SHAPE = (1024, 2048)
#: The variants timed, each with the kernel it is timed on (kind, side) and its stride: the direct method tap by
#: tap at stride 1 and strided, the separable one tap by tap and by BLAS at stride 1, and strided (tap by tap).
VARIANTS = {
    "direct": ("random", 5, 1),
    "direct strided": ("random", 7, 2),
    "separable": ("gaussian", 7, 1),
    "separable blas": ("gaussian", 31, 1),
    "separable strided": ("gaussian", 15, 2),
}
#: Scales outside this range are a disturbed probe, not a CPU (quiet machines: 0.4 to 1.2).
SCALE_RANGE = (0.2, 4.0)


def kernel_for(kind: str, side: int) -> np.ndarray:
    """The probe's kernels: a normalised Gaussian (rank 1) or seeded uniform random weights (full rank).

    >>> round(float(kernel_for("gaussian", 7).sum()), 12), int(np.linalg.matrix_rank(kernel_for("random", 5)))
    (1.0, 5)
    """
    if kind == "gaussian":
        line = np.exp(-0.5 * ((np.arange(side) - side // 2) / max(0.5, side / 6)) ** 2)
        return np.outer(line, line) / line.sum() ** 2
    return np.random.default_rng(side).uniform(-1, 1, (side, side)) / side


def variant_of(method: str, kernel: np.ndarray, terms: list, geometry) -> str:  # type: ignore[no-untyped-def]
    """The :data:`VARIANTS` name the plan's ``method`` runs as on this work (``''``: not a calibrated variant).

    >>> g = conv_geometry((64, 64), (7, 7), (1, 1), (3, 3), (1, 1))
    >>> k = kernel_for("gaussian", 7)
    >>> from convcli.engine.plan import _analysis
    >>> variant_of("separable", k, _analysis(k.tobytes(), k.shape), g), variant_of("direct", k, [], g)
    ('separable', 'direct')
    """
    strided = geometry.stride != (1, 1) or geometry.dilation != (1, 1)
    if method == "direct":
        if strided:
            return "direct strided"
        return "" if strips.direct_cost(kernel, geometry)[1] else "direct"
    if method == "separable":
        if strided:
            return "separable strided"
        return "separable blas" if strips.separable_cost(terms, geometry)[1] else "separable"
    return ""


def probe_cases(shape: tuple[int, int] = PROBE_SHAPE) -> list[tuple]:
    """``(variant, method, kernel, terms, geometry)`` of each of :data:`VARIANTS` on a ``shape`` image ('same'
    padding); ``variant_of(method, kernel, terms, geometry)`` gives the variant back (tested).

    >>> [(name, method, geometry.stride) for name, method, _, _, geometry in probe_cases()][:2]
    [('direct', 'direct', (1, 1)), ('direct strided', 'direct', (2, 2))]
    """
    from .plan import _analysis, separable_rtol

    cases = []
    for name, (kind, side, stride) in VARIANTS.items():
        kernel = kernel_for(kind, side)
        geometry = conv_geometry(shape, kernel.shape, (stride, stride), (side // 2, side // 2), (1, 1))
        terms = _analysis(kernel.tobytes(), kernel.shape, separable_rtol(np.float32))
        cases.append((name, name.split()[0], kernel, terms, geometry))
    return cases


def probe_taps(rounds: int = 3, shape: tuple[int, int] = PROBE_SHAPE) -> dict[str, float]:
    """Measured over estimated time of each of :data:`VARIANTS` here, rounded to 3 digits.

    Each variant's time is the fastest of ``rounds`` (after one warm-up) on the engine's threads by the wall
    clock, or, when other processes slowed those down, its time run on one thread by the process's CPU time
    (which they hardly change; an upper bound of the wall time, BLAS's own threads included), as the OpenCV
    probe does. The estimate is the fixed
    model's (:func:`convcli.engine.plan._model_costs`, which includes each method's gather of the padded rows).
    Whether the scales are plausible (:data:`SCALE_RANGE`) is the caller's to judge.

    >>> scales = probe_taps(rounds=1, shape=(64, 128))
    >>> sorted(scales) == sorted(VARIANTS) and all(value > 0 for value in scales.values())
    True
    """
    from .plan import _model_costs

    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    cases = []
    for name, method, kernel, terms, geometry in probe_cases(shape):
        out = np.empty(geometry.output, dtype=np.float32)
        if method == "direct":
            run = lambda k=kernel, g=geometry, o=out: strips.correlate_direct(image, k, g, "zeros", 0.0, o)  # noqa: E731
        else:
            run = lambda t=terms, g=geometry, o=out: strips.correlate_separable(image, t, g, "zeros", 0.0, o)  # noqa: E731
        cases.append((name, run, _model_costs(geometry, kernel, terms, False)[(method, "numpy")]))
    walls: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    singles: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for samples, clock, alone in ((walls, time.perf_counter, False), (singles, time.process_time, True)):
        for round_ in range(rounds + 1):
            for name, run, _ in cases:
                if alone:
                    with serial():
                        start = clock()
                        run()
                        elapsed = clock() - start
                else:
                    start = clock()
                    run()
                    elapsed = clock() - start
                if round_:
                    samples[name].append(elapsed)
    return {name: round(min(min(walls[name]), min(singles[name])) * 1e9 / model, 3) for name, _, model in cases}
