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
in-memory engine computes: the running-sum strips of ``box`` and the FFT's
row tiles (stride 1). Steps cache the units they computed last, so halos are
computed once.

Floats become pixels with the in-memory mapping: when ``--scale`` needs the
result's range (``minmax``, ``abs``, ``auto`` without ``--vmin/--vmax``) a
first pass computes it, a second writes. Results are written by
:mod:`convcli.io.strips` (TIFF, PNG, npy), to a temporary file renamed into
place.
"""

from __future__ import annotations

import math
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..api.arrays import as_kernels, plan_filter
from ..api.arrays import geometry as make_geometry
from ..api.settings import FilterSettings, ReadSettings, WriteSettings
from ..engine import Plan
from ..engine.borders import border_map
from ..errors import OutputError, ParameterError
from ..io.pixels import PixelMapping, to_pixels
from ..io.strips import RowReader, open_rows, row_writer
from ..kernels import Kernel
from ..limits import Estimate, LimitError, format_bytes
from ..shapes import ConvGeometry

#: Bytes of working buffers one strip of one step aims at, when no strip height is given.
STRIP_BYTES = 24 << 20
#: Units a step keeps (the next step's halo reaches back into the previous unit).
_CACHED_UNITS = 3


def _row_local(plan: Plan) -> bool:
    """Whether the plan's numbers at a row are independent of where a block of rows starts."""
    if plan.backend == "opencv":
        return plan.method != "fft"
    return plan.method in ("direct", "separable")


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
        self.units = self._units(unit_rows)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    # -- units ---------------------------------------------------------------

    def _units(self, unit_rows: int) -> list[tuple[int, int]]:
        """Row ranges of the computed geometry, computed one at a time (as the in-memory engine cuts them when it matters)."""
        rows = self.compute.output[0]
        plan = self.plan
        if plan.backend == "numpy" and plan.method == "box":
            from ..engine.strips import _strips

            g = self.compute
            width = (g.output[1] - 1) * g.stride[1] + g.dilation[1] * (g.kernel[1] - 1) + 1
            least = 4 * g.dilation[0] * (g.kernel[0] - 1) // g.stride[0] + 4
            # Each running-sum strip starts its sums afresh: compute exactly the in-memory strips, one per unit.
            return _strips(g, 8 * 4 * width * g.stride[0], least)
        if plan.backend == "numpy" and plan.method == "fft":
            units = self._fft_units(unit_rows)
            # None: one tile covers the rows, or strided/dilated classes interleave them: one block, as in memory.
            return units if units is not None else [(0, rows)]
        unit = max(1, unit_rows)
        return [(start, min(rows, start + unit)) for start in range(0, rows, unit)]

    def _fft_units(self, unit_rows: int) -> list[tuple[int, int]] | None:
        """Blocks of whole FFT row tiles that give the in-memory numbers (stride and dilation 1), or None.

        Each block must get the same tiles (:func:`convcli.engine.fft._tile`) and run its transforms on
        as many threads as the whole image did (pocketfft's threads group its SIMD lanes differently).
        """
        from ..engine.fft import _tile
        from ..parallel import workers

        g = self.compute
        if g.stride != (1, 1) or g.dilation != (1, 1):
            return None
        rows, cols = g.output
        tile, length = _tile(rows, g.kernel[0])
        if tile >= rows:
            return None
        col_tile = _tile(cols, g.kernel[1])[0]
        col_tiles = -(-cols // col_tile)
        threads = workers()

        def inner(count: int) -> int:
            return 1 if -(-count // tile) * col_tiles >= threads else threads

        per_unit = max(1, -(-threads // col_tiles), unit_rows // tile) * tile
        starts = list(range(0, rows, per_unit))
        units = [(start, min(rows, start + per_unit)) for start in starts]
        while len(units) > 1 and inner(units[-1][1] - units[-1][0]) != inner(rows):
            last = units.pop()
            units[-1] = (units[-1][0], last[1])
        for start, stop in units:
            if _tile(stop - start, g.kernel[0]) != (tile, length) or inner(stop - start) != inner(rows):
                return None
        return units

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
            from ..engine.opencv import _border, _call, correlate_opencv, prepared_opencv

            terms = list(plan.terms)
            whole = self.compute
            if prepared_opencv(kernel, terms, plan.method, whole, mode, value) is not None:
                # In memory OpenCV ran on the whole image with its anchor at (left, top): run the same call (its
                # code path, IPP or not, follows the anchor) and keep the rows whose windows lie in the block.
                (top, _), (left, _) = whole.padding
                border = _border(mode, value)
                assert border is not None
                call = _call(kernel, terms, plan.method, (left, top), border, (block.shape[0], whole.output[1]))
                return np.ascontiguousarray(call(np.ascontiguousarray(block))[top : top + g.output[0]])
            prepared = prepared_opencv(kernel, terms, plan.method, g, mode, value)
            if prepared is None:
                return correlate_opencv(block, kernel, terms, plan.method, g, mode, value)
            return prepared(np.ascontiguousarray(block))
        out = np.empty(g.output, dtype=block.dtype)
        if plan.method == "direct":
            strips.correlate_direct(block, kernel, g, mode, value, out)
        elif plan.method == "separable":
            strips.correlate_separable(block, list(plan.terms), g, mode, value, out)
        elif plan.method == "box":
            _box(block, float(kernel.flat[0]), g, mode, value, out)
        else:
            from ..engine.fft import correlate_fft

            correlate_fft(block, kernel, g, mode, value, out)
        return out

    def _computed(self, index: int) -> np.ndarray:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        result = self._unit(*self.units[index])
        self._cache[index] = result
        while len(self._cache) > _CACHED_UNITS:
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
        rows = np.array(rows, dtype=self.dtype, order="C")
        if self.bias:
            rows += rows.dtype.type(self.bias)
        return rows


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


def _itemsize(dtype: Any) -> int:
    return int(np.dtype(dtype).itemsize)


def stream_estimate(
    input_size: tuple[int, int], channels: int, plans: Sequence[Plan], itemsize: int, unit_rows: int, held: int = 0
) -> Estimate:
    """Peak memory of a streamed run: per step, its cached units and one block of input rows with the engine's copies.

    Per step: ``_CACHED_UNITS`` units of output rows, the block of input rows
    a unit reads (the unit plus the halo, at the padded width) and the
    engine's buffers on it (a gathered copy and about three rows of scratch
    per output row); plus what the reader holds and the interpreter with
    NumPy, SciPy and the codecs loaded (a measured 60 MiB).
    """
    parts: dict[str, int] = {"runtime": 60 << 20, "reader": held}
    for index, plan in enumerate(plans):
        g = plan.full or plan.geometry
        rows = min(unit_rows, g.output[0])
        halo = (rows - 1) * g.stride[0] + g.dilation[0] * (g.kernel[0] - 1) + 1
        padded_width = g.padded[1]
        block = halo * g.input[1] * itemsize * channels
        engine = 2 * halo * padded_width * itemsize + 4 * rows * g.output[1] * itemsize
        cached = _CACHED_UNITS * rows * g.output[1] * itemsize * channels
        parts[f"step {index + 1}"] = block + engine + cached
    return Estimate("this streamed run", parts)


def choose_unit_rows(plans: Sequence[Plan], itemsize: int, channels: int, budget: int | None = None) -> int:
    """Strip height: about :data:`STRIP_BYTES` of buffers per step (less under a small budget), at least 8 rows."""
    target = STRIP_BYTES if budget is None else max(1 << 20, min(STRIP_BYTES, budget // (8 * max(1, len(plans)))))
    widest = max((p.full or p.geometry).padded[1] for p in plans)
    rows = target // max(1, 8 * widest * itemsize * channels)
    return int(max(8, min(4096, rows)))


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
    rows = strip_rows if strip_rows is not None else choose_unit_rows(plans, itemsize, channels, budget)
    if rows < 1:
        raise ParameterError(f"strip height {rows} must be at least 1 row")
    estimate = stream_estimate(input_size, channels, plans, itemsize, rows, held)
    return StreamPlan(
        tuple(kernels), tuple(plans), input_size, plans[-1].geometry.output, channels, np.dtype(dtype), rows, estimate
    )


def build_steps(reader: Any, plan: StreamPlan, settings: FilterSettings) -> Any:
    """The chain of :class:`FilteredRows` over ``reader``; the last one gives the result's rows."""
    rows: Any = reader
    for kernel, step in zip(plan.kernels, plan.plans):
        rows = FilteredRows(rows, kernel, step, settings, plan.dtype, plan.unit_rows)
    return rows


# ---------------------------------------------------------------------------
# Running


def _mapping_pass(
    rows: Any, height: int, unit: int, write: WriteSettings, on_rows: Callable[[int], None]
) -> PixelMapping:
    """The range the in-memory :func:`to_pixels` would find, from a first pass over the result."""
    low, high = math.inf, -math.inf
    finite_low, finite_high = math.inf, -math.inf
    for start in range(0, height, unit):
        values = np.asarray(rows.read(start, min(height, start + unit)), dtype=np.float32)
        if write.scale == "abs":
            values = np.abs(values)
        low, high = min(low, float(values.min())), max(high, float(values.max()))
        if not (np.isfinite(low) and np.isfinite(high)):
            finite = values[np.isfinite(values)]
            if finite.size:
                finite_low, finite_high = min(finite_low, float(finite.min())), max(finite_high, float(finite.max()))
        else:
            finite_low, finite_high = min(finite_low, low), max(finite_high, high)
        on_rows(min(height, start + unit) - start)
    if not (np.isfinite(low) and np.isfinite(high)):
        low, high = (finite_low, finite_high) if np.isfinite(finite_low) else (0.0, 1.0)
    return PixelMapping(low, high, 0, write.scale)


def _resolved_scale(write: WriteSettings, data: PixelMapping | None) -> tuple[str, float | None, float | None]:
    """The (scale, vmin, vmax) that, strip by strip, gives the pixels the whole-image mapping gives."""
    scale, vmin, vmax = write.scale, write.vmin, write.vmax
    if data is None:
        return scale, vmin, vmax
    chosen = scale
    if scale == "auto":
        chosen = "clip" if (vmin is not None or vmax is not None or (data.low >= 0 and data.high <= 1)) else "minmax"
    if chosen == "clip":
        low, high = 0.0, 1.0
    elif chosen == "abs":
        low, high = 0.0, data.high
    else:
        low, high = data.low, data.high
    return chosen, low if vmin is None else vmin, high if vmax is None else vmax


def needs_range(write: WriteSettings) -> bool:
    """Whether the float-to-pixel mapping needs the result's range first (one more pass)."""
    if write.scale == "clip":
        return False
    if write.scale == "auto":
        return write.vmin is None and write.vmax is None
    if write.scale == "abs":
        return write.vmax is None
    return write.vmin is None or write.vmax is None


@dataclass(frozen=True)
class Streamed:
    """What :func:`stream_filter` did."""

    destination: str
    fmt: str
    shape: tuple[int, ...]
    mapping: PixelMapping | None
    plan: StreamPlan
    passes: int
    detail: str
    kind: str
    input_size: tuple[int, int]


def check_free_space(destination: str, needed: int) -> None:
    """Refuse before starting when the destination's file system cannot hold the result."""
    folder = Path(destination).parent if str(Path(destination).parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise LimitError(
            f"the result needs about {format_bytes(needed)} at {destination!r} but only {format_bytes(free)} is free "
            "there; free some space or write elsewhere"
        )


def output_bytes(shape: tuple[int, ...], fmt: str, depth: int) -> int:
    """An upper bound of the written file's size (PNG: stored, uncompressed)."""
    values = int(np.prod(shape))
    return values * (4 if fmt == "tiff" else 8 if fmt == "npy" else depth // 8) + (1 << 16) + shape[0]


def stream_filter(
    reader: RowReader,
    destination: str,
    fmt: str,
    kernels: Sequence[Kernel],
    settings: FilterSettings,
    write: WriteSettings,
    *,
    strip_rows: int | None = None,
    budget: int | None = None,
    on_rows: Callable[[int, int], None] | None = None,
) -> Streamed:
    """Filter ``reader``'s image strip by strip into ``destination`` (``tiff``, ``png`` or ``npy``), atomically.

    ``on_rows(done, total)`` is told the output rows done (over both passes
    when the pixel mapping needs the range first).
    """
    from ..api.arrays import _working_dtype

    probe = np.empty((1, 1), dtype=reader.dtype)
    dtype = np.dtype(_working_dtype(probe, settings.precision))
    size = (reader.height, reader.width)
    plan = plan_stream(
        size, reader.channels, dtype, kernels, settings, strip_rows=strip_rows, budget=budget, held=reader.held_bytes
    )
    height, width = plan.output_size
    shape: tuple[int, ...] = (height, width) + ((reader.channels,) if reader.channels > 1 else ())
    pixels = fmt == "png"
    check_free_space(destination, output_bytes(shape, fmt, write.depth))
    passes = 2 if pixels and needs_range(write) else 1
    total = passes * height
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        if on_rows is not None:
            on_rows(done[0], total)

    unit = max(1, min(plan.unit_rows, height))
    data = None
    if passes == 2:
        data = _mapping_pass(build_steps(reader, plan, settings), height, unit, write, advance)
    scale, vmin, vmax = _resolved_scale(write, data)
    steps = build_steps(reader, plan, settings)
    writer = row_writer(destination, fmt, shape, depth=write.depth, compression=write.compression, dtype=dtype)
    clipped = 0
    low = high = 0.0
    try:
        for start in range(0, height, unit):
            rows = steps.read(start, min(height, start + unit))
            if pixels:
                if write.depth not in (8, 16):
                    raise ParameterError(f"depth {write.depth} is not 8 or 16")
                values, mapping = to_pixels(rows, scale=scale, vmin=vmin, vmax=vmax, depth=write.depth)
                clipped += mapping.clipped
                low, high = mapping.low, mapping.high
                writer.write(values)
            else:
                writer.write(rows)
            advance(rows.shape[0])
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    result = PixelMapping(low, high, clipped, scale) if pixels else None
    return Streamed(destination, fmt, shape, result, plan, passes, reader.detail, reader.kind, size)


# ---------------------------------------------------------------------------
# The public form


def filter_file(
    source: str,
    destination: str,
    kernel: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    bias: float = 0.0,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
    method: str = "auto",
    precision: str = "auto",
    format: str | None = None,  # noqa: A002 - the option's name
    scale: str = "auto",
    vmin: float | None = None,
    vmax: float | None = None,
    depth: int = 8,
    compression: int = 1,
    gray: str = "luma",
    normalize: str = "dtype",
    color: bool = False,
    frame: int = 0,
    strip_rows: int | None = None,
    max_memory: int | None = None,
) -> Streamed:
    """Filter an image file into another without holding either in memory, as ``convcli filter --stream``.

    The file is byte for byte what ``convcli.save(convcli.filter(convcli.load(source), kernel, ...),
    destination)`` writes (see :mod:`convcli.run.stream` for how); the keyword arguments are those of
    :func:`convcli.filter`, :func:`convcli.load` and :func:`convcli.save`.

    Parameters
    ----------
    source : str
        A TIFF/BigTIFF (tiled or striped; read by rows), a ``.npy`` (memory-mapped), or any other image
        convcli reads (decoded whole, then streamed).
    destination : str
        ``.tif``/``.tiff`` (float32), ``.png`` (8 or 16 bits) or ``.npy``, written to a temporary
        name and renamed into place.
    strip_rows : int, optional
        Output rows computed at a time per step; default from ``max_memory``.
    max_memory : int, optional
        Bytes the run may use (sets the strip height); default :data:`STRIP_BYTES` per step.

    Returns
    -------
    Streamed
        The destination, format, shape, pixel mapping, plan (with its memory estimate) and passes.

    Examples
    --------
    >>> import numpy as np, tempfile, os, convcli
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "x.npy"), np.arange(9.0).reshape(3, 3))
    >>> done = filter_file(os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy"), "0 1; 2 3", strip_rows=1)
    >>> np.load(os.path.join(folder, "y.npy"))
    array([[19., 25.],
           [37., 43.]])
    """
    from ..api.arrays import _finite
    from ..api.files import load_settings
    from ..io import check_output_path, output_format

    settings = FilterSettings(
        make_geometry(
            stride=stride, padding=padding, dilation=dilation, pad_mode=pad_mode, pad_value=pad_value, convolve=convolve
        ),
        bias=_finite(bias, "bias"),
        method=method,
        precision=precision,
    )
    write = WriteSettings(format=format, scale=scale, vmin=vmin, vmax=vmax, depth=depth, compression=compression)
    read = ReadSettings(gray=gray, normalize=normalize, color=color, frame=frame)
    fmt = output_format(destination, format)
    check_output_path(destination)
    reader = open_rows(
        source,
        frame=frame,
        gray=gray,
        normalize=normalize,
        color=color,
        max_pixels=read.max_pixels,
        load_whole=lambda: load_settings(source, replace(read, max_pixels=None)),
    )
    with reader:
        return stream_filter(
            reader, destination, fmt, as_kernels(kernel), settings, write, strip_rows=strip_rows, budget=max_memory
        )


def elapsed(start: float) -> float:
    return time.perf_counter() - start


__all__ = ["FilteredRows", "StreamPlan", "Streamed", "filter_file", "plan_stream", "stream_filter", "OutputError"]
