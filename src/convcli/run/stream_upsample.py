"""Streamed upsampling: a transposed convolution's output rows from a bounded window of input rows.

Output row ``y`` of :func:`convcli.transpose.conv_transpose2d` is full row ``r = y + p`` of the
scatter, which input row ``i`` reaches through tap ``u`` when ``r = i*s + u*d``: so output rows
``[a, b)`` need input rows ``ceil((a + p - d(k - 1)) / s)`` to ``floor((b - 1 + p) / s)``. A block
of those rows is upsampled with the same polyphase evaluation as the whole image
(:func:`convcli.transpose._polyphase`), its row padding moved to where the block starts and its
output cut to the block's rows: every output element gets the same products added in the same
order, so the numbers are the in-memory ones, bit for bit. No border modes are involved (rows
beyond the input add nothing). With a Dask ``scheduler`` the strips are computed on the workers
(:func:`convcli.run.cluster_split.split_upsample`), with the same numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..api.checks import _fix, _overflow_checked, check_finite_result
from ..io.strips import TIFF_TILE
from ..kernels import Kernel
from ..limits import RUNTIME_BYTES, Estimate
from ..transpose import TransposeGeometry, _polyphase


class UpsampledRows:
    """Output rows of an upsampling of ``source``'s image (``geometry`` resolved for the whole image)."""

    def __init__(self, source: Any, kernel: Kernel, geometry: TransposeGeometry, bias: float, dtype: Any) -> None:
        self.source = source
        self.geometry = geometry
        self.dtype = np.dtype(dtype)
        self.weights = np.asarray(kernel.weights, dtype=self.dtype)
        self.bias = bias + kernel.offset
        self.name = kernel.name
        self.height, self.width = geometry.output
        self.channels = source.channels

    def input_rows(self, start: int, stop: int) -> tuple[int, int]:
        """The input rows ``[first, last)`` whose kernels reach output rows ``[start, stop)``."""
        (sh, _), (dh, _), (ph, _) = self.geometry.stride, self.geometry.dilation, self.geometry.padding
        reach = dh * (self.geometry.kernel[0] - 1)
        last = min(self.source.height, (stop - 1 + ph) // sh + 1)
        first = min(max(0, -(-(start + ph - reach) // sh)), last)
        return first, last

    def read(self, start: int, stop: int) -> np.ndarray:
        """Output rows ``[start, stop)``, bias added, as :func:`convcli.upsample` computes them."""
        g = self.geometry
        first, last = self.input_rows(start, stop)
        block = self.source.read(first, last) if last > first else None
        rows = stop - start
        # The block's scatter starts at row first*s of the whole one: its row padding is what lies above start.
        sub = replace(
            g,
            input=(last - first, g.input[1]),
            padding=(g.padding[0] + start - first * g.stride[0], g.padding[1]),
            output=(rows, g.output[1]),
        )
        shape = (rows, g.output[1]) + ((self.channels,) if self.channels > 1 else ())
        out = np.empty(shape, dtype=self.dtype)
        with _overflow_checked():
            for channel in range(self.channels):
                target = out if self.channels == 1 else out[:, :, channel]
                plane = np.empty((rows, g.output[1]), dtype=self.dtype) if self.channels > 1 else target
                if block is None:
                    plane[...] = 0
                else:
                    values = block if block.ndim == 2 else block[:, :, channel]
                    _polyphase(np.ascontiguousarray(values, dtype=self.dtype), self.weights, sub, plane)
                if self.bias:
                    plane += self.dtype.type(self.bias)
                if plane is not target:
                    target[...] = plane
        return check_finite_result(
            out, f"upsampling with {self.name}", _fix(self.dtype, "kernel weights, bias or input values")
        )


def upsampled_rows(reader: Any, kernel: Kernel, settings: Any) -> Callable[[Any], UpsampledRows]:
    """The steps of a streamed upsampling of ``reader``'s image, as a picklable maker over any reader of it.

    The geometry is resolved once for the whole image (the padding chosen for a named kernel included);
    the working type is float32 for a float32 source, float64 otherwise. A split run sends the maker to
    its workers, which apply it to the rows they read.
    """
    from ..api.upsampling import upsample_geometry

    dtype = np.dtype(np.float32 if reader.dtype == np.float32 else np.float64)
    geometry = upsample_geometry((reader.height, reader.width), kernel, settings)
    return functools.partial(UpsampledRows, kernel=kernel, geometry=geometry, bias=settings.bias, dtype=dtype)


def upsample_estimate(steps: UpsampledRows, rows: int, held: int = 0) -> Estimate:
    """Peak memory of a streamed upsampling: the input rows of a strip, the strip's output and its copies."""
    g = steps.geometry
    first, last = steps.input_rows(0, min(rows, steps.height))
    item = steps.dtype.itemsize * steps.channels
    block = (last - first) * g.input[1] * item
    # The output strip and the writing of it (pixels: a float32 copy, the pixels, PNG's filtered rows), the
    # polyphase accumulators (a phase of the strip at a time, at most the strip).
    output = rows * g.output[1] * item
    parts = {"runtime": RUNTIME_BYTES, "reader": held, "block": block, "rows": 2 * output + (1 << 20)}
    return Estimate("this streamed upsampling", parts)


def choose_upsample_rows(steps: UpsampledRows, held: int, budget: int | None, target: int) -> int:
    """The tallest strip (8 to 4096 output rows) whose estimate fits ``target`` bytes beside the interpreter."""
    if budget is not None:
        target = max(1 << 20, min(target, (budget - RUNTIME_BYTES) // 4))
    low, high = min(8, steps.height), max(1, min(4096, steps.height))
    if upsample_estimate(steps, low, held).total - RUNTIME_BYTES > target:
        return low
    while low < high:
        middle = (low + high + 1) // 2
        fits = upsample_estimate(steps, middle, held).total - RUNTIME_BYTES <= target
        low, high = (middle, high) if fits else (low, middle - 1)
    return low


def stream_upsample(
    reader: Any,
    destination: str,
    fmt: str,
    kernel: Kernel,
    settings: Any,
    write: Any,
    *,
    strip_rows: int | None = None,
    budget: int | None = None,
    on_rows: Any = None,
    tile: int | None = TIFF_TILE,
) -> Any:
    """Upsample ``reader``'s image strip by strip into ``destination`` (the in-memory numbers; TIFF in ``tile`` tiles)."""
    from ..limits import check_memory
    from .stream import STRIP_BYTES
    from .streamed import Streamed, _with_writer, stream_rows

    build = upsampled_rows(reader, kernel, settings)
    steps = build(reader)
    rows = strip_rows if strip_rows is not None else choose_upsample_rows(steps, reader.held_bytes, budget, STRIP_BYTES)
    estimate = upsample_estimate(steps, rows, reader.held_bytes)
    estimate = _with_writer(estimate, fmt, steps.geometry.output, steps.channels, steps.dtype, tile, reader)
    check_memory(replace(estimate, what="this upsampling, even streamed,"), budget)
    shape, mapping, passes = stream_rows(
        lambda: build(reader), destination, fmt, write, rows, on_rows=on_rows, tile=tile
    )
    size = (reader.height, reader.width)
    return Streamed(destination, fmt, shape, mapping, rows, passes, estimate, reader.detail, reader.kind, size)


def upsample_file(
    source: str,
    destination: str,
    kernel: Any,
    *,
    stride: Any,
    padding: Any = None,
    output_padding: Any = 0,
    dilation: Any = 1,
    output_size: Any = None,
    bias: float = 0.0,
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
) -> Any:
    """Upsample an image file into another without holding either whole (a transposed convolution by strips).

    The numbers are those of ``convcli.save(convcli.upsample(convcli.load(source), kernel, stride=...),
    destination)``, and the file byte for byte the same but for a TIFF's tiles (``tile=None``: that
    too); the keyword arguments are those of :func:`convcli.upsample`, :func:`convcli.load`,
    :func:`convcli.save` and :func:`convcli.filter_file`. Output rows ``[a, b)`` read the input rows
    ``ceil((a + p - d(k - 1)) / s)`` to ``floor((b - 1 + p) / s)``: the input held is about
    ``1/s`` of the output strip.

    ``scheduler`` (``tcp://HOST:8786``, ``local``, ``local:N`` or a ``distributed.Client``) computes
    the strips on Dask workers, as :func:`convcli.filter_file` does: the same bytes, written here as
    the strips come back, and a :class:`~convcli.run.cluster_split.Split` returned (the workers and
    tasks it used).

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "x.npy"), np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> _ = upsample_file(os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy"), "nearest", stride=2,
    ...                   strip_rows=1)
    >>> np.load(os.path.join(folder, "y.npy"))
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
    """
    from ..api.checks import upsample_settings
    from ..api.settings import ReadSettings, WriteSettings
    from ..api.upsampling import upsampling_kernel
    from .front import run_file

    settings = upsample_settings(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        output_size=output_size,
        bias=bias,
    )
    resolved = upsampling_kernel(kernel, settings.stride)
    write = WriteSettings(format=format, scale=scale, vmin=vmin, vmax=vmax, depth=depth, compression=compression)
    read = ReadSettings(gray=gray, normalize=normalize, color=color, frame=frame)
    limits: dict[str, Any] = {"strip_rows": strip_rows, "max_memory": max_memory, "tile": tile, "scheduler": scheduler}
    return run_file(stream_upsample, lambda: (resolved, settings), source, destination, write, read, **limits)
