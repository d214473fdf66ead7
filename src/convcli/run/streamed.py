"""Running streamed steps into a file: the pixel range pass, the row writers, the free-space check, the public API.

:func:`filter_file` and :func:`pool_file` are the streamed forms of
``convcli.save(convcli.filter(convcli.load(src), ...), dst)`` and of
:func:`convcli.pool`: the same bytes, in bounded memory (see
:mod:`convcli.run.stream` for how the steps stay bit-identical).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..api.checks import _finite, _working_dtype, as_kernels, pool_settings
from ..api.checks import geometry as make_geometry
from ..api.settings import FilterSettings, PoolSettings, ReadSettings, WriteSettings
from ..errors import ParameterError
from ..io.pixels import (
    DEFAULT_PERCENTILE,
    PixelMapping,
    RangeScan,
    choose_ends,
    needs_values,
    parse_scale,
    to_pixels,
)
from ..io.strips import TIFF_TILE, RowReader, check_tile, row_writer
from ..kernels import Kernel
from ..limits import Estimate, LimitError, MemoryLimitError, check_memory, format_bytes
from .stream import PooledRows, StreamPlan, build_steps, choose_unit_rows, plan_stream, pool_estimate


@dataclass(frozen=True)
class Streamed:
    """What a streamed run did.

    Attributes
    ----------
    destination, fmt : str
    shape : tuple of int
        The result's shape (``(H, W)`` or ``(H, W, C)``).
    mapping : PixelMapping or None
        Floats to pixels (image formats), as :func:`convcli.io.to_pixels` reports it.
    rows : int
        Output rows computed at a time.
    passes : int
        2 when the pixel mapping needed the result's range first.
    estimate : Estimate
        The memory estimate of the run (:func:`convcli.run.stream.stream_estimate`).
    detail, kind : str
        What was read (``"TIFF 16000x16000 1-channel 8-bit, tiled 256x256"``) and ``image``/``array``.
    input_size : (int, int)
    plan : StreamPlan or None
        The filter steps' plans (``None`` for pooling).
    """

    destination: str
    fmt: str
    shape: tuple[int, ...]
    mapping: PixelMapping | None
    rows: int
    passes: int
    estimate: Estimate
    detail: str
    kind: str
    input_size: tuple[int, int]
    plan: StreamPlan | None = None


def needs_range(write: WriteSettings) -> bool:
    """Whether the float-to-pixel mapping needs the result's values first (one more pass)."""
    return needs_values(write.scale, write.vmin, write.vmax)


def range_scan(rows: Any, scale: str) -> RangeScan:
    """An empty :class:`RangeScan` for the whole result of ``rows`` under ``scale`` (strips are added to it)."""
    _, percentile = parse_scale(scale)
    total = rows.height * rows.width * rows.channels
    return RangeScan(total, percentile or DEFAULT_PERCENTILE, absolute=scale == "abs")


def _range_pass(rows: Any, unit: int, write: WriteSettings, advance: Callable[[int], None]) -> RangeScan:
    """What :func:`to_pixels` would read of the whole result (extremes, signs, percentile tails), strip by strip."""
    height = rows.height
    scan = range_scan(rows, write.scale)
    for start in range(0, height, unit):
        scan.add(rows.read(start, min(height, start + unit)))
        advance(min(height, start + unit) - start)
    return scan


def _resolved_scale(write: WriteSettings, data: RangeScan | None) -> tuple[str, float | None, float | None]:
    """The ``(scale, vmin, vmax)`` that, strip by strip, gives the pixels the whole-image mapping gives."""
    if data is None:
        return write.scale, write.vmin, write.vmax
    return choose_ends(data, write.scale, write.vmin, write.vmax)


def output_bytes(shape: tuple[int, ...], fmt: str, depth: int, itemsize: int = 8, tile: int | None = None) -> int:
    """An upper bound of the written file's size (PNG: as if stored uncompressed; tiles padded at the edges)."""
    if fmt == "tiff" and tile:
        shape = tuple(-(-side // tile) * tile for side in shape[:2]) + tuple(shape[2:])
    values = int(np.prod(shape))
    per_value = 4 if fmt == "tiff" else itemsize if fmt in ("npy", "zarr") else depth // 8
    return values * per_value + shape[0] + (1 << 16)


def check_free_space(destination: str, needed: int) -> None:
    """Refuse before the first row when the destination's file system cannot hold the result."""
    folder = Path(destination).parent if str(Path(destination).parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise LimitError(
            f"the result needs up to {format_bytes(needed)} at {destination!r} but only {format_bytes(free)} is free "
            "there; free some space or write elsewhere"
        )


def stream_rows(
    make_steps: Callable[[], Any],
    destination: str,
    fmt: str,
    write: WriteSettings,
    rows: int,
    *,
    on_rows: Callable[[int, int], None] | None = None,
    tile: int | None = None,
) -> tuple[tuple[int, ...], PixelMapping | None, int]:
    """Write the rows of ``make_steps()`` (a fresh chain per pass) into ``destination``, atomically.

    ``tile``: a TIFF written in square tiles of that side, ``None`` in strips (the in-memory layout).
    Returns the result's shape, the pixel mapping (image formats) and the passes made.
    """
    tile = check_tile(tile)
    steps = make_steps()
    height, width, channels = steps.height, steps.width, steps.channels
    shape: tuple[int, ...] = (height, width) + ((channels,) if channels > 1 else ())
    pixels = fmt == "png"
    if pixels and write.depth not in (8, 16):
        raise ParameterError(f"depth {write.depth} is not 8 or 16")
    check_free_space(destination, output_bytes(shape, fmt, write.depth, steps.dtype.itemsize, tile))
    passes = 2 if pixels and needs_range(write) else 1
    total = passes * height
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        if on_rows is not None:
            on_rows(done[0], total)

    unit = max(1, min(rows, height))
    data = None
    if passes == 2:
        data = _range_pass(steps, unit, write, advance)
        steps = make_steps()  # the first pass's caches are dropped
    scale, vmin, vmax = _resolved_scale(write, data)
    clipped = 0
    low = high = 0.0
    writer = row_writer(
        destination, fmt, shape, depth=write.depth, compression=write.compression, dtype=steps.dtype, tile=tile
    )
    try:
        for start in range(0, height, unit):
            block = steps.read(start, min(height, start + unit))
            if pixels:
                values, mapping = to_pixels(block, scale=scale, vmin=vmin, vmax=vmax, depth=write.depth)
                clipped += mapping.clipped
                low, high = mapping.low, mapping.high
                writer.write(values)
            else:
                writer.write(block)
            advance(block.shape[0])
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return shape, (PixelMapping(low, high, clipped, scale) if pixels else None), passes


def _with_writer(
    estimate: Estimate,
    fmt: str,
    size: tuple[int, int],
    channels: int,
    dtype: Any,
    tile: int | None,
    reader: RowReader | None = None,
) -> Estimate:
    """The estimate with what the writer holds, and zarr's modules when the source or the output is a store.

    A Zarr output holds its band of chunk rows, zarr's copy of it into chunks and their compressed
    bytes (about two bands, measured by ``bench/huge.py --stream-estimates``); the other writers hold
    a strip, counted by the steps' estimate.
    """
    from ..io.zarrs import ZARR_RUNTIME

    parts = dict(estimate.parts)
    if fmt == "zarr":
        rows = min(size[0], check_tile(tile) or TIFF_TILE)
        parts["zarr band"] = 2 * rows * size[1] * channels * np.dtype(dtype).itemsize
    if fmt == "zarr" or (reader is not None and reader.runtime_bytes):
        parts["zarr modules"] = ZARR_RUNTIME  # beside the interpreter, not in the strips' share
    return replace(estimate, parts=parts) if parts != estimate.parts else estimate


def pool_dtype(reader: RowReader) -> np.dtype:
    """The working type of a streamed pooling: float32 sources stay float32, the rest is float64."""
    return np.dtype(np.float32 if reader.dtype == np.float32 else np.float64)


def pool_strip_rows(reader: RowReader, steps: PooledRows, budget: int | None) -> int:
    """Output rows per strip of a streamed pooling: about 8 MiB of padded input rows (less in a small budget)."""
    padded = reader.width + sum(steps.columns)
    target = 8 << 20 if budget is None else max(1 << 20, min(8 << 20, (budget - (60 << 20)) // 4))
    per_row = padded * steps.dtype.itemsize * reader.channels * steps.geometry.stride[0]
    return int(max(8, min(4096, target // max(1, per_row))))


def filter_plan(
    reader: RowReader, kernels: Sequence[Kernel], settings: FilterSettings, strip_rows: int | None, budget: int | None
) -> StreamPlan:
    """The plans of a streamed filtering of ``reader``'s image and its strip height (the working type by precision)."""
    dtype = np.dtype(_working_dtype(np.empty((1, 1), dtype=reader.dtype), settings.precision))
    size = (reader.height, reader.width)
    return plan_stream(
        size, reader.channels, dtype, kernels, settings, strip_rows=strip_rows, budget=budget, held=reader.held_bytes
    )


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
    tile: int | None = TIFF_TILE,
) -> Streamed:
    """Filter ``reader``'s image strip by strip into ``destination`` (``tiff``, ``png`` or ``npy``).

    ``on_rows(done, total)`` is told the output rows done (over both passes
    when the pixel mapping needs the range first). A TIFF is written in
    ``tile`` x ``tile`` tiles (``None`` or 0: in strips, the in-memory file).
    """
    plan = filter_plan(reader, kernels, settings, strip_rows, budget)
    plan = replace(
        plan, estimate=_with_writer(plan.estimate, fmt, plan.output_size, plan.channels, plan.dtype, tile, reader)
    )
    try:
        check_memory(replace(plan.estimate, what="this run, even streamed,"), budget)
    except MemoryLimitError as exc:
        if any(
            p.method == "fft" and p.backend == "numpy" and (p.full or p.geometry).dilation[0] != 1 for p in plan.plans
        ):
            raise MemoryLimitError(
                f"{exc}; NumPy's FFT with a dilation down the rows computes the image as one block "
                "(docs/streaming.md, Limits): --method direct streams in strips of any height"
            ) from None
        raise
    shape, mapping, passes = stream_rows(
        lambda: build_steps(reader, plan, settings), destination, fmt, write, plan.unit_rows, on_rows=on_rows, tile=tile
    )
    size = (reader.height, reader.width)
    return Streamed(
        destination, fmt, shape, mapping, plan.unit_rows, passes, plan.estimate, reader.detail, reader.kind, size, plan
    )


def stream_pool(
    reader: RowReader,
    destination: str,
    fmt: str,
    settings: PoolSettings,
    write: WriteSettings,
    *,
    strip_rows: int | None = None,
    budget: int | None = None,
    on_rows: Callable[[int, int], None] | None = None,
    tile: int | None = TIFF_TILE,
) -> Streamed:
    """Pool ``reader``'s image strip by strip into ``destination`` (the in-memory numbers; TIFF in ``tile`` tiles)."""
    dtype = pool_dtype(reader)
    steps = PooledRows(reader, settings, dtype)
    rows = pool_strip_rows(reader, steps, budget) if strip_rows is None else strip_rows
    estimate = pool_estimate(reader, steps, rows, reader.held_bytes)
    estimate = _with_writer(estimate, fmt, steps.geometry.output, steps.channels, dtype, tile, reader)
    check_memory(replace(estimate, what="this pooling, even streamed,"), budget)
    shape, mapping, passes = stream_rows(
        lambda: PooledRows(reader, settings, dtype), destination, fmt, write, rows, on_rows=on_rows, tile=tile
    )
    size = (reader.height, reader.width)
    return Streamed(destination, fmt, shape, mapping, rows, passes, estimate, reader.detail, reader.kind, size)


# ---------------------------------------------------------------------------
# The public forms


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
    tile: int | None = TIFF_TILE,
    scheduler: Any = None,
) -> Streamed:
    """Filter an image file into another without holding either whole, as ``convcli filter --stream``.

    The file holds the numbers of ``convcli.save(convcli.filter(convcli.load(source), kernel, ...),
    destination)``, byte for byte the same file but for a TIFF's tiles (``tile=None``: that too); the keyword arguments are those of :func:`convcli.filter`,
    :func:`convcli.load` and :func:`convcli.save`. Cross-correlation (the kernel not flipped) unless
    ``convolve``; borders by ``pad_mode`` at the image's true edges only.

    Parameters
    ----------
    source : str
        A TIFF/BigTIFF (tiled or striped; read by segments), a ``.npy`` (read by rows), a Zarr array
        (``convcli[zarr]``; read by chunk rows), or any other source convcli reads (decoded whole,
        then streamed).
    destination : str
        ``.tif``/``.tiff`` (float32, uncompressed), ``.png`` (8 or 16 bits), ``.npy`` or ``.zarr``
        (chunks ``tile`` a side), written to a temporary name and renamed into place.
    strip_rows : int, optional
        Output rows computed at a time by each step; default from ``max_memory``.
    max_memory : int, optional
        Bytes the run may use (sets the strip height).
    tile : int or None
        A TIFF destination in square tiles of this side (a multiple of 16, default 256; BigTIFF above
        4 GiB); ``None`` or 0 writes strips, byte for byte the file of the in-memory run. Other formats
        are byte for byte the in-memory file either way.
    scheduler : str or distributed.Client, optional
        Compute the strips on Dask workers (``tcp://HOST:8786``, ``local``, ``local:N`` or a client;
        :mod:`convcli.run.cluster_split`): the same bytes, written here as the strips come back.

    Returns
    -------
    Streamed
        The destination, format, shape, pixel mapping, strip height, passes and memory estimate
        (a :class:`~convcli.run.cluster_split.Split` when ``scheduler`` is given).

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "x.npy"), np.arange(9.0).reshape(3, 3))
    >>> done = filter_file(os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy"), "0 1; 2 3", strip_rows=1)
    >>> np.load(os.path.join(folder, "y.npy"))
    array([[19., 25.],
           [37., 43.]])
    """
    from .front import run_file

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
    limits: dict[str, Any] = {"strip_rows": strip_rows, "max_memory": max_memory, "tile": tile, "scheduler": scheduler}
    return run_file(stream_filter, lambda: (as_kernels(kernel), settings), source, destination, write, read, **limits)


def pool_file(
    source: str,
    destination: str,
    size: Any = 2,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    op: str = "max",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
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
    tile: int | None = TIFF_TILE,
    scheduler: Any = None,
) -> Streamed:
    """Pool an image file into another without holding either whole, as ``convcli pool --stream``.

    Byte for byte ``convcli.save(convcli.pool(convcli.load(source), size, ...), destination)`` (a TIFF's
    tiles aside: ``tile`` as :func:`filter_file`);
    the keyword arguments are those of :func:`convcli.pool`, :func:`convcli.load`,
    :func:`convcli.save` and :func:`filter_file` (``scheduler`` too: the strips computed on Dask workers).

    >>> import numpy as np, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "x.npy"), np.arange(16.0).reshape(4, 4))
    >>> _ = pool_file(os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy"), 2, strip_rows=1)
    >>> np.load(os.path.join(folder, "y.npy"))
    array([[ 5.,  7.],
           [13., 15.]])
    """
    from .front import run_file

    settings = pool_settings(
        size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        op=op,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )
    write = WriteSettings(format=format, scale=scale, vmin=vmin, vmax=vmax, depth=depth, compression=compression)
    read = ReadSettings(gray=gray, normalize=normalize, color=color, frame=frame)
    limits: dict[str, Any] = {"strip_rows": strip_rows, "max_memory": max_memory, "tile": tile, "scheduler": scheduler}
    return run_file(stream_pool, lambda: (settings,), source, destination, write, read, **limits)


__all__ = ["Streamed", "filter_file", "pool_file", "stream_filter", "stream_pool", "stream_rows", "choose_unit_rows"]
