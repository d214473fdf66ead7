"""FFT correlation: real transforms, fast lengths, overlap-save tiles on all cores, polyphase stride and dilation.

Stride and dilation are split per axis into stride-1, dilation-1 sub-problems
(:func:`axis_terms`): a stride ``s`` becomes ``s`` phases of the input and of
the kernel, a dilation ``d`` becomes ``d`` interleaved output classes. No
zero-stuffed kernel is built and only the kept outputs are transformed back;
phases that feed the same outputs are summed in the frequency domain.

Large inputs are cut into output tiles (overlap-save: each tile reads its
input window, tiles do not overlap in the output), so memory stays a few
tiles whatever the image size, and tiles run on all cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..shapes import ConvGeometry
from .borders import gather
from .strips import run_parallel, workers

# Largest transform per axis: tiles of at most 1152x1152 keep memory and cache use small.
_MAX_TILE = 1152
#: Elements of one band of row tiles (transform rows x padded width): a wide image gets shorter row tiles, so
#: a streamed run, which computes whole row tiles (:mod:`convcli.run.stream`), holds a band that does not grow
#: with the width. 4 Mi elements: 1,000 rows at 4,000 wide (no change up to 3,600 wide), 100 at 40,000.
BAND_ELEMENTS = 1 << 22
# Fixed cost of one more tile (Python, kernel phases, small transforms), in the units of L*log2(L).
_TILE_OVERHEAD = 2000
# With a measured tile table: nanoseconds of Python per tile (the gather, the output copy, the job), fitted on
# bench/calibrate.py's FFT cases at 1024 and 2048 (0.05-0.1 ms).
_TILE_NS = 50_000.0


@dataclass(frozen=True)
class AxisTerm:
    """One stride-1, dilation-1 sub-problem along one axis.

    Reads padded positions ``in_start + in_step*m``, uses kernel taps
    ``k_start + k_step*q`` (``k_count`` of them) and writes outputs
    ``out_start + out_step*i`` (``out_count`` of them).
    """

    in_start: int
    in_step: int
    k_start: int
    k_step: int
    k_count: int
    out_start: int
    out_step: int
    out_count: int


def axis_terms(stride: int, dilation: int, taps: int, outputs: int) -> list[AxisTerm]:
    """Split ``out[i] = sum_u K[u] P[s*i + d*u]`` into plain correlations.

    With ``g = gcd(s, d)``, ``s = g s'``, ``d = g d'``: kernel phase ``a < s'``
    and output class ``r < d'`` read ``P[g (d' a + s' r) + lcm(s, d) m]``.

    >>> [(t.in_start, t.in_step, t.k_start, t.k_step, t.out_start, t.out_step) for t in axis_terms(2, 1, 3, 4)]
    [(0, 2, 0, 2, 0, 1), (1, 2, 1, 2, 0, 1)]
    >>> [(t.in_start, t.in_step, t.out_start, t.out_step, t.out_count) for t in axis_terms(1, 2, 3, 5)]
    [(0, 2, 0, 2, 3), (1, 2, 1, 2, 2)]
    """
    g = math.gcd(stride, dilation)
    s1, d1 = stride // g, dilation // g
    step = stride * dilation // g
    terms = []
    for a in range(s1):
        k_count = len(range(a, taps, s1))
        if k_count == 0:
            continue
        for r in range(d1):
            out_count = len(range(r, outputs, d1))
            if out_count:
                terms.append(AxisTerm(g * (d1 * a + s1 * r), step, a, s1, k_count, r, d1, out_count))
    return terms


def fast_length(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``: ``scipy.fft.next_fast_len(n, real=True)`` without importing SciPy.

    >>> [fast_length(n) for n in (1, 7, 97, 1025)]
    [1, 8, 100, 1080]
    """
    best = 1 << max(0, (n - 1).bit_length())
    five = 1
    while five < best:
        three = five
        while three < best:
            value = three
            while value < n:
                value *= 2
            best = min(best, value)
            three *= 3
        five *= 5
    return best


def _unit(table: dict[int, float], length: int) -> float:
    """ns per element of a square tile of ``length`` from the probed table (log-linear between its lengths)."""
    if length in table:
        return table[length]
    lengths = sorted(table)
    if length <= lengths[0]:
        return table[lengths[0]]
    if length >= lengths[-1]:
        return table[lengths[-1]]
    upper = next(i for i, n in enumerate(lengths) if n > length)
    a, b = lengths[upper - 1], lengths[upper]
    share = math.log(length / a) / math.log(b / a)
    return table[a] ** (1 - share) * table[b] ** share


def fast_floor(n: int) -> int:
    """The largest ``2^a 3^b 5^c <= n`` (``n >= 1``).

    >>> [fast_floor(n) for n in (1, 7, 104, 1151)]
    [1, 6, 100, 1125]
    """
    best = 1
    five = 1
    while five <= n:
        three = five
        while three <= n:
            value = three
            while value * 2 <= n:
                value *= 2
            best = max(best, value)
            three *= 3
        five *= 5
    return best


def _tile(count: int, taps: int, table: dict[int, float] | None = None, longest: int | None = None) -> tuple[int, int]:
    """Output tile length and transform length for ``count`` outputs of a ``taps``-long kernel.

    Fixed model: minimises ``tiles * (L log L + overhead)`` over fast lengths
    ``L`` up to 1152 (or the whole axis, or twice the kernel when the kernel
    alone is longer). With this machine's measured tile costs (``table``, ns per
    element of an ``L x L`` tile, :mod:`convcli.engine.calibration`; by default this
    process's table, ``{}`` for the fixed model): minimises
    ``tiles * L * sqrt(cost(L))`` over the probed lengths and the whole axis (a
    square tile's cost split between its two axes). ``longest`` caps the
    transform length, never below the first fast length from ``2 * taps`` (the
    row axis of a wide image, :data:`BAND_ELEMENTS`).
    """
    if table is None:
        from . import calibration

        table = calibration.fft_table()
    whole = fast_length(count + taps - 1)
    cap = max(fast_floor(longest), fast_length(2 * taps)) if longest is not None else whole
    if table and 2 * taps <= max(table):
        options = [n for n in table if taps <= n < whole and n <= cap]
        options += [whole] if whole <= min(cap, max(table)) else []
        if options:

            def measured(length: int) -> float:
                return math.ceil(count / (length - taps + 1)) * length * math.sqrt(_unit(table, length))

            length = min(sorted(options), key=measured)
            return min(count, length - taps + 1), length
    lengths = {whole, cap} | {fast_length(n) for n in (128, 256, 512, _MAX_TILE, max(128, 2 * taps))}
    limit = min(max(_MAX_TILE, fast_length(2 * taps)), cap)
    best: tuple[float, int, int] | None = None
    for length in sorted(lengths):
        if length < taps or length > min(whole, limit):
            continue
        tile = min(count, length - taps + 1)
        cost = math.ceil(count / tile) * (length * math.log2(max(2, length)) + _TILE_OVERHEAD)
        if best is None or cost < best[0]:
            best = (cost, tile, length)
    if best is None:
        return count, whole
    return best[1], best[2]


@dataclass(frozen=True)
class Tiling:
    """How :func:`correlate_fft` cuts one geometry: per output class ``(r_h, r_w)`` the output tile and
    transform lengths ``(tile_h, length_h, tile_w, length_w)``, and the threads of each transform.

    A streamed run (:mod:`convcli.run.stream`) computes blocks of whole row tiles of the whole image with
    the whole image's tiling, so every tile is the same transform as in memory, bit for bit.
    """

    tiles: dict[tuple[int, int], tuple[int, int, int, int]]
    inner: int


def tiling(geometry: ConvGeometry, table: dict[int, float] | None = None, threads: int | None = None) -> Tiling:
    """The tiles of ``geometry``: rows capped so a band of row tiles holds about :data:`BAND_ELEMENTS`."""
    threads = workers() if threads is None else threads
    longest = max(1, BAND_ELEMENTS // max(1, geometry.padded[1]))
    tiles = {}
    jobs = 0
    for key, phases in _classes(geometry).items():
        rows_out, cols_out = phases[0][0].out_count, phases[0][1].out_count
        tile_h, length_h = _tile(rows_out, max(rt.k_count for rt, _ in phases), table, longest)
        tile_w, length_w = _tile(cols_out, max(ct.k_count for _, ct in phases), table)
        tiles[key] = (tile_h, length_h, tile_w, length_w)
        jobs += math.ceil(rows_out / tile_h) * math.ceil(cols_out / tile_w)
    return Tiling(tiles, 1 if jobs >= threads else threads)


def _classes(geometry: ConvGeometry) -> dict[tuple[int, int], list[tuple[AxisTerm, AxisTerm]]]:
    """Output classes ``(r_h, r_w)`` and the kernel phases ``(row term, column term)`` that feed each."""
    row_terms = axis_terms(geometry.stride[0], geometry.dilation[0], geometry.kernel[0], geometry.output[0])
    col_terms = axis_terms(geometry.stride[1], geometry.dilation[1], geometry.kernel[1], geometry.output[1])
    classes: dict[tuple[int, int], list[tuple[AxisTerm, AxisTerm]]] = {}
    for rt in row_terms:
        for ct in col_terms:
            classes.setdefault((rt.out_start, ct.out_start), []).append((rt, ct))
    return classes


def estimate_ns(geometry: ConvGeometry, table: dict[int, float], speedup: float = 1.0) -> float | None:
    """Estimated ns of :func:`correlate_fft` from measured tile costs; ``None`` without a table.

    Per tile: the probed round trip (one thread) for stride 1; with ``p`` kernel
    phases ``0.1 + 0.9 p`` of it (each phase a strided gather, a forward
    transform and a product; one inverse; fitted on bench/calibrate.py's stride-2
    and stride-4 cases), and :data:`_TILE_NS` of Python around it.
    The tiles are divided by ``speedup``, how much faster a batch of tiles runs on the
    engine's threads than on one, measured on the machine
    (:func:`convcli.engine.calibration.probe_threads`: 0.94-1.29 on a 2-core Xeon, 1.4-2.0 on a
    2-core EPYC; the transforms are short and take the GIL between them), while the
    constants of the other methods already include their threads.
    """
    if not table:
        return None
    total = 0.0
    tiles = 0
    plan = tiling(geometry, table)
    for key, phases in _classes(geometry).items():
        rows_out, cols_out = phases[0][0].out_count, phases[0][1].out_count
        tile_h, length_h, tile_w, length_w = plan.tiles[key]
        count = math.ceil(rows_out / tile_h) * math.ceil(cols_out / tile_w)
        unit = math.sqrt(_unit(table, length_h) * _unit(table, length_w))
        total += count * (length_h * length_w * unit * (0.1 + 0.9 * len(phases)) + _TILE_NS)
        tiles += count
    return total / _tile_speedup(tiles, speedup)


def _tile_speedup(tiles: int, speedup: float, threads: int | None = None) -> float:
    """The thread speedup ``tiles`` tiles can have: no more than ``tiles`` over the rounds they take on the
    threads. One tile gains nothing (its transforms' own threads did not help: a 256x270 tile with 16 phases
    took 12.6 ms on one thread, 13.9 on two; estimated at 5.5 with the batch speedup of 1.86).

    >>> _tile_speedup(1, 1.86, 2), _tile_speedup(2, 1.86, 2), _tile_speedup(3, 1.86, 2), _tile_speedup(40, 0.9, 2)
    (1.0, 1.86, 1.5, 1.0)
    """
    threads = workers() if threads is None else threads
    rounds = math.ceil(tiles / max(1, threads))
    return max(1.0, min(speedup, tiles / max(1, rounds)))


def correlate_fft(
    image: np.ndarray,
    kernel: np.ndarray,
    geometry: ConvGeometry,
    mode: str,
    value: float,
    out: np.ndarray,
    tiles: Tiling | None = None,
) -> None:
    """Write the correlation into ``out`` (every element), through real FFTs.

    ``tiles``: the tiling to use (by default :func:`tiling` of ``geometry``); a streamed block passes the
    whole image's, whose row tiles it holds whole (dilation 1 down the rows).
    """
    from . import calibration, pocketfft

    dtype = out.dtype
    (top, _), (left, _) = geometry.padding
    classes = _classes(geometry)
    if tiles is None:
        tiles = tiling(geometry, calibration.fft_table(out.size))
    jobs = []
    for key, phases in classes.items():
        rows_out, cols_out = phases[0][0].out_count, phases[0][1].out_count
        tile_h, length_h, tile_w, length_w = tiles.tiles[key]
        shape = (length_h, length_w)
        spectra = []
        for rt, ct in phases:
            sub = kernel[rt.k_start :: rt.k_step, ct.k_start :: ct.k_step].astype(dtype)
            # Rows first on the kernel's few rows, then the columns: half the work of rfft2 on a padded copy.
            rows_done = pocketfft.rfft(sub, n=shape[1], axis=1)
            spectra.append(np.conj(pocketfft.fft(rows_done, n=shape[0], axis=0, workers=workers())))
        for i0 in range(0, rows_out, tile_h):
            for j0 in range(0, cols_out, tile_w):
                jobs.append((phases, spectra, shape, i0, min(rows_out, i0 + tile_h), j0, min(cols_out, j0 + tile_w)))

    inner = tiles.inner

    def tile(phases, spectra, shape, i0, i1, j0, j1) -> None:
        total = None
        for (rt, ct), spectrum in zip(phases, spectra):
            rows, cols = i1 - i0 + rt.k_count - 1, j1 - j0 + ct.k_count - 1
            window = np.zeros(shape, dtype=dtype)
            gather(
                image,
                (rt.in_start + rt.in_step * i0 - top, rt.in_step, rows),
                (ct.in_start + ct.in_step * j0 - left, ct.in_step, cols),
                mode,
                value,
                window[:rows, :cols],
            )
            product = pocketfft.rfft2(window, workers=inner)
            product *= spectrum
            if total is None:
                total = product
            else:
                total += product
        assert total is not None
        result = pocketfft.irfft2(total, shape, workers=inner)
        rt, ct = phases[0]
        out[
            rt.out_start + rt.out_step * i0 : rt.out_start + rt.out_step * (i1 - 1) + 1 : rt.out_step,
            ct.out_start + ct.out_step * j0 : ct.out_start + ct.out_step * (j1 - 1) + 1 : ct.out_step,
        ] = result[: i1 - i0, : j1 - j0]

    run_parallel(jobs, tile, len(jobs) > 1)
