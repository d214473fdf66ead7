"""The cost model's measured parts on the machine it runs on: probes on first use, cached per machine.

What varies most from one CPU to another in the cost model is the FFT (how a
transform's cost per element grows with its length depends on the caches; on the
2-core Intel Xeon this project ran on, a 384x384 tile cost half as much per element
as a 1152x1152 one, while the constants were fitted on an AMD EPYC, where the large
tile was as cheap), how much the FFT's tiles gain from threads, and OpenCV's functions
(whose costs follow no one formula across CPUs and OpenCV builds). So the first time
``auto`` plans work of at least :data:`PROBE_MIN_OUTPUTS` outputs:

* :func:`probe` times one overlap-save tile (the gather, ``rfft2``, the product and
  ``irfft2``, one thread, by this thread's CPU time) at each length of
  :data:`TILE_LENGTHS`: the FFT cuts its tiles at the length cheapest here;
* :func:`probe_threads` measures how much faster a batch of tiles runs on the engine's
  threads: the plan's FFT estimate shares the tiles by it;
* :func:`probe_taps` runs each variant of the direct and separable methods (tap by tap
  or by BLAS, at stride 1 and strided) on a 1024x2048 image: the plan multiplies the
  fixed model's estimates of both methods by the geometric mean of their measured over
  estimated times here (:func:`tap_scale`; :mod:`convcli.engine.tap_probe`);
* :func:`probe_opencv` times boxFilter, sepFilter2D, filter2D and its DFT at a few kernel
  sizes (:data:`OPENCV_POINTS`) on a 1024x1024 image, and the memory-bound ones again on a
  2048x2048 image past the caches (:data:`OPENCV_LARGE_POINTS`): the plan interpolates them,
  and blends in what the large image adds by the work's size (:func:`blend`).

About 2 s in all with OpenCV (0.7 s without), once. The results are written to ``$XDG_CACHE_HOME/convcli``
(``~/.cache/convcli``), one file per machine key (CPU model, cores, NumPy/SciPy/OpenCV and
convcli versions, :data:`FORMAT`), and read back by later processes in microseconds. A
probe a busy machine disturbed is not kept (:func:`plausible`). The calibration only
changes speed: every tile length and every method give the same numbers to float
rounding. ``CONVCLI_NO_CALIBRATION=1`` switches it off (the fixed model: the plan depends
on the inputs alone), as the tests and the generated docs do.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

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
# The large image's probe: its calls last 5-40 ms each, so fewer rounds (about 1.5 s in all on 2 cores).
_LARGE_ROUNDS = 2
#: What the cache file's contents follow; part of the machine key, so a file from an older probe is probed again.
FORMAT = 5

_TABLE: dict[int, float] | None = None
#: OpenCV's measured ns per output here, by method (``box``, ``separable`` per term, ``direct``, ``fft``), at the
#: kernel sizes of :data:`OPENCV_POINTS`: ``{method: {x: ns}}`` (x: the side, the mean side, or the taps).
_OPENCV: dict[str, dict[int, float]] | None = None
#: The same on an image past the caches (:data:`OPENCV_LARGE_SIZE`), at the sizes of :data:`OPENCV_LARGE_POINTS`.
_OPENCV_LARGE: dict[str, dict[int, float]] | None = None
#: How much faster the FFT's tiles run on all of the engine's threads than on one, measured here (None: not known).
_SPEEDUP: float | None = None
#: The tap-by-tap methods' measured over estimated time here, by variant (:data:`convcli.engine.tap_probe.VARIANTS`).
_TAPS: dict[str, float] | None = None


def enabled() -> bool:
    """False when ``CONVCLI_NO_CALIBRATION`` is set to anything but ``''`` or ``'0'``."""
    return os.environ.get(ENV_OFF, "") in ("", "0")


def token() -> object:
    """What plans depend on (for their cache): off, not yet known, or the table in use."""
    if not enabled():
        return "off"
    if _TABLE is None:
        return None
    opencv = tuple(
        tuple(sorted((method, tuple(sorted(points.items()))) for method, points in (costs or {}).items()))
        for costs in (_OPENCV, _OPENCV_LARGE)
    )
    return tuple(sorted(_TABLE.items())), opencv, _SPEEDUP, tuple(sorted((_TAPS or {}).items()))


def machine_key() -> str:
    """What the table depends on: CPU model, cores, library versions, convcli's version.

    The versions of SciPy and OpenCV are read from their files, without importing them (importing SciPy and
    cv2 for a name cost 40 to 120 ms each on a job that may need neither).

    >>> "cores=" in machine_key() and "scipy=" in machine_key()
    True
    """
    from .._version import __version__

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if not model:  # not Linux: platform.processor() runs `uname -p` on some systems, so only when needed
        import platform

        model = platform.processor() or platform.machine()
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
    import zlib  # loaded already by every image job; hashlib would be 4 ms more of start-up

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convcli"
    text = (key or machine_key()).encode()
    digest = f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}"
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

    global _OPENCV, _OPENCV_LARGE, _SPEEDUP, _TAPS
    path = cache_path()
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if time.time() - float(stored.get("rejected_at", 0)) < RETRY_SECONDS:
            _TABLE, _OPENCV, _OPENCV_LARGE = {}, {}, {}  # a recent probe was disturbed: the fixed model until retried
            return _TABLE
        table = {int(length): float(value) for length, value in stored["ns_per_element"].items()}
        opencv, large = (
            {
                str(name): {int(x): float(ns) for x, ns in points.items()}
                for name, points in stored.get(part, {}).items()
            }
            for part in ("opencv", "opencv_large")
        )
        if table and all(value > 0 for value in table.values()):
            table, opencv = plausible(table, opencv)  # a file from before the plausibility check, or edited
            large = plausible(table, large)[1] if opencv else {}
            if table:
                _TABLE, _OPENCV, _OPENCV_LARGE = table, opencv, large
                _SPEEDUP = float(stored.get("fft_threads_speedup", 1.0))
                _TAPS = plausible_taps(
                    {str(name): float(scale) for name, scale in stored.get("tap_scales", {}).items()}
                )
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
        _OPENCV_LARGE = (
            plausible(table, probe_opencv(_LARGE_ROUNDS, OPENCV_LARGE_SIZE, OPENCV_LARGE_POINTS))[1] if _OPENCV else {}
        )
        _SPEEDUP = probe_threads()
        _TAPS = plausible_taps(probe_taps()) if table else {}
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        record: dict = {
            "key": machine_key(),
            "ns_per_element": {str(k): v for k, v in table.items()},
            "fft_threads_speedup": _SPEEDUP,
            "tap_scales": _TAPS,
            "opencv": {name: {str(x): ns for x, ns in points.items()} for name, points in (_OPENCV or {}).items()},
            "opencv_large": {
                name: {str(x): ns for x, ns in points.items()} for name, points in (_OPENCV_LARGE or {}).items()
            },
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


def tap_scales(outputs: int = 0) -> dict[str, float]:
    """The tap-by-tap methods' measured over estimated time here, by variant (:func:`probe_taps`); ``{}`` when off,
    not known, or the probe was disturbed (the fixed model). Read, probed and held with :func:`fft_table`."""
    fft_table(outputs)
    return (_TAPS or {}) if enabled() else {}


def tap_scale(outputs: int = 0) -> float:
    """What the plan multiplies the fixed model's direct and separable estimates by here: the geometric mean of
    :func:`tap_scales` (1.0 when it is ``{}``).

    One factor for both methods, not one per variant: it says how fast this machine runs the array passes
    the model counts, and leaves the model's ranking of the tap methods among themselves (fitted on many
    cases) as it is. On the 2-core AMD EPYC, judged on the same measurements of ``bench/calibrate.py``'s 48
    cells (two runs), one factor chose within 1.1x of the fastest in 46 of 48, a factor per variant in 43-44
    (its single cases were noisier than the model's ratios: it sent small Gaussians to the direct method),
    the fixed model in 45, and the FFT's table without the taps' factor in 38-39.
    """
    scales = tap_scales(outputs)
    if not scales:
        return 1.0
    return math.exp(sum(math.log(value) for value in scales.values()) / len(scales))


def probe_taps() -> dict[str, float]:
    """:func:`convcli.engine.tap_probe.probe_taps` (about 0.4 s on 2 cores), imported only to probe."""
    from .tap_probe import probe_taps as measure

    return measure()


def plausible_taps(scales: dict[str, float]) -> dict[str, float]:
    """``scales`` when every variant was measured within :data:`convcli.engine.tap_probe.SCALE_RANGE`, else ``{}``.

    >>> plausible_taps({"direct": 0.45, "separable": 0.57}), plausible_taps({"direct": 0.45, "separable": 9.0})
    ({'direct': 0.45, 'separable': 0.57}, {})
    """
    from .tap_probe import SCALE_RANGE, VARIANTS

    low, high = SCALE_RANGE
    known = all(name in VARIANTS for name in scales)
    return dict(scales) if known and all(low <= value <= high for value in scales.values()) else {}


def fft_speedup(outputs: int = 0) -> float:
    """How much faster the FFT's tiles run on the engine's threads than on one here (:func:`probe_threads`); 1.0
    when off or not known. Read, probed and held with :func:`fft_table`."""
    fft_table(outputs)
    return (_SPEEDUP or 1.0) if enabled() else 1.0


#: What a process pays to start using OpenCV: ``import cv2`` (28-39 ms of wall time after NumPy on the 2-core
#: AMD EPYC, its BLAS threads kept off: :func:`convcli.engine.opencv.cv2_module`) and the first call's start of its
#: threads (5-15 ms). A constant, not a probe: one sample of an import is mostly the disk cache's state.
OPENCV_IMPORT_NS = 40e6


def opencv_import_ns() -> float:
    """Nanoseconds of starting OpenCV in a process (:data:`OPENCV_IMPORT_NS`), charged to OpenCV's plans by the
    share of each image (``job_images`` of :func:`convcli.engine.plan.plan_correlation`)."""
    return OPENCV_IMPORT_NS


def opencv_costs(outputs: int = 0) -> dict[str, dict[int, float]]:
    """OpenCV's measured ns per output here for work of ``outputs`` outputs, by method and kernel size.

    Read, probed and held with :func:`fft_table` (the same file); ``{}`` when off,
    not known yet, or OpenCV is not installed. Up to :data:`OPENCV_SMALL_SIZE` squared
    outputs, the costs on the cached image; from :data:`OPENCV_LARGE_SIZE` squared, those
    plus what the large image added (:func:`blend`); between the two, part of it.
    """
    fft_table(outputs)
    if not enabled() or not _OPENCV:
        return {}
    return blend(_OPENCV, _OPENCV_LARGE or {}, outputs)


def blend(small: dict[str, dict[int, float]], large: dict[str, dict[int, float]], outputs: int) -> dict:
    """The probe on the cached image, plus the share of what the large one added that ``outputs`` calls for.

    The extra cost per output the large image measured at its kernel sizes is interpolated to the small
    probe's sizes (flat beyond its ends: the memory traffic does not grow with the kernel) and added in full
    from :data:`OPENCV_LARGE_SIZE` squared outputs, in part (by the log of the size) from
    :data:`OPENCV_SMALL_SIZE` squared. A cost never falls below half the cached one (a noisy probe).

    >>> small, large = {"box": {3: 1.0, 15: 2.0}, "fft": {225: 30.0}}, {"box": {3: 2.0, 15: 2.0}}
    >>> blend(small, large, 1024 * 1024) == small, blend(small, large, 2048 * 2048)
    (True, {'box': {3: 2.0, 15: 2.0}, 'fft': {225: 30.0}})
    >>> blend(small, large, 2048 * 1024)["box"][3]  # half way, by the log of the outputs
    1.5
    """
    low, high = OPENCV_SMALL_SIZE**2, OPENCV_LARGE_SIZE**2
    if not large or outputs <= low:
        return small
    from .plan import measured_ns

    share = min(1.0, math.log(outputs / low) / math.log(high / low))
    blended = {}
    for method, points in small.items():
        measured = large.get(method)
        if not measured:
            blended[method] = points
            continue
        extra = {x: ns - measured_ns(points, x) for x, ns in measured.items()}
        blended[method] = {
            x: round(max(0.5 * ns, ns + share * measured_ns(extra, x, grows=False)), 4) for x, ns in points.items()
        }
    return blended


#: A tile table whose dearest length costs more than this many times its cheapest, per element, was measured
#: on a busy machine (quiet, this Xeon gives 1.7x: 8.1 to 13.8 ns; under a load of 8 on 2 cores, 7.7 to 123).
_MAX_SPREAD = 4.0


def plausible(
    table: dict[int, float], opencv: dict[str, dict[int, float]]
) -> tuple[dict[int, float], dict[str, dict[int, float]]]:
    """The probe's results, or ``{}`` for the part a busy machine disturbed (it is then not cached).

    >>> plausible({256: 8.0, 1152: 14.0}, {"box": {3: 0.7, 15: 2.5}})
    ({256: 8.0, 1152: 14.0}, {'box': {3: 0.7, 15: 2.5}})
    >>> plausible({256: 8.0, 384: 120.0}, {"box": {3: 0.7}})
    ({}, {})
    >>> plausible({256: 8.0}, {"box": {3: 0.0}})
    ({256: 8.0}, {})
    """
    if not table or max(table.values()) > _MAX_SPREAD * min(table.values()):
        return {}, {}
    values = [ns for points in opencv.values() for ns in points.values()]
    if not all(math.isfinite(ns) and 0 < ns < _MAX_OPENCV_NS for ns in values):
        return table, {}
    return table, opencv


def forget() -> None:
    """Drop the table held in this process (the next plan reads the cache again)."""
    global _TABLE, _OPENCV, _OPENCV_LARGE, _SPEEDUP, _TAPS
    _TABLE = _OPENCV = _OPENCV_LARGE = _SPEEDUP = _TAPS = None


def probe(lengths: tuple[int, ...] = TILE_LENGTHS, rounds: int = _ROUNDS) -> dict[int, float]:
    """Time one overlap-save tile per length (one thread), the fastest of interleaved rounds; ns per element.

    The time is this thread's CPU time (``time.thread_time``): other processes on a busy machine delay the
    probe but hardly change what it computes (on this 2-core machine under a load of 5, wall-clock probes
    cached tiles 3 to 5 times dearer than quiet ones).

    >>> table = probe((128, 256), rounds=1)
    >>> sorted(table) == [128, 256] and all(value > 0 for value in table.values())
    True
    """
    from . import pocketfft

    image = np.random.default_rng(0).random((max(lengths), max(lengths)), dtype=np.float32)
    out = np.empty_like(image)
    kernel = np.random.default_rng(1).random((15, 15), dtype=np.float32)
    spectra = {n: np.conj(pocketfft.rfft2(kernel, 1, (n, n))) for n in lengths}
    samples: dict[int, list[float]] = {n: [] for n in lengths}

    def tile(n: int) -> None:
        window = np.zeros((n, n), dtype=np.float32)
        window[:, :] = image[:n, :n]
        product = pocketfft.rfft2(window, 1)
        product *= spectra[n]
        result = pocketfft.irfft2(product, (n, n), 1)
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


def probe_threads(rounds: int = _ROUNDS, tiles: int = 16, length: int = 256) -> float:
    """Wall time of ``tiles`` FFT tiles one after another over their time on the engine's threads
    (:func:`convcli.parallel.run_parallel`), the fastest of interleaved rounds, clipped to 1..threads.

    The transforms are short and take the GIL between NumPy calls, so their speedup depends on the CPU: 0.94 to
    1.29 on a 2-core Intel Xeon, 1.4 to 2.0 on a 2-core AMD EPYC. A busy machine measures less (the plan then
    expects the FFT slower than it is: a cautious error).

    >>> 1.0 <= probe_threads(rounds=1, tiles=4, length=128) <= max(1, __import__("os").cpu_count() or 1)
    True
    """
    from ..parallel import run_parallel, workers
    from . import pocketfft

    threads = workers()
    if threads < 2:
        return 1.0
    rng = np.random.default_rng(3)
    windows = [rng.random((length, length), dtype=np.float32) for _ in range(tiles)]
    spectrum = np.conj(pocketfft.rfft2(rng.random((15, 15), dtype=np.float32), 1, (length, length)))

    def tile(window: np.ndarray) -> None:
        product = pocketfft.rfft2(window, 1)
        product *= spectrum
        pocketfft.irfft2(product, (length, length), 1)

    jobs = [(window,) for window in windows]
    alone: list[float] = []
    together: list[float] = []
    for round_ in range(rounds + 1):
        for parallel, samples in ((False, alone), (True, together)):
            start = time.perf_counter()
            run_parallel(jobs, tile, parallel)
            if round_:
                samples.append(time.perf_counter() - start)
    return round(min(float(threads), max(1.0, min(alone) / min(together))), 3)


#: Kernel sizes OpenCV's functions are timed at: boxFilter by side, sepFilter2D by side (a Gaussian, per term),
#: filter2D by taps (below its DFT switch at 130), its DFT at one size (per output it hardly grows).
OPENCV_POINTS = {"box": (3, 7, 15, 31), "separable": (3, 7, 15, 31), "direct": (9, 25, 49, 81, 121), "fft": (225,)}
#: The second probe, on an image past the caches (:data:`OPENCV_LARGE_SIZE` a side): the calls whose cost per
#: output grows most once the image no longer fits, the memory-bound ones (boxFilter, sepFilter2D's intermediate
#: rows, filter2D's small kernels). On the AMD EPYC, boxFilter 3x3 cost 0.9 ns per output at 1024 and 1.6 at 2048.
OPENCV_LARGE_POINTS = {"box": (3, 7, 15, 31), "separable": (3, 7, 15, 31), "direct": (9, 25)}
OPENCV_SMALL_SIZE = 1024
OPENCV_LARGE_SIZE = 2048
# An OpenCV call costing more than this per output was measured on a machine too busy to tell (quiet: 0.5 to 20).
_MAX_OPENCV_NS = 500.0


def probe_opencv(
    rounds: int = _ROUNDS, size: int = 1024, points: dict[str, tuple[int, ...]] | None = None
) -> dict[str, dict[int, float]]:
    """OpenCV's boxFilter, sepFilter2D, filter2D and its DFT timed on a ``size`` x ``size`` float32 image, ns per
    output, at the kernel sizes of ``points`` (by default :data:`OPENCV_POINTS`).

    At each size of :data:`OPENCV_POINTS` (boxes, Gaussians, random kernels): the costs of these functions do
    not follow one formula across CPUs and OpenCV builds (on an AMD EPYC with OpenCV 5, boxFilter costs 0.8 ns
    per output at 3x3 and 2.3 from 7x7 to 31x31, sepFilter2D's fixed part is 20 times the model's), so the plan
    interpolates the measured points (:func:`convcli.engine.plan.measured_ns`) instead of scaling a model. Each
    time is the fastest wall time on OpenCV's threads, or, when other processes slowed those rounds down, the
    call's CPU time on one thread (which they hardly change; an upper bound of the wall time). ``{}`` without
    OpenCV.
    """
    from .plan import opencv_available

    if not opencv_available():
        return {}
    from ..shapes import conv_geometry
    from .opencv import _call, cv2_module

    cv2 = cv2_module()
    from .plan import _analysis, separable_rtol
    from .tap_probe import kernel_for as probe_kernel

    image = np.random.default_rng(0).random((size, size), dtype=np.float32)
    rng = np.random.default_rng(2)

    def kernel_for(method: str, x: int) -> np.ndarray:
        if method == "box":
            return np.full((x, x), 1 / (x * x))
        if method == "separable":
            return probe_kernel("gaussian", x)
        side = math.isqrt(x)
        return rng.uniform(-1, 1, (side, side))

    cases = [(method, x) for method, sizes in (points or OPENCV_POINTS).items() for x in sizes]
    calls = []
    for method, x in cases:
        kernel = kernel_for(method, x)
        k = kernel.shape[0]
        geometry = conv_geometry((size, size), kernel.shape, (1, 1), (k // 2, k // 2), (1, 1))
        terms = _analysis(kernel.tobytes(), kernel.shape, separable_rtol(np.float32))
        calls.append(_call(kernel, terms, method, (k // 2, k // 2), cv2.BORDER_CONSTANT, geometry.output))
    threads = max(1, cv2.getNumThreads())
    # Calls per sample: about 2 ms of them (from a warm call), so OpenCV's workers waking up for the first call
    # is not most of a sample, as it is not of a real image's call.
    repeats = []
    for call in calls:
        call(image)
        start = time.perf_counter()
        call(image)
        repeats.append(max(1, min(50, int(2e-3 / max(time.perf_counter() - start, 1e-6)))))
    walls: list[list[float]] = [[] for _ in cases]
    singles: list[list[float]] = [[] for _ in cases]
    for samples, clock, count in ((walls, time.perf_counter, threads), (singles, time.thread_time, 1)):
        cv2.setNumThreads(count)
        try:
            for round_ in range(rounds + 1):
                for index, call in enumerate(calls):
                    start = clock()
                    for _ in range(repeats[index]):
                        call(image)
                    if round_:
                        samples[index].append((clock() - start) / repeats[index])
        finally:
            cv2.setNumThreads(threads)
    costs: dict[str, dict[int, float]] = {}
    for (method, x), wall, single in zip(cases, walls, singles):
        costs.setdefault(method, {})[x] = round(min(min(wall), min(single)) * 1e9 / (size * size), 4)
    return costs
