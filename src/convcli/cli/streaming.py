"""Streamed runs on the command line (``--stream``, or automatically when the in-memory run would not fit).

Shared by ``filter``, ``pool`` and ``upsample``: their common options (the bundle and the fields of
their records), which items can stream, the row reader of a source, the streamed run (on the Dask
workers of the current cluster when there is one) and its report, the progress bar (rows, rate,
time left; on a terminal only) and the stand-ins a report needs for an input and a result never
held in memory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..api.settings import ReadSettings
from ..errors import OutputUsageError
from ..run.batch import Item
from .batching import load_item
from .option_records import RunOptions, max_memory_bytes, read_settings, run_options
from .options import batch_options, figure_options, memory_option, output_options, source_options, stream_options
from .reports import Progress, Report, streamed_record
from .streams import Written

F = TypeVar("F", bound=Callable[..., Any])


def image_options(function: F) -> F:
    """The option bundles of filter, pool and upsample after their own: sources, memory, streaming, outputs,
    batches, figures (in this order in ``--help``)."""
    return source_options(memory_option(stream_options(output_options(batch_options(figure_options(function))))))


@dataclass(frozen=True, kw_only=True)
class ImageOptions:
    """The fields the options records of filter, pool and upsample share (picklable: batch workers get a copy)."""

    read: ReadSettings
    run: RunOptions
    max_memory: int | None = None
    #: True: stream; False: never; None: stream when the in-memory run would not fit the memory budget.
    stream: bool | None = None
    strip_rows: int | None = None
    #: Tile side of a streamed TIFF output (0: strips).
    tile: int = 256


def image_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The :class:`ImageOptions` fields from click's keyword arguments of :func:`image_options`."""
    return {
        "read": read_settings(options),
        "run": run_options(options),
        "max_memory": max_memory_bytes(options),
        "stream": options.get("stream"),
        "strip_rows": options.get("strip_rows"),
        "tile": options.get("tile", 256),
    }


@dataclass(frozen=True)
class Shown:
    """What a report reads of an input it never held: the source, a shape (:func:`shape_only`), what was read."""

    source: Any
    array: Any
    kind: str
    detail: str


def shape_only(shape: tuple[int, ...]) -> Any:
    """An array of ``shape`` that holds one byte (zero strides): reports read ``.shape`` and ``.size`` only."""
    import numpy as np

    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=np.uint8), shape=shape, strides=(0,) * len(shape))


def guarded(estimate: Any, item: Item, pixels: int, decoded_bytes_per_pixel: int, budget: int | None) -> None:
    """Check the in-memory run's ``estimate`` against ``budget``; when it refuses, say on the error whether a
    streamed run could still fit.

    TIFF and ``.npy`` files are read by rows: they may stream (the streamed run checks its own,
    small, estimate). Other images are decoded whole, keeping their stored pixels (about half the
    decoder's bytes per pixel): they may stream only when those pixels and a streamed run fit the
    budget, so a decompression bomb is never decoded.
    """
    import os

    from ..limits import RUNTIME_BYTES, MemoryLimitError, check_memory, memory_budget

    try:
        check_memory(estimate, budget)
    except MemoryLimitError as error:
        from ..io.strips import streams_by_rows  # only when refused: the row readers stay off a small job

        room = memory_budget(budget)[0]
        if item.source == "-" or not os.path.isfile(item.source):
            error.streamable = False
        elif streams_by_rows(item.source):
            error.streamable = True
        else:
            stored = pixels * max(1, decoded_bytes_per_pixel // 2)
            error.streamable = room is None or stored + RUNTIME_BYTES + (48 << 20) <= room
        raise


def can_stream(item: Item, run: RunOptions, error: Exception) -> bool:
    """Whether a run refused by ``error`` may stream instead: outputs a streamed run writes (TIFF, PNG, npy files),
    no figure, and a file source: any image when the memory estimate refused it, only a TIFF or ``.npy`` (read by
    rows, not decoded whole) when the pixel limit did (the decompression-bomb guard stays for whole decodes)."""
    import os

    from ..io import output_format
    from ..io.strips import STREAM_FORMATS, streams_by_rows
    from ..limits import MemoryLimitError

    if item.figure is not None or item.source == "-" or not os.path.isfile(item.source):
        return False
    if isinstance(error, MemoryLimitError):
        if not getattr(error, "streamable", False):
            return False
    elif not streams_by_rows(item.source):
        return False
    return all(d != "-" and output_format(d, run.write.format) in STREAM_FORMATS for d in item.destinations)


def zarr_only(item: Item, stream: bool | None) -> bool:
    """Whether the item reads or writes a Zarr store, which only a streamed run does (``--no-stream``: an error)."""
    from ..io.zarrpaths import is_zarr, is_zarr_output

    if not (is_zarr(item.source) or any(is_zarr_output(d) for d in item.destinations)):
        return False
    if stream is False:
        raise OutputUsageError("Zarr stores are read and written by streamed runs only; drop --no-stream")
    return True


def load_or_stream(item: Item, options: ImageOptions, on_size: Any) -> Any | None:
    """The item's source loaded, or ``None`` when it streams instead.

    It streams with ``--stream``, a Zarr store, or when a limit refuses the in-memory run and a streamed run
    may take it (:func:`can_stream`), never with ``--no-stream``: a refusal under ``--no-stream`` that a
    streamed run would take says so. ``on_size`` checks the source's header.
    """
    from ..limits import LimitError

    if options.stream or zarr_only(item, options.stream):
        return None
    try:
        return load_item(item, options.read, options.run, on_size=on_size)
    except LimitError as error:
        # Too large for memory, or for the pixel limit of a format streams read by rows: stream it when allowed.
        if options.stream is False and can_stream(item, options.run, error):
            raise type(error)(
                f"{error}; or drop --no-stream: a streamed run (--stream) holds a few rows at a time"
            ) from None
        if options.stream is False or not can_stream(item, options.run, error):
            raise
        return None


def check_streamable(item: Item, target: str, run: RunOptions) -> str:
    """The output format of ``target``, or a usage error (exit 2) when a streamed run cannot write it."""
    from ..io import output_format
    from ..io.strips import check_stream_format

    if item.figure is not None:
        raise OutputUsageError("--figure needs the whole image in memory; drop it or use --no-stream")
    if target == "-":
        raise OutputUsageError("a streamed run writes files, not stdout; give -o FILE.tif, .png or .npy")
    fmt = output_format(target, run.write.format)
    check_stream_format(fmt)
    return fmt


def stream_one(
    item: Item,
    target: str,
    read: ReadSettings,
    run: RunOptions,
    work: Callable[[Any, str, str, Callable[[int, int], None]], Any],
) -> tuple[Shown, Any, Written, Any, float]:
    """Run ``work(reader, target, fmt, on_rows)`` on the item's source; returns what a report needs.

    Returns ``(input, result stand-in, written, Streamed, seconds)``.
    """
    from ..io import classify_source
    from ..io.strips import open_rows

    fmt = check_streamable(item, target, run)
    start = time.perf_counter()
    reader = open_rows(
        item.source,
        frame=read.frame,
        gray=read.gray,
        normalize=read.normalize,
        color=read.color,
        max_pixels=read.max_pixels,
        load_whole=lambda: load_item(item, read, run),
    )
    import multiprocessing

    # On a terminal, and not in a batch's worker processes (their bars would overwrite each other).
    shown_here = multiprocessing.parent_process() is None
    progress = Progress(1) if not run.silent and shown_here and sys.stderr.isatty() else None
    shown = [0.0]

    def on_rows(done: int, total: int) -> None:
        now = time.perf_counter()
        if progress is not None and (now - shown[0] > 0.2 or done == total):
            progress.total = total
            progress.update(done, 0)
            shown[0] = now

    try:
        with reader:
            done = work(reader, target, fmt, on_rows)
    finally:
        if progress is not None:
            progress.clear()
    loaded = Shown(classify_source(item.source), shape_only(done.input_size), done.kind, done.detail)
    return loaded, shape_only(done.shape), Written(target, fmt, done.mapping), done, time.perf_counter() - start


def streamed_note(done: Any) -> str:
    """``note: streamed in strips of 64 rows, one pass, estimated peak 98 MiB``."""
    from ..limits import format_bytes

    passes = "two passes (the pixel range first)" if done.passes == 2 else "one pass"
    text = f"note: streamed in strips of {done.rows} rows, {passes}, estimated peak {format_bytes(done.estimate.total)}"
    return text + (f"; {done.note()}" if hasattr(done, "note") else "")  # split across Dask workers


def stream_item(
    item: Item,
    target: str,
    options: ImageOptions,
    stream: Callable[..., Any],
    operands: tuple[Any, ...],
    report: Callable[[Shown, Any, Written, Any, float], Report],
) -> Report:
    """Stream the item's source into ``target`` with ``stream`` (``stream_filter``, ``stream_pool``,
    ``stream_upsample`` of :mod:`convcli.run`, given ``operands``) and report it.

    With a current Dask cluster (``--scheduler``, one source) the strips are computed on its workers.
    ``report(input, result, written, streamed, seconds)`` makes the in-memory run's report of the
    stand-ins; the streamed note follows its first line and ``streamed`` joins its record.
    """
    from ..run.cluster import current_cluster
    from ..run.cluster_split import split_or_stream

    def work(reader: Any, target: str, fmt: str, on_rows: Any) -> Any:
        cluster = current_cluster()
        run = split_or_stream(stream, None if cluster is None else cluster.client, item.source, options.read)
        return run(
            reader,
            target,
            fmt,
            *operands,
            options.run.write,
            strip_rows=options.strip_rows,
            tile=options.tile,
            budget=options.max_memory,
            on_rows=on_rows,
        )

    loaded, result, written, done, seconds = stream_one(item, target, options.read, options.run, work)
    made = report(loaded, result, written, done, seconds)
    made.record["streamed"] = streamed_record(done)
    return Report((made.lines[0], streamed_note(done), *made.lines[1:]), made.record)
