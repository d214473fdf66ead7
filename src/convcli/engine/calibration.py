"""The FFT's tile costs on the machine it runs on: a probe on first use, cached per machine.

What varies most from one CPU to another in the cost model is the FFT: how a
transform's cost per element grows with its length depends on the caches (on the
2-core Intel Xeon this project runs on, a 384x384 tile costs half as much per
element as a 1152x1152 one; the constants were fitted on an AMD EPYC, where the
large tile was as cheap). So the first time ``auto`` plans work of at least
:data:`PROBE_MIN_OUTPUTS` outputs, :func:`probe` times one overlap-save tile (the
gather, ``rfft2``, the product and ``irfft2``, one thread) at each length of
:data:`TILE_LENGTHS`, the fastest of interleaved rounds, about 0.1 s in all. The FFT
then cuts its tiles at the length that is cheapest here, and the plan estimates
the FFT from the same table (tiles times their cost, shared by the threads).

The table is written to ``$XDG_CACHE_HOME/convcli`` (``~/.cache/convcli``), one file
per machine key (CPU model, cores, NumPy/SciPy and convcli versions), and read
back by later processes in microseconds. The calibration only changes speed:
every tile length and every method give the same numbers to float rounding.
``CONVCLI_NO_CALIBRATION=1`` switches it off (the fixed model: the plan depends on
the inputs alone), as the tests and the generated docs do.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Switch the calibration off: the fixed model.
ENV_OFF = "CONVCLI_NO_CALIBRATION"
#: After a probe disturbed by a busy machine, the fixed model is used this long before the probe is retried.
RETRY_SECONDS = 3600.0
#: Work this large (outputs of one plan) is worth probing for; smaller work reads the cache only.
PROBE_MIN_OUTPUTS = 1 << 20
#: Transform lengths (per axis, square tiles) the probe times; all are fast lengths.
TILE_LENGTHS = (128, 256, 384, 512, 768, 1152)
# Rounds per probe, and the fastest of them kept: on a shared machine other work only ever adds time, so the
# minimum is the estimate least disturbed by it (medians of 3 moved by 2-3x under a load of 2-3 on 2 cores).
_ROUNDS = 4
# OpenCV quotients are clipped to this range; one at either end marks a disturbed probe (see plausible).
_CLIP = (0.25, 4.0)
# The factors of the parts of boxFilter's and sepFilter2D's estimates that grow with the kernel: a wider range
# (the model's slopes are small and were fitted on one CPU; clipped, never a mark of a disturbed probe).
_SLOPE_CLIP = (1 / 32, 32.0)
#: What the cache file's contents follow; part of the machine key, so a file from an older probe is probed again.
FORMAT = 2

_TABLE: dict[int, float] | None = None
_OPENCV: dict[str, float] | None = None


def enabled() -> bool:
    """False when ``CONVCLI_NO_CALIBRATION`` is set to anything but ``''`` or ``'0'``."""
    return os.environ.get(ENV_OFF, "") in ("", "0")


def token() -> object:
    """What plans depend on (for their cache): off, not yet known, or the table in use."""
    if not enabled():
        return "off"
    return None if _TABLE is None else (tuple(sorted(_TABLE.items())), tuple(sorted((_OPENCV or {}).items())))


def machine_key() -> str:
    """What the table depends on: CPU model, cores, library versions, convcli's version.

    The versions of SciPy and OpenCV are read from their files, without importing them (importing SciPy and
    cv2 for a name cost 40 to 120 ms each on a job that may need neither).

    >>> "cores=" in machine_key() and "scipy=" in machine_key()
    True
    """
    import platform

    from .._version import __version__

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [model, f"cores={os.cpu_count()}", f"numpy={np.__version__}", f"scipy={_version_of('scipy', 'version')}"]
    from .plan import opencv_available

    if opencv_available():
        parts.append(f"opencv={_version_of('cv2', 'opencv_version')}")
    return "; ".join(parts + [f"convcli={__version__}", f"calibration={FORMAT}"])


def _version_of(package: str, name: str) -> str:
    """``package``'s version from the ``NAME = "..."`` line of its ``version.py``, else its module's ``__version__``.

    >>> _version_of("scipy", "version") == __import__("scipy").__version__
    True
    """
    import re
    from importlib.util import find_spec

    try:
        spec = find_spec(package)
        if spec is not None and spec.origin:
            text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
            found = re.search(rf"^{name}\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
            if found:
                return found.group(1)
    except (OSError, ImportError, ValueError):
        pass
    return str(getattr(__import__(package), "__version__", "unknown"))


def cache_path(key: str | None = None) -> Path:
    """The file holding this machine's table."""
    import hashlib

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convcli"
    digest = hashlib.sha1((key or machine_key()).encode()).hexdigest()[:16]
    return base / f"fft-tiles-{digest}.json"


def fft_table(outputs: int = 0) -> dict[int, float]:
    """Nanoseconds per element of one tile at each probed length; ``{}`` when off or not known yet.

    Held in this process once read. Work of at least :data:`PROBE_MIN_OUTPUTS`
    outputs reads it from the cache, or probes (and caches) it; smaller work uses
    the fixed model unless the table is already held, so small files never pay
    for either. A probe already running in another process (a lock file) is not
    repeated: this process plans with the fixed model meanwhile.
    """
    global _TABLE
    if not enabled():
        return {}
    if _TABLE is not None:
        return _TABLE
    if outputs < PROBE_MIN_OUTPUTS:
        return {}  # small work: the fixed model, and no file read (nor SciPy imported for the machine key)
    import json  # the cache file: big work only, like the rest below (start-up of a small job, issue 19)

    global _OPENCV
    path = cache_path()
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if time.time() - float(stored.get("rejected_at", 0)) < RETRY_SECONDS:
            _TABLE, _OPENCV = {}, {}  # a recent probe was disturbed: the fixed model until it is retried
            return _TABLE
        table = {int(length): float(value) for length, value in stored["ns_per_element"].items()}
        opencv = {str(name): float(value) for name, value in stored.get("opencv", {}).items()}
        if table and all(value > 0 for value in [*table.values(), *opencv.values()]):
            table, opencv = plausible(table, opencv)  # a file from before the plausibility check, or edited
            if table:
                _TABLE, _OPENCV = table, opencv
                return _TABLE
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    lock = path.with_suffix(".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if lock.exists() and time.time() - lock.stat().st_mtime > 60:
            lock.unlink()  # left by a process that died probing
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except OSError:  # another process is probing, or no cache folder: the fixed model for this whole process
        _TABLE = {}
        return _TABLE
    table = {}
    try:
        os.close(descriptor)
        table, _OPENCV = plausible(probe(), probe_opencv())
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        record: dict = {
            "key": machine_key(),
            "ns_per_element": {str(k): v for k, v in table.items()},
            "opencv": _OPENCV,
        }
        if not table:  # a disturbed probe: the fixed model, and no new probe for RETRY_SECONDS
            record["rejected_at"] = time.time()
        temporary.write_text(json.dumps(record, indent=1), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
    _TABLE = table
    return table


def opencv_factors(outputs: int = 0) -> dict[str, float]:
    """Measured / estimated time of OpenCV's functions here, by method (``box``, ``separable``, ``direct``, ``fft``).

    Read, probed and held with :func:`fft_table` (the same file); ``{}`` when off,
    not known yet, or OpenCV is not installed.
    """
    fft_table(outputs)
    return (_OPENCV or {}) if enabled() else {}


#: A tile table whose dearest length costs more than this many times its cheapest, per element, was measured
#: on a busy machine (quiet, this Xeon gives 1.7x: 8.1 to 13.8 ns; under a load of 8 on 2 cores, 7.7 to 123).
_MAX_SPREAD = 4.0


def plausible(table: dict[int, float], opencv: dict[str, float]) -> tuple[dict[int, float], dict[str, float]]:
    """The probe's results, or ``{}`` for the part a busy machine disturbed (it is then not cached).

    >>> plausible({256: 8.0, 1152: 14.0}, {"box": 0.7, "fft": 1.3})
    ({256: 8.0, 1152: 14.0}, {'box': 0.7, 'fft': 1.3})
    >>> plausible({256: 8.0, 384: 120.0}, {"box": 0.7, "direct": 4.0})
    ({}, {})
    """
    if not table or max(table.values()) > _MAX_SPREAD * min(table.values()):
        return {}, {}
    if any(value in _CLIP for name, value in opencv.items() if "/" not in name):
        return table, {}
    return table, opencv


def forget() -> None:
    """Drop the table held in this process (the next plan reads the cache again)."""
    global _TABLE, _OPENCV
    _TABLE = _OPENCV = None


def probe(lengths: tuple[int, ...] = TILE_LENGTHS, rounds: int = _ROUNDS) -> dict[int, float]:
    """Time one overlap-save tile per length (one thread), the fastest of interleaved rounds; ns per element.

    The time is this thread's CPU time (``time.thread_time``): other processes on a busy machine delay the
    probe but hardly change what it computes (on this 2-core machine under a load of 5, wall-clock probes
    cached tiles 3 to 5 times dearer than quiet ones).

    >>> table = probe((128, 256), rounds=1)
    >>> sorted(table) == [128, 256] and all(value > 0 for value in table.values())
    True
    """
    from scipy import fft

    image = np.random.default_rng(0).random((max(lengths), max(lengths)), dtype=np.float32)
    out = np.empty_like(image)
    kernel = np.random.default_rng(1).random((15, 15), dtype=np.float32)
    spectra = {n: np.conj(fft.rfft2(kernel, s=(n, n))) for n in lengths}
    samples: dict[int, list[float]] = {n: [] for n in lengths}

    def tile(n: int) -> None:
        window = np.zeros((n, n), dtype=np.float32)
        window[:, :] = image[:n, :n]
        product = fft.rfft2(window, workers=1, overwrite_x=True)
        product *= spectra[n]
        result = fft.irfft2(product, s=(n, n), workers=1, overwrite_x=True)
        out[: n - 14, : n - 14] = result[: n - 14, : n - 14]

    for round_ in range(rounds + 1):
        for n in lengths:
            calls = max(1, (1 << 18) // (n * n))  # small tiles repeated: a quarter million elements per sample
            start = time.thread_time()
            for _ in range(calls):
                tile(n)
            if round_:
                samples[n].append((time.thread_time() - start) / calls)
    return {n: round(min(samples[n]) * 1e9 / (n * n), 4) for n in lengths}


def fit_two(
    estimates: tuple[tuple[float, float], tuple[float, float]], measured: tuple[float, float]
) -> tuple[float, float]:
    """Factors ``(a, b)`` with ``a * fixed_i + b * growing_i = measured_i`` for two probes of one function.

    ``estimates``: the model's two parts (a fixed cost and a part that grows with the kernel) at each probe.
    Each factor is clipped to its range (:data:`_CLIP` for ``a``, :data:`_SLOPE_CLIP` for ``b``); with no
    growth between the probes, one factor for both.

    >>> fit_two(((1.0, 0.1), (1.0, 0.5)), (2.0, 6.0))
    (1.0, 10.0)
    >>> fit_two(((1.0, 0.1), (1.0, 0.1)), (2.2, 2.2))
    (2.0, 2.0)
    """
    (f1, g1), (f2, g2) = estimates
    m1, m2 = measured
    if abs(g2 - g1) < 1e-12 or abs(f1 * g2 - f2 * g1) < 1e-12:
        one = (m1 + m2) / (f1 + g1 + f2 + g2)
        return _clip(one, _CLIP), _clip(one, _CLIP)
    determinant = f1 * g2 - f2 * g1
    a = (m1 * g2 - m2 * g1) / determinant
    b = (f1 * m2 - f2 * m1) / determinant
    return _clip(a, _CLIP), _clip(b, _SLOPE_CLIP)


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return round(min(bounds[1], max(bounds[0], value)), 3)


def probe_opencv(rounds: int = _ROUNDS) -> dict[str, float]:
    """OpenCV's boxFilter, sepFilter2D, filter2D and filter2D's DFT at 1024x1024 against the model's estimate.

    Two kernel sizes per function (3 and 15; filter2D 3 and 7, its DFT 15), the fastest of interleaved rounds.
    boxFilter and sepFilter2D get two factors each (:func:`fit_two`): ``box`` and ``separable`` scale the fixed
    part of their estimate (per output; per output and term), ``box/side`` and ``separable/tap`` the part that
    grows with the kernel, so a function whose cost grows faster here than where the model was fitted is
    still ranked right at every size; filter2D (``direct``) and its DFT (``fft``) one factor each (the median
    quotient). Each call runs on one OpenCV thread, timed by this thread's CPU time (robust to other
    processes), divided by the threads OpenCV uses otherwise (its functions split the rows between them).
    ``{}`` without OpenCV.
    """
    from .plan import opencv_available

    if not opencv_available():
        return {}
    import statistics

    import cv2

    from ..shapes import conv_geometry
    from .opencv import _call
    from .plan import _analysis, _model_costs, separable_rtol

    size = 1024
    image = np.random.default_rng(0).random((size, size), dtype=np.float32)
    rng = np.random.default_rng(2)

    def gaussian(k: int) -> np.ndarray:
        line = np.exp(-0.5 * ((np.arange(k) - k // 2) / max(0.5, k / 6)) ** 2)
        return np.outer(line, line) / line.sum() ** 2

    cases = [
        ("box", np.full((3, 3), 1 / 9)),
        ("box", np.full((15, 15), 1 / 225)),
        ("separable", gaussian(3)),
        ("separable", gaussian(15)),
        ("direct", rng.uniform(-1, 1, (3, 3))),
        ("direct", rng.uniform(-1, 1, (7, 7))),
        ("fft", rng.uniform(-1, 1, (15, 15))),
    ]
    calls, estimates, parts = [], [], []
    for method, kernel in cases:
        k = kernel.shape[0]
        geometry = conv_geometry((size, size), kernel.shape, (1, 1), (k // 2, k // 2), (1, 1))
        terms = _analysis(kernel.tobytes(), kernel.shape, separable_rtol(np.float32))
        estimates.append(_model_costs(geometry, kernel, terms, True)[(method, "opencv")] * 1e-9)
        parts.append(_opencv_parts(method, kernel, terms, geometry))
        calls.append(_call(kernel, terms, method, (k // 2, k // 2), cv2.BORDER_CONSTANT, geometry.output))
    threads = max(1, cv2.getNumThreads())
    samples: list[list[float]] = [[] for _ in cases]
    cv2.setNumThreads(1)
    try:
        for round_ in range(rounds + 1):
            for index, call in enumerate(calls):
                repeat = max(1, int(2e-3 * threads / estimates[index]))
                start = time.thread_time()
                for _ in range(repeat):
                    call(image)
                if round_:
                    samples[index].append((time.thread_time() - start) / repeat / threads)
    finally:
        cv2.setNumThreads(threads)
    measured = [min(times) for times in samples]
    factors: dict[str, float] = {}
    for method, growing in (("box", "box/side"), ("separable", "separable/tap")):
        first, second = (i for i, (name, _) in enumerate(cases) if name == method)
        fitted = fit_two((parts[first], parts[second]), (measured[first], measured[second]))
        factors[method], factors[growing] = fitted
    for method in ("direct", "fft"):
        quotients = [m / e for (name, _), m, e in zip(cases, measured, estimates) if name == method]
        factors[method] = _clip(statistics.median(quotients), _CLIP)
    return factors


def _opencv_parts(method: str, kernel: np.ndarray, terms: list, geometry: Any) -> tuple[float, float]:
    """The model's estimate of one OpenCV call in seconds, split into its fixed part and the part that grows with
    the kernel (:func:`convcli.engine.plan.opencv_parts`); ``(estimate, 0)`` for filter2D and its DFT."""
    from .plan import opencv_parts

    outputs = geometry.output[0] * geometry.output[1]
    fixed, growing = opencv_parts(method, kernel.shape, len(terms), outputs)
    return fixed * 1e-9, growing * 1e-9
