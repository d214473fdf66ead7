"""NumPy methods that work in row chunks on all cores: direct taps, separable passes, box running sums.

Each chunk of output rows gathers the padded input rows it reads through
:func:`convcli.engine.borders.gather` (no padded copy of the whole image) and
writes its rows of the output. The tap-by-tap methods run every tap as a 1-D
contiguous view of that buffer (:func:`_flat_views`) over chunks of a few MiB:
NumPy's per-call cost outweighs cache reuse here. The banded-BLAS and box
variants work in shorter strips. NumPy releases the GIL inside its loops, so
chunks run in parallel threads.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..parallel import run_parallel, single_threaded_blas, workers
from ..shapes import ConvGeometry
from .borders import gather

# Bytes of slab + scratch + output rows one box strip may use (half the 1 MiB L2 of this machine).
_STRIP_BYTES = 1 << 19
# Buffers per chunk of the flat tap-by-tap methods: large chunks, because NumPy's per-call cost outweighs
# cache reuse here (3x3 at 1024x1024, one thread: 2.1 ms whole-image, 2.4 ms in 128-row and 4.5 ms in 8-row chunks).
_CHUNK_BYTES = 1 << 22
# Below this many outputs the work runs in the calling thread.
_PARALLEL_MIN_OUTPUTS = 1 << 16
# Strided tap-by-tap work runs on polyphase components whose arrays are short, and between NumPy calls the
# threads wait for each other's GIL: a random 15x15 at stride 4 on 1024x1024 (65,536 outputs) took 22.7 ms on
# two threads and 13.0 on one; from four times as many outputs the threads win (2048: 34.6 against 41.5 ms).
_PARALLEL_MIN_STRIDED = 1 << 18


def _worth_threads(geometry: ConvGeometry, outputs: int) -> bool:
    """Whether the tap-by-tap methods run their chunks on the worker threads (the same numbers either way)."""
    strided = geometry.stride != (1, 1)
    return outputs >= (_PARALLEL_MIN_STRIDED if strided else _PARALLEL_MIN_OUTPUTS)


def _strips(geometry: ConvGeometry, row_bytes: int, least: int = 4) -> list[tuple[int, int]]:
    rows = geometry.output[0]
    height = max(least, min(256, _STRIP_BYTES // max(1, row_bytes)))
    # At least two strips per thread so both cores stay busy to the end.
    if rows * geometry.output[1] >= _PARALLEL_MIN_OUTPUTS:
        height = max(1, min(height, -(-rows // (2 * workers()))))
    return [(start, min(rows, start + height)) for start in range(0, rows, height)]


def _slab_rows(geometry: ConvGeometry, first: int, stop: int) -> tuple[int, int]:
    """Padded-input rows ``(start, count)`` read by output rows ``[first, stop)``."""
    sh, dh, kh = geometry.stride[0], geometry.dilation[0], geometry.kernel[0]
    return first * sh, (stop - first - 1) * sh + dh * (kh - 1) + 1


def _read_slab(image: np.ndarray, geometry: ConvGeometry, first: int, stop: int, mode: str, value: float) -> np.ndarray:
    start, count = _slab_rows(geometry, first, stop)
    (top, _), (left, _) = geometry.padding
    sw, dw, kw, ow = geometry.stride[1], geometry.dilation[1], geometry.kernel[1], geometry.output[1]
    width = (ow - 1) * sw + dw * (kw - 1) + 1
    slab = np.empty((count, width), dtype=image.dtype)
    return gather(image, (start - top, 1, count), (-left, 1, width), mode, value, slab)


def weight_groups(weights) -> list[tuple[float, list[tuple[int, int]]]]:
    """Tap indices grouped by ``|weight|``, each with its sign: ``[(w, [(index, +1 or -1), ...]), ...]``.

    Equal weights are summed first and multiplied once, so ``[1 0 -1]`` rows
    cost adds only and a symmetric Gaussian half the multiplies.

    >>> weight_groups([0.25, 0.5, 0.25, 0.0, -0.5])
    [(0.25, [(0, 1), (2, 1)]), (0.5, [(1, 1), (4, -1)])]
    """
    groups: dict[float, list[tuple[int, int]]] = {}
    for index, weight in enumerate(weights):
        if weight != 0:
            groups.setdefault(abs(float(weight)), []).append((index, 1 if weight > 0 else -1))
    return list(groups.items())


def passes(weights) -> int:
    """Array passes :func:`_accumulate` makes for these weights (the cost model's unit).

    >>> passes([1.0, 0.0, -1.0] * 3), passes([0.25, 0.5, 0.25]), passes([0.3, 0.1, 0.2])
    (5, 4, 5)
    """
    # Per group of equal |weight|: (members - 1) adds, one multiply unless the weight is 1, one add into
    # the total: nonzero taps + groups whose weight is not 1, minus the first add. Vectorised: the cost
    # model calls this on every kernel, up to 4096x4096.
    values = np.sort(np.abs(np.asarray(weights, dtype=np.float64).ravel()))
    values = values[values != 0]
    # Distinct values of the sorted taps, counted without np.unique (whose first call imports numpy.ma, ~10 ms).
    groups = values.size and 1 + int(np.count_nonzero(np.diff(values)))
    total = values.size + groups - int(np.any(values == 1.0))
    return max(1, int(total) - 1)


def _accumulate(
    target: np.ndarray, weights, views: list[np.ndarray], scratch: np.ndarray, group_buffer: np.ndarray
) -> None:
    """``target = sum(weights[i] * views[i])``; taps of equal ``|weight|`` are added first and scaled once."""
    first = True
    for weight, members in weight_groups(weights):
        (index, sign), rest = members[0], members[1:]
        if not rest:
            destination = target if first else scratch
            np.multiply(views[index], weight * sign, out=destination)
        else:
            destination = target if first else group_buffer
            (np.add if rest[0][1] == sign else np.subtract)(views[index], views[rest[0][0]], out=destination)
            for other, other_sign in rest[1:]:
                (np.add if other_sign == sign else np.subtract)(destination, views[other], out=destination)
            factor = weight * sign
            if factor != 1.0:
                destination *= destination.dtype.type(factor)
        if not first:
            target += destination
        first = False
    if first:
        target.fill(0)


def _flat_views(buffer: np.ndarray, offsets: list[tuple[int, int]], rows: int) -> list[np.ndarray]:
    """1-D views of a C-contiguous 2-D ``buffer``: view ``(u, v)`` starts at ``buffer[u, v]`` and spans ``rows`` rows.

    Every tap then runs NumPy's contiguous 1-D loop (about twice as fast as a
    2-D window view); the last ``v`` entries of each row are junk that
    :func:`_valid` drops. ``buffer`` needs one spare row when any ``v > 0``
    (:func:`_gathered` makes one).
    """
    flat = buffer.reshape(-1)
    width = buffer.shape[1]
    return [flat[u * width + v : u * width + v + rows * width] for u, v in offsets]


def _valid(flat: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``flat`` seen as ``rows`` padded rows, without each row's junk tail: the first ``cols`` of each."""
    return flat.reshape(rows, -1)[:, :cols]


def _gathered(
    image: np.ndarray, rows: tuple[int, int, int], cols: tuple[int, int, int], mode: str, value: float, dtype: np.dtype
) -> np.ndarray:
    """:func:`gather` into a new C-contiguous buffer with one spare zero row for :func:`_flat_views`."""
    buffer = np.empty((rows[2] + 1, cols[2]), dtype=dtype)
    gather(image, rows, cols, mode, value, buffer[:-1])
    buffer[-1] = 0
    return buffer


def _chunks(rows: int, row_bytes: int, threaded: bool) -> list[tuple[int, int]]:
    """Output-row chunks of about ``_CHUNK_BYTES`` of buffers each, at least two per thread when ``threaded``."""
    height = max(1, _CHUNK_BYTES // max(1, row_bytes))
    if threaded:
        height = min(height, -(-rows // (2 * workers())))
    return [(start, min(rows, start + height)) for start in range(0, rows, height)]


def correlate_direct(
    image: np.ndarray, kernel: np.ndarray, geometry: ConvGeometry, mode: str, value: float, out: np.ndarray
) -> None:
    """Tap by tap on chunks of rows; with a stride, on polyphase components so every pass is contiguous.

    Each chunk gathers the padded rows it reads into one contiguous buffer
    (border rules applied there), and every tap is a 1-D contiguous view of
    it (:func:`_flat_views`). Stride ``s``: tap ``u`` of output ``i`` reads
    padded row ``s*i + d*u``, that is row ``i + (d*u)//s`` of the phase
    ``(d*u) % s`` component ``P[phase::s]``; each component is gathered with
    one strided read, so only the kept outputs are computed.
    """
    weights = kernel.astype(out.dtype)
    if direct_cost(kernel, geometry)[1]:
        # Medium kernels: each kernel row is one banded BLAS product across a strip.
        def rows_strip(first: int, stop: int) -> None:
            slab = _read_slab(image, geometry, first, stop, mode, value)
            count = stop - first
            for u in range(weights.shape[0]):
                _across_banded(slab[u : u + count], weights[u], out[first:stop], u > 0)

        _run_banded(geometry, rows_strip, out)
        return
    (sh, sw), (dh, dw), ow = geometry.stride, geometry.dilation, geometry.output[1]
    (kh, kw), (top, _), (left, _) = geometry.kernel, geometry.padding[0], geometry.padding[1]
    taps = [(u, v) for u in range(kh) for v in range(kw)]
    flat = [weights[u, v] for u, v in taps]
    # Tap (u, v) reads component (phase_r, phase_c) at offset (row, col): stride 1 has one component.
    where = [(divmod(dh * u, sh), divmod(dw * v, sw)) for u, v in taps]
    phases = sorted({(r[1], c[1]) for r, c in where})
    extra = ((dh * (kh - 1)) // sh, (dw * (kw - 1)) // sw)
    width = ow + extra[1]

    def chunk(first: int, stop: int) -> None:
        rows = stop - first
        components = {
            (a, b): _gathered(
                image, (first * sh + a - top, sh, rows + extra[0]), (b - left, sw, width), mode, value, out.dtype
            )
            for a, b in phases
        }
        views = []
        for (row, phase_r), (col, phase_c) in where:
            views += _flat_views(components[(phase_r, phase_c)], [(row, col)], rows)
        buffers = np.empty((3, rows * width), dtype=out.dtype)
        _accumulate(buffers[0], flat, views, buffers[1], buffers[2])
        out[first:stop] = _valid(buffers[0], rows, ow)

    row_bytes = out.itemsize * width * (len(phases) + 3)
    threaded = _worth_threads(geometry, out.size)
    run_parallel(_chunks(geometry.output[0], row_bytes, threaded), chunk, threaded)


_BANDED_ROWS = 64
# Cost model of the tap-by-tap methods, nanoseconds per output (2 cores, float32, measured at 1024 and 4096
# with bench/calibrate.py): one contiguous array pass (3x3 random at 1024x1024, 17 passes plus the gather and the
# copy out: 4.4 ms; 9x9 at 2048x2048, 161 passes: 96 ms), a separable term's extra buffers; BLAS: a fixed part
# and per flop (tap by tap now wins up to 9x9 random: 96 vs 162 ms at 2048x2048).
PASS_NS = 0.2
TERM_NS = 0.6
BLAS_NS = 4.0
BLAS_FLOP_NS = 0.022
# The direct method's BLAS variant: per kernel row (one batched product) and once per output.
BLAS_ROW_NS = 2.0
BLAS_DIRECT_NS = 1.0


def _block(taps: int) -> int:
    return max(32, 1 << (taps - 1).bit_length())


def direct_cost(kernel: np.ndarray, geometry: ConvGeometry) -> tuple[float, bool]:
    """Estimated ns per output of :func:`correlate_direct` (plus its reads), and whether it would use BLAS.

    Tap by tap: :func:`passes` over the kernel, plus copying the result out
    of the padded-width buffer. BLAS (stride and dilation 1):
    one banded product per kernel row, ``2 (block + kw - 1)`` flops per output each.
    """
    (sh, sw), (dh, dw), (kh, kw) = geometry.stride, geometry.dilation, geometry.kernel
    taps = (passes(kernel.ravel()) + 1) * PASS_NS
    if (sh, sw, dh, dw) != (1, 1, 1, 1):
        return taps, False
    blas = BLAS_DIRECT_NS + kh * (BLAS_ROW_NS + BLAS_FLOP_NS * 2 * (_block(kw) + kw - 1))
    return (blas, True) if blas < taps else (taps, False)


def separable_cost(terms: list, geometry: ConvGeometry) -> tuple[float, bool]:
    """Estimated ns per output of :func:`correlate_separable`, and whether it would use BLAS.

    Tap by tap: array passes (:func:`passes`), the pass down running over
    every column the kept outputs read, and with a column stride one pass
    splitting the result into column phases. BLAS (stride and dilation 1 only, as
    :func:`direct_cost`): ``2 (rows + kh - 1) + 2 (block + kw - 1)`` flops per output and term.
    """
    (sh, sw), (dh, dw), (kh, kw) = geometry.stride, geometry.dilation, geometry.kernel
    # Down: every column the kept outputs read (sw per kept output); across: the kept columns, after one
    # pass that splits the columns into their sw phases when strided.
    split = sw if sw > 1 else 0
    taps = sum((passes(column) * sw + passes(row) + split) * PASS_NS + TERM_NS for column, row in terms)
    if (sh, sw, dh, dw) != (1, 1, 1, 1):
        # Strided, the banded products lose to the taps: a 31-tap Gaussian at stride 2 on 1024x1024 took
        # 14.8 ms by BLAS and 9.1 tap by tap (stride 4: 13.5 and 6.8; bench/calibrate.py's misses), as direct.
        return taps, False
    # Down: the band of R output rows spans R - 1 + kh input rows; across: blocks of B columns span B - 1 + kw.
    band = _banded_rows(1)
    flops = 2 * (band - 1 + kh) + 2 * (_block(kw) - 1 + kw)
    blas = len(terms) * (BLAS_NS + BLAS_FLOP_NS * flops)
    return (blas, True) if blas < taps else (taps, False)


def banded(weights: np.ndarray, count: int, dtype: np.dtype, step: int = 1) -> np.ndarray:
    """``(count, (count - 1) step + k)`` matrix, row ``i`` holding the weights from column ``i step``.

    ``M @ x`` correlates ``x`` with the weights at stride ``step`` (only the kept outputs).

    >>> banded(np.array([1.0, 2.0]), 3, np.dtype(np.float64))
    array([[1., 2., 0., 0.],
           [0., 1., 2., 0.],
           [0., 0., 1., 2.]])
    >>> banded(np.array([1.0, 2.0]), 2, np.dtype(np.float64), step=2)
    array([[1., 2., 0., 0.],
           [0., 0., 1., 2.]])
    """
    matrix = np.zeros((count, (count - 1) * step + len(weights)), dtype=dtype)
    index = np.arange(count)
    for u, weight in enumerate(weights):
        matrix[index, index * step + u] = weight
    return matrix


def _across_banded(down: np.ndarray, row: np.ndarray, target: np.ndarray, add: bool, step: int = 1) -> None:
    """``target (+)= correlate(down, row)[::step]`` along rows, in blocks of columns, one BLAS product each."""
    rows, width = target.shape
    taps = len(row)
    block = _block(taps)
    full = width // block
    item = down.itemsize
    span = (block - 1) * step + taps
    if full:
        matrix = banded(row, block, down.dtype, step).T
        windows = np.lib.stride_tricks.as_strided(
            down, shape=(full, rows, span), strides=(block * step * item, down.strides[0], item), writeable=False
        )
        products = np.matmul(windows, matrix).transpose(1, 0, 2)
        view = np.lib.stride_tricks.as_strided(
            target, shape=(rows, full, block), strides=(target.strides[0], block * item, item)
        )
        if add:
            view += products
        else:
            view[...] = products
    rest = width - full * block
    if rest:
        start = full * block * step
        product = down[:, start : start + (rest - 1) * step + taps] @ banded(row, rest, down.dtype, step).T
        if add:
            target[:, full * block :] += product
        else:
            target[:, full * block :] = product


def _banded_rows(stride: int) -> int:
    """Output rows per BLAS strip: fewer when strided (the band widens with the stride)."""
    return max(8, _BANDED_ROWS // stride)


def _run_banded(geometry: ConvGeometry, strip: Callable, out: np.ndarray) -> None:
    rows = geometry.output[0]
    height = _banded_rows(geometry.stride[0])
    tasks = [(start, min(rows, start + height)) for start in range(0, rows, height)]
    with single_threaded_blas() as pinned:
        # Two thread pools (ours and OpenBLAS's) fight; with BLAS pinned to one thread the strips run in ours.
        run_parallel(tasks, strip, pinned and out.size >= _PARALLEL_MIN_OUTPUTS)


def correlate_separable(
    image: np.ndarray,
    terms: list[tuple[np.ndarray, np.ndarray]],
    geometry: ConvGeometry,
    mode: str,
    value: float,
    out: np.ndarray,
) -> None:
    """Per term a pass down the columns (kept rows only), then across (kept columns only).

    Long 1-D kernels (stride and dilation 1, where :func:`separable_cost`
    says so) go through BLAS: down a strip as one banded-matrix product,
    across in column blocks; short ones tap by tap, equal weights summed
    before one multiply.
    """
    (sh, sw), (dh, dw), ow = geometry.stride, geometry.dilation, geometry.output[1]
    cast = [(column.astype(out.dtype), row.astype(out.dtype)) for column, row in terms]
    blas = separable_cost(terms, geometry)[1]

    if blas:

        def strip(first: int, stop: int) -> None:
            slab = _read_slab(image, geometry, first, stop, mode, value)
            target = out[first:stop]
            for index, (column, row) in enumerate(cast):
                down = banded(column, stop - first, out.dtype, sh) @ slab
                _across_banded(down, row, target, index > 0, sw)

        _run_banded(geometry, strip, out)
        return
    (kh, kw), (top, _), (left, _) = geometry.kernel, geometry.padding[0], geometry.padding[1]
    width = (ow - 1) * sw + dw * (kw - 1) + 1  # padded columns the kept outputs read
    # Polyphase: tap u of the pass down reads row (q, phase a) = divmod(d u, s) of the phase-a rows;
    # tap v of the pass across reads column q of the phase-b columns of the pass down's result.
    down_where = [divmod(dh * u, sh) for u in range(kh)]
    across_where = [divmod(dw * v, sw) for v in range(kw)]
    row_phases = sorted({a for _, a in down_where})
    col_phases = sorted({b for _, b in across_where})
    extra_rows = (dh * (kh - 1)) // sh
    phase_width = width if sw == 1 else ow + (dw * (kw - 1)) // sw

    def chunk(first: int, stop: int) -> None:
        rows = stop - first
        dtype = out.dtype
        components = {
            a: _gathered(image, (first * sh + a - top, sh, rows + extra_rows), (-left, 1, width), mode, value, dtype)
            for a in row_phases
        }
        down = np.empty((3, rows + 1, width), dtype=dtype)
        down[0, -1] = 0
        size = rows * width
        across = np.empty((3, rows * phase_width), dtype=dtype)
        if sw > 1:
            columns = {b: np.zeros((rows + 1, phase_width), dtype=dtype) for b in col_phases}
        target = out[first:stop]
        for index, (column, row) in enumerate(cast):
            views = [_flat_views(components[a], [(q, 0)], rows)[0] for q, a in down_where]
            flat_down = down[0].reshape(-1)
            _accumulate(flat_down[:size], column, views, down[1].reshape(-1)[:size], down[2].reshape(-1)[:size])
            if sw == 1:
                views = _flat_views(down[0], [(0, q) for q, _ in across_where], rows)
            else:
                for b, part in columns.items():
                    picked = down[0, :rows, b::sw][:, :phase_width]
                    part[:rows, : picked.shape[1]] = picked
                views = [_flat_views(columns[b], [(0, q)], rows)[0] for q, b in across_where]
            _accumulate(across[0], row, views, across[1], across[2])
            result = _valid(across[0], rows, ow)
            if index == 0:
                target[...] = result
            else:
                target += result

    row_bytes = out.itemsize * width * (len(row_phases) + 3) + out.itemsize * phase_width * (3 + len(col_phases))
    threaded = _worth_threads(geometry, out.size)
    run_parallel(_chunks(geometry.output[0], row_bytes, threaded), chunk, threaded)


def window_sums(array: np.ndarray, axis: int, taps: int, dilation: int, stride: int, count: int) -> np.ndarray:
    """``sum(array[s*i + d*t] for t < taps)`` along ``axis`` for ``i < count``, by float64 running sums.

    Running sums per residue class modulo the dilation, so dilated boxes need
    no zero-stuffed kernel; only the kept (strided) positions are differenced.

    >>> window_sums(np.arange(6.0)[None], 1, 3, 1, 1, 4).tolist()
    [[3.0, 6.0, 9.0, 12.0]]
    >>> window_sums(np.arange(6.0)[None], 1, 2, 2, 3, 2).tolist()
    [[2.0, 8.0]]
    """
    moved = np.moveaxis(array, axis, 0)
    length = moved.shape[0]
    sums = np.zeros((length + dilation,) + moved.shape[1:], dtype=np.float64)
    for residue in range(dilation):
        np.cumsum(moved[residue::dilation], axis=0, dtype=np.float64, out=sums[dilation + residue :: dilation])
    last = stride * (count - 1) + 1
    result = sums[taps * dilation : taps * dilation + last : stride] - sums[0:last:stride]
    return np.moveaxis(result, 0, axis)


def correlate_box(
    image: np.ndarray, weight: float, geometry: ConvGeometry, mode: str, value: float, out: np.ndarray
) -> None:
    """A box (all taps equal): running sums down the kept rows, then across the kept columns."""
    (sh, sw), (dh, dw), (kh, kw), ow = geometry.stride, geometry.dilation, geometry.kernel, geometry.output[1]

    def strip(first: int, stop: int) -> None:
        slab = _read_slab(image, geometry, first, stop, mode, value)
        rows = stop - first
        down = window_sums(slab, 0, kh, dh, sh, rows)
        across = window_sums(down, 1, kw, dw, sw, ow)
        np.multiply(across, weight, out=out[first:stop], casting="unsafe")

    width = (ow - 1) * sw + dw * (kw - 1) + 1
    # Strips several kernels tall, so the rows a strip reads beyond its own stay a small share.
    least = 4 * dh * (kh - 1) // sh + 4
    run_parallel(_strips(geometry, 8 * 4 * width * sh, least), strip, out.size >= _PARALLEL_MIN_OUTPUTS)
