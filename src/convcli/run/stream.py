"""Streamed filtering: huge images read, filtered and written in row strips, bit for bit the in-memory result.

Every step of a chain is a :class:`FilteredRows`: asked for output rows
``[a, b)``, it reads the input rows their windows need (the halo: kernel
extent, dilation and stride included, however tall against a strip), maps
rows above and below the image through the border mode
(:func:`convcli.engine.borders.border_map`: real rows inside, the border only
at the true image edges) and runs the **same method, backend and geometry
as the in-memory plan of the whole image** on that block, with the column
padding unchanged and no row padding. Methods whose numbers do not depend on
where a block starts (direct taps, separable passes, OpenCV's filters)
work on strips of any height; the others compute exactly the row units the
in-memory engine computes: the running-sum strips of ``box``, the FFT's
row tiles (with the whole image's tiling, whose row tiles stay short on a
wide image: :data:`convcli.engine.fft.BAND_ELEMENTS`) and the banded strips
of the BLAS variants. Steps cache the units they computed last, so halos are
computed once.

Pooling streams the same way (:class:`PooledRows`): a block of the rows the
windows read, padded with the op's fill (``-inf``, ``+inf`` or zeros) exactly
as :func:`convcli.pooling.pool2d` pads the whole image, reduced in the same
order, and divided by the same window counts.

:mod:`convcli.run.streamed` runs the steps into a file.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..api.arrays import plan_filter
from ..api.checks import pool_geometry_for
from ..api.settings import FilterSettings, PoolSettings
from ..engine import Plan
from ..engine.borders import border_map
from ..errors import ParameterError
from ..kernels import Kernel
from ..limits import POOL_RUNTIME_BYTES, RUNTIME_BYTES, Estimate
from ..pooling import PoolGeometry
from ..shapes import ConvGeometry

#: Bytes of working buffers a streamed run aims at beside the interpreter (the estimate's parts other
#: than the runtime, the reader's band of segments included), when no strip height or budget says otherwise:
#: the strip height shrinks as the image widens, so the peak does not grow with the width.
STRIP_BYTES = 32 << 20
#: Units a step keeps (the next step's halo reaches back into the previous unit); the last step keeps one
#: (its rows are read in order, each once).
_CACHED_UNITS = 3


class FilteredRows:
    """Output rows of one correlation step, computed on demand from the rows of ``source``.

    ``source`` has ``height``, ``width``, ``channels`` and ``read(start, stop)``.
    """

    def __init__(
        self,
        source: Any,
        kernel: Kernel,
        plan: Plan,
        settings: FilterSettings,
        dtype: Any,
        unit_rows: int,
        tiles: Any = None,
    ) -> None:
        shape = settings.geometry
        self.source = source
        self.weights = np.asarray(kernel.weights[::-1, ::-1] if shape.convolve else kernel.weights, dtype=np.float64)
        self.plan = plan
        self.mode = shape.pad_mode
        self.value = shape.pad_value
        self.bias = settings.bias
        self.dtype = np.dtype(dtype)
        self.geometry = plan.geometry
        #: What the engine computes: the kept outputs, or every output at stride 1 when the plan subsamples.
        self.compute = plan.full or plan.geometry
        self.height, self.width = plan.geometry.output
        self.channels = source.channels
        #: NumPy's FFT: the whole image's tiling (:func:`fft_tiling`; the client's, on a cluster's workers).
        self.tiles = tiles if tiles is not None else fft_tiling(plan)
        self.units = self._units(unit_rows)
        #: Units kept after they are computed (:func:`build_steps` keeps one for the last step).
        self.keep = _CACHED_UNITS
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def _units(self, unit_rows: int) -> list[tuple[int, int]]:
        return plan_units(self.plan, unit_rows, self.tiles, self.weights)

    # -- computing -----------------------------------------------------------

    def _input_rows(self, first: int, count: int) -> np.ndarray:
        """Padded-input rows ``first .. first + count`` (padded coordinates) as real rows or border rows."""
        top = self.compute.padding[0][0]
        height = self.source.height
        index = np.arange(first - top, first - top + count)
        inside = index[0] >= 0 and index[-1] < height
        if inside:
            block = self.source.read(int(index[0]), int(index[-1]) + 1)
            return block.astype(self.dtype, copy=False)
        mapped = border_map(index, height, self.mode)
        real = mapped[mapped >= 0]
        shape = (count, self.source.width) + ((self.channels,) if self.channels > 1 else ())
        block = np.empty(shape, dtype=self.dtype)
        fill = 0.0 if self.mode == "zeros" else self.value
        block[mapped < 0] = fill
        if real.size:
            # Contiguous runs of source rows (circular borders read the other end of the image).
            order = np.unique(real)
            cuts = np.flatnonzero(np.diff(order) != 1) + 1
            for run in np.split(order, cuts):
                rows = self.source.read(int(run[0]), int(run[-1]) + 1).astype(self.dtype, copy=False)
                where = (mapped >= run[0]) & (mapped <= run[-1])
                block[where] = rows[mapped[where] - run[0]]
        return block

    def _unit(self, start: int, stop: int) -> np.ndarray:
        """Computed-geometry rows ``[start, stop)``: the engine's method on this block of rows."""
        g = self.compute
        sh, dh, kh = g.stride[0], g.dilation[0], g.kernel[0]
        count = (stop - start - 1) * sh + dh * (kh - 1) + 1
        block = self._input_rows(start * sh, count)
        strip = ConvGeometry(
            input=(count, g.input[1]),
            kernel=g.kernel,
            stride=g.stride,
            padding=((0, 0), g.padding[1]),
            dilation=g.dilation,
            output=(stop - start, g.output[1]),
        )
        if block.ndim == 3:
            return np.stack([self._run(np.ascontiguousarray(block[:, :, c]), strip) for c in range(block.shape[2])], 2)
        return self._run(block, strip)

    def _run(self, block: np.ndarray, g: ConvGeometry) -> np.ndarray:
        """The dispatch of :func:`convcli.engine.correlate2d` for one block, with the whole image's plan."""
        from ..engine import strips

        plan, kernel, mode, value = self.plan, self.weights, self.mode, self.value
        if plan.backend == "opencv":
            from ..engine.opencv import _border, _call, correlate_opencv, cv2_module, prepared_opencv

            terms = list(plan.terms)
            whole = self.compute
            if prepared_opencv(kernel, terms, plan.method, whole, mode, value) is not None:
                # In memory OpenCV ran on the whole image with its anchor at (left, top): run the same call (its
                # code path, IPP or not, follows the anchor) and keep the rows whose windows lie in the block.
                (top, _), (left, _) = whole.padding
                border = _border(mode, value)
                assert border is not None
                call = _call(kernel, terms, plan.method, (left, top), border, (block.shape[0], whole.output[1]))
                result = call(np.ascontiguousarray(block))
                # A copy of the kept rows: a view would keep the halo's rows alive in the cache.
                return result if result.shape[0] == g.output[0] else result[top : top + g.output[0]].copy()
            if g.stride != (1, 1) or g.dilation != (1, 1):
                return correlate_opencv(block, kernel, terms, plan.method, g, mode, value)  # polyphase, as in memory
            # In memory: a padded copy, then a 'valid' call anchored at (0, 0); the same on the block.
            from ..engine.borders import gather

            cv2 = cv2_module()

            rows, cols = g.padded
            padded = np.empty((rows, cols), dtype=block.dtype)
            gather(block, (0, 1, rows), (-g.padding[1][0], 1, cols), mode, value, padded)
            return _call(kernel, terms, plan.method, (0, 0), cv2.BORDER_CONSTANT, g.output)(padded)
        out = np.empty(g.output, dtype=block.dtype)
        if plan.method == "direct":
            strips.correlate_direct(block, kernel, g, mode, value, out)
        elif plan.method == "separable":
            strips.correlate_separable(block, list(plan.terms), g, mode, value, out)
        elif plan.method == "box":
            _box(block, float(kernel.flat[0]), g, mode, value, out)
        else:
            from ..engine.fft import correlate_fft

            correlate_fft(block, kernel, g, mode, value, out, self.tiles)
        return out

    def _computed(self, index: int) -> np.ndarray:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        result = self._unit(*self.units[index])
        self._cache[index] = result
        while len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return result

    def read(self, start: int, stop: int) -> np.ndarray:
        """Output rows ``[start, stop)``, bias added, in the step's dtype."""
        sh, sw = self.geometry.stride
        subsample = self.plan.full is not None
        first, last = (start * sh, (stop - 1) * sh + 1) if subsample else (start, stop)
        parts = []
        for index, (u0, u1) in enumerate(self.units):
            if u1 <= first or u0 >= last:
                continue
            unit = self._computed(index)
            parts.append(unit[max(first, u0) - u0 : min(last, u1) - u0])
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if subsample:
            rows = rows[::sh, : (self.width - 1) * sw + 1 : sw]
        if self.bias:  # as correlate2d adds it; a new array, the cached unit is left as it is
            return np.add(rows, self.dtype.type(self.bias), dtype=self.dtype)
        return np.ascontiguousarray(rows, dtype=self.dtype)  # a view of the cached unit when it can be


def fft_tiling(plan: Plan) -> Any:
    """The tiling :func:`convcli.engine.fft.correlate_fft` gives the whole image of a NumPy FFT plan, else None."""
    if plan.backend != "numpy" or plan.method != "fft":
        return None
    from ..engine import calibration
    from ..engine.fft import tiling

    g = plan.full or plan.geometry
    return tiling(g, calibration.fft_table(g.output[0] * g.output[1]))


def plan_units(
    plan: Plan, unit_rows: int, tiles: Any = None, kernel: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Row ranges of the computed geometry a step computes one at a time, cut where the in-memory engine cuts
    when its numbers depend on the cut; otherwise ``unit_rows`` at a time.

    NumPy's box plans: exactly its running-sum strips. NumPy's FFT plans: whole row tiles of the whole image's
    tiling (``tiles``, by default :func:`fft_tiling`), as many as ``unit_rows`` holds (at least one); with a
    dilation down the rows its output classes interleave the rows: one block. The BLAS variants of the direct
    and separable methods (``kernel`` given, the weights the step correlates with): multiples of their banded
    strips, whose products' last bits follow the strip height.
    """
    g = plan.full or plan.geometry
    rows = g.output[0]
    unit = max(1, unit_rows)
    if plan.backend == "numpy" and plan.method == "box":
        from ..engine.strips import _strips

        width = (g.output[1] - 1) * g.stride[1] + g.dilation[1] * (g.kernel[1] - 1) + 1
        least = 4 * g.dilation[0] * (g.kernel[0] - 1) // g.stride[0] + 4
        # Each running-sum strip starts its sums afresh: compute exactly the in-memory strips, one per unit.
        return _strips(g, 8 * 4 * width * g.stride[0], least)
    if plan.backend == "numpy" and plan.method == "fft":
        if g.dilation[0] != 1:
            return [(0, rows)]
        tiles = tiles if tiles is not None else fft_tiling(plan)
        heights = {tile_h for tile_h, _, _, _ in tiles.tiles.values()}
        assert len(heights) == 1, heights  # dilation 1 down the rows: one row class, one row tiling
        tile = heights.pop()
        unit = max(1, unit // tile) * tile
    elif plan.backend == "numpy" and kernel is not None and _banded(plan, kernel):
        from ..engine.strips import _banded_rows

        strip = _banded_rows(g.stride[0])
        unit = max(1, unit // strip) * strip
    return [(start, min(rows, start + unit)) for start in range(0, rows, unit)]


def _banded(plan: Plan, kernel: np.ndarray) -> bool:
    """Whether a NumPy direct or separable plan takes its BLAS variant (banded products over strips of rows)."""
    from ..engine.strips import direct_cost, separable_cost

    g = plan.full or plan.geometry
    if plan.method == "direct":
        return direct_cost(kernel, g)[1]
    if plan.method == "separable":
        return separable_cost(list(plan.terms), g)[1]
    return False


def _box(block: np.ndarray, weight: float, g: ConvGeometry, mode: str, value: float, out: np.ndarray) -> None:
    """:func:`convcli.engine.strips.correlate_box` on a block that is exactly its strips (the same running sums)."""
    from ..engine.strips import _read_slab, window_sums

    (sh, sw), (dh, dw), (kh, kw), ow = g.stride, g.dilation, g.kernel, g.output[1]
    slab = _read_slab(block, g, 0, g.output[0], mode, value)
    down = window_sums(slab, 0, kh, dh, sh, g.output[0])
    across = window_sums(down, 1, kw, dw, sw, ow)
    np.multiply(across, weight, out=out, casting="unsafe")


# ---------------------------------------------------------------------------
# Planning a streamed run


@dataclass(frozen=True)
class StreamPlan:
    """What a streamed filter run will do: the steps' plans, the strip height and its memory estimate."""

    kernels: tuple[Kernel, ...]
    plans: tuple[Plan, ...]
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    channels: int
    dtype: np.dtype
    unit_rows: int
    estimate: Estimate
    #: Per step, NumPy's FFT tiling of the whole image (:func:`fft_tiling`), else None: planned once, here
    #: (on a cluster, by the client, so workers with other calibrations compute the same tiles).
    tilings: tuple[Any, ...] = ()


def _itemsize(dtype: Any) -> int:
    return int(np.dtype(dtype).itemsize)


def stream_estimate(
    input_size: tuple[int, int],
    channels: int,
    plans: Sequence[Plan],
    itemsize: int,
    unit_rows: int,
    held: int = 0,
    kernels: Sequence[Kernel] | None = None,
) -> Estimate:
    """Peak memory of a streamed run: per step, its input rows, the engine's buffers and its cached units.

    Per step, with ``R`` output rows a unit (:func:`plan_units`, given the ``kernels``) and
    ``h = (R - 1) * stride + dilation * (k - 1) + 1`` input rows under them: the block of input rows
    (``h`` rows at the input's width), the engine's buffers on it (OpenCV: its ``h``-row result and the
    copy of the kept rows; NumPy's direct and separable passes: the unit's output and their bounded
    chunks; NumPy's FFT: the unit's output and, per thread, a tile's window, spectra and result; NumPy's
    box: a gathered copy and about three rows of float64 sums per output row) and the units the step keeps
    (``_CACHED_UNITS``, one for the last step); then the writing of a strip, what the reader holds
    (its band of segments, or the stored pixels of an image decoded whole) and the interpreter with
    NumPy, SciPy and the codecs loaded (a measured 60 MiB). Checked against measured peaks by
    ``bench/huge.py``.
    """
    from ..parallel import workers

    parts: dict[str, int] = {"runtime": RUNTIME_BYTES, "reader": held}
    for index, plan in enumerate(plans):
        g = plan.full or plan.geometry
        kernel = None if kernels is None else np.asarray(kernels[index].weights, dtype=np.float64)
        tiles = fft_tiling(plan)
        # The tallest unit the step computes (cut as the in-memory engine cuts, where that matters).
        rows = max(b - a for a, b in plan_units(plan, unit_rows, tiles, kernel))
        halo = (rows - 1) * g.stride[0] + g.dilation[0] * (g.kernel[0] - 1) + 1
        plane = itemsize * channels
        block = halo * g.input[1] * plane
        if plan.backend == "opencv":
            # One plane at a time: the call's result over the block's rows, the kept rows copied out of it.
            engine = halo * g.padded[1] * itemsize + rows * g.output[1] * itemsize
            if channels > 1:  # the planes split out of the block, the stacked result
                engine += block + rows * g.output[1] * plane
        elif tiles is not None:  # NumPy's FFT: the unit's output, and per thread a tile's buffers
            lengths = max(length_h * length_w for _, length_h, _, length_w in tiles.tiles.values())
            engine = rows * g.output[1] * itemsize + workers() * 4 * lengths * itemsize
        elif plan.backend == "numpy" and plan.method == "box":  # running sums over a tall unit
            engine = 2 * halo * g.padded[1] * itemsize + 4 * rows * g.output[1] * itemsize
        else:  # NumPy's direct and separable passes: the unit's output, bounded chunks of scratch (engine.strips)
            engine = rows * g.output[1] * itemsize + (2 << 20)
        keep = 1 if index == len(plans) - 1 else _CACHED_UNITS
        cached = keep * rows * g.output[1] * plane
        parts[f"step {index + 1}"] = block + engine + cached
    # Writing a strip: the float32 copy to_pixels scales, the pixels, PNG's filtered rows and pending IDAT bytes.
    last = plans[-1].geometry
    rows = min(unit_rows, last.output[0])
    parts["writing"] = rows * last.output[1] * channels * (4 + 2) + (1 << 20)
    return Estimate("this streamed run", parts)


def choose_unit_rows(
    plans: Sequence[Plan],
    itemsize: int,
    channels: int,
    budget: int | None = None,
    *,
    input_size: tuple[int, int] | None = None,
    held: int = 0,
    kernels: Sequence[Kernel] | None = None,
) -> int:
    """Strip height: the tallest (8 to 4096 rows) whose estimate fits :data:`STRIP_BYTES` beside the interpreter.

    The working set, the estimate of :func:`stream_estimate` less the runtime (``held``, the reader's
    bytes, included), is bounded by the budget rather than by the width: a wider image gets shorter
    strips. Under a ``budget``, a quarter of what it leaves beside the interpreter, when that is less.
    """
    target = STRIP_BYTES if budget is None else max(1 << 20, min(STRIP_BYTES, (budget - RUNTIME_BYTES) // 4))
    size = input_size or plans[0].geometry.input

    def working(rows: int) -> int:
        return stream_estimate(size, channels, plans, itemsize, rows, held, kernels).total - RUNTIME_BYTES

    tallest = max((p.full or p.geometry).output[0] for p in plans)
    low, high = min(8, tallest), max(1, min(4096, tallest))
    if working(low) > target:
        return low
    while low < high:  # the tallest rows that fit: the estimate grows with the rows
        middle = (low + high + 1) // 2
        low, high = (middle, high) if working(middle) <= target else (low, middle - 1)
    return low


def plan_stream(
    input_size: tuple[int, int],
    channels: int,
    dtype: Any,
    kernels: Sequence[Kernel],
    settings: FilterSettings,
    *,
    strip_rows: int | None = None,
    budget: int | None = None,
    held: int = 0,
) -> StreamPlan:
    """The plans of the whole image (so the numbers are the in-memory ones) and a strip height that fits ``budget``."""
    plans = plan_filter(input_size, kernels, settings, dtype)
    itemsize = _itemsize(dtype)
    rows = (
        strip_rows
        if strip_rows is not None
        else choose_unit_rows(plans, itemsize, channels, budget, input_size=input_size, held=held, kernels=kernels)
    )
    if rows < 1:
        raise ParameterError(f"strip height {rows} must be at least 1 row")
    estimate = stream_estimate(input_size, channels, plans, itemsize, rows, held, kernels)
    tilings = tuple(fft_tiling(plan) for plan in plans)
    output = plans[-1].geometry.output
    return StreamPlan(
        tuple(kernels), tuple(plans), input_size, output, channels, np.dtype(dtype), rows, estimate, tilings
    )


def build_steps(reader: Any, plan: StreamPlan, settings: FilterSettings) -> Any:
    """The chain of :class:`FilteredRows` over ``reader``; the last one gives the result's rows."""
    rows: Any = reader
    tilings = plan.tilings or (None,) * len(plan.plans)
    for kernel, step, tiles in zip(plan.kernels, plan.plans, tilings):
        rows = FilteredRows(rows, kernel, step, settings, plan.dtype, plan.unit_rows, tiles)
    rows.keep = 1  # the last step's rows are read in order, each once
    return rows


# ---------------------------------------------------------------------------
# Pooling


class PooledRows:
    """Output rows of :func:`convcli.pooling.pool2d` on ``source``'s image, computed on demand (row-local: no units)."""

    def __init__(self, source: Any, settings: PoolSettings, dtype: Any) -> None:
        self.source = source
        self.settings = settings
        self.dtype = np.dtype(dtype)
        self.geometry: PoolGeometry = pool_geometry_for((source.height, source.width), settings)
        if settings.op == "mean" and self.geometry.dilation != (1, 1):
            raise ParameterError("mean pooling has no dilation, as torch avg_pool2d")
        self.height, self.width = self.geometry.output
        self.channels = source.channels
        self.fill = {"max": -np.inf, "min": np.inf, "mean": 0.0}[settings.op]
        g = self.geometry
        # Columns of the padded image pool2d reduces (_pad_for_windows): the padding, then up to the last window.
        needed = g.stride[1] * (g.output[1] - 1) + g.span[1]
        self.columns = (g.padding[1], max(0, needed - g.padding[1] - g.input[1]))
        self.divisors: tuple[np.ndarray, np.ndarray] | None = None
        if settings.op == "mean":
            from ..pooling import _mean_divisors

            counts = [
                _mean_divisors(
                    g.input[a], g.kernel[a], g.stride[a], g.sides[a], g.output[a], settings.count_include_pad
                )
                for a in range(2)
            ]
            self.divisors = (counts[0], counts[1])

    def _block(self, first: int, count: int) -> np.ndarray:
        """Rows ``first .. first + count`` of the padded image (pool2d's padding: the fill outside the input)."""
        g = self.geometry
        top = g.padding[0]
        left, right = self.columns
        shape = (count, left + g.input[1] + right) + ((self.channels,) if self.channels > 1 else ())
        block = np.full(shape, self.fill, dtype=self.dtype)
        lo, hi = max(0, first - top), min(g.input[0], first - top + count)
        if hi > lo:
            block[lo - (first - top) : hi - (first - top), left : left + g.input[1]] = self.source.read(lo, hi)
        return block

    def _pool(self, block: np.ndarray, start: int, stop: int) -> np.ndarray:
        from ..pooling import _reduce_windows

        op = self.settings.op
        ufunc = {"max": np.maximum, "min": np.minimum, "mean": np.add}[op]
        sub = replace(self.geometry, output=(stop - start, self.geometry.output[1]))
        result = _reduce_windows(block, sub, ufunc)
        if self.divisors is None:
            return result
        rows, cols = self.divisors
        if rows.min() == rows.max() and cols.min() == cols.max():  # pool2d's one divisor, in place
            result /= self.dtype.type(rows[0] * cols[0])
            return result
        return result / np.outer(rows[start:stop], cols).astype(self.dtype)

    def read(self, start: int, stop: int) -> np.ndarray:
        g = self.geometry
        sh = g.stride[0]
        count = (stop - start - 1) * sh + g.span[0]
        block = self._block(start * sh, count)
        if block.ndim == 3:
            planes = [np.ascontiguousarray(block[:, :, c]) for c in range(block.shape[2])]
            return np.stack([self._pool(p, start, stop) for p in planes], axis=2)
        return self._pool(block, start, stop)


def pool_estimate(reader: Any, steps: PooledRows, rows: int, held: int = 0) -> Estimate:
    """Peak memory of a streamed pooling: the block of padded rows, its reduction buffer and the output rows."""
    g = steps.geometry
    item = steps.dtype.itemsize * steps.channels
    block = ((rows - 1) * g.stride[0] + g.span[0]) * (g.input[1] + sum(steps.columns)) * item
    parts = {"runtime": POOL_RUNTIME_BYTES, "reader": held, "block": block, "rows": 3 * rows * g.output[1] * item}
    return Estimate("this streamed pooling", parts)
