"""NumPy methods that work in row strips on all cores: direct taps, separable passes, box running sums.

Each strip of output rows reads its own slab of the padded input through
:func:`convcli.engine.borders.gather` (no padded copy of the whole image),
works in cache-sized buffers and writes its rows of the output. NumPy releases
the GIL inside its loops, so strips run in parallel threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..shapes import ConvGeometry
from .borders import gather

_POOL: ThreadPoolExecutor | None = None

# Bytes of slab + scratch + output rows one strip may use (half the 1 MiB L2 of this machine).
_STRIP_BYTES = 1 << 19
# Below this many outputs the work runs in the calling thread.
_PARALLEL_MIN_OUTPUTS = 1 << 16


def workers() -> int:
    """Threads used: ``CONVCLI_THREADS`` or the number of CPUs."""
    text = os.environ.get("CONVCLI_THREADS", "")
    if text.isdigit() and int(text) > 0:
        return int(text)
    return os.cpu_count() or 1


def run_parallel(tasks: list, function: Callable, parallel: bool = True) -> None:
    """Run ``function(*task)`` for every task: one share per thread, the caller taking the first share."""
    global _POOL
    count = min(workers(), len(tasks))
    if not parallel or count < 2:
        for task in tasks:
            function(*task)
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, workers() - 1), thread_name_prefix="convcli")

    def share(index: int) -> None:
        for task in tasks[index::count]:
            function(*task)

    futures = [_POOL.submit(share, index) for index in range(1, count)]
    share(0)
    for future in futures:
        future.result()


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
    total = 0
    for weight, members in weight_groups(weights):
        total += len(members) - 1 + (weight != 1.0) + 1
    return max(1, total - 1)


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


def correlate_direct(
    image: np.ndarray, kernel: np.ndarray, geometry: ConvGeometry, mode: str, value: float, out: np.ndarray
) -> None:
    """Tap by tap on strided windows of each slab: only the kept outputs are computed."""
    weights = kernel.astype(out.dtype)
    (sh, sw), (dh, dw), ow = geometry.stride, geometry.dilation, geometry.output[1]
    taps = [(u, v) for u in range(weights.shape[0]) for v in range(weights.shape[1])]
    flat = [weights[u, v] for u, v in taps]

    def strip(first: int, stop: int) -> None:
        slab = _read_slab(image, geometry, first, stop, mode, value)
        rows = stop - first
        views = [
            slab[u * dh : u * dh + sh * (rows - 1) + 1 : sh, v * dw : v * dw + sw * (ow - 1) + 1 : sw] for u, v in taps
        ]
        buffers = np.empty((2, rows, ow), dtype=out.dtype)
        _accumulate(out[first:stop], flat, views, buffers[0], buffers[1])

    bytes_per_row = out.itemsize * (3 * ow * sw + 2 * ow)
    run_parallel(_strips(geometry, bytes_per_row), strip, out.size >= _PARALLEL_MIN_OUTPUTS)


def correlate_separable(
    image: np.ndarray,
    terms: list[tuple[np.ndarray, np.ndarray]],
    geometry: ConvGeometry,
    mode: str,
    value: float,
    out: np.ndarray,
) -> None:
    """Per term a pass down the columns (kept rows only), then across (kept columns only)."""
    (sh, sw), (dh, dw), ow = geometry.stride, geometry.dilation, geometry.output[1]
    cast = [(column.astype(out.dtype), row.astype(out.dtype)) for column, row in terms]

    def strip(first: int, stop: int) -> None:
        slab = _read_slab(image, geometry, first, stop, mode, value)
        rows = stop - first
        down = np.empty((3, rows, slab.shape[1]), dtype=out.dtype)
        across = out[first:stop] if len(cast) == 1 else np.empty((rows, ow), dtype=out.dtype)
        scratch = np.empty((2, rows, ow), dtype=out.dtype)
        for index, (column, row) in enumerate(cast):
            _accumulate(
                down[0],
                column,
                [slab[u * dh : u * dh + sh * (rows - 1) + 1 : sh] for u in range(len(column))],
                down[1],
                down[2],
            )
            _accumulate(
                across,
                row,
                [down[0][:, v * dw : v * dw + sw * (ow - 1) + 1 : sw] for v in range(len(row))],
                scratch[0],
                scratch[1],
            )
            if len(cast) > 1:
                if index == 0:
                    out[first:stop] = across
                else:
                    out[first:stop] += across

    width = (ow - 1) * sw + dw * (geometry.kernel[1] - 1) + 1
    bytes_per_row = out.itemsize * (3 * width * sh + 2 * width + 3 * ow)
    run_parallel(_strips(geometry, bytes_per_row), strip, out.size >= _PARALLEL_MIN_OUTPUTS)


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
