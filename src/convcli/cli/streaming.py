"""Streamed runs on the command line (``--stream``, or automatically when the in-memory run would not fit).

Shared by ``filter`` and ``pool``: which items can stream, the row reader of a
source, the progress bar (rows, rate, time left; on a terminal only) and the
stand-ins a report needs for an input and a result never held in memory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..api.settings import ReadSettings
from ..errors import OutputUsageError
from ..run.batch import Item
from .batching import load_item
from .options import RunOptions
from .reports import Progress
from .streams import Written


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


def guarded(
    check: Callable[[], None], item: Item, pixels: int, decoded_bytes_per_pixel: int, budget: int | None
) -> None:
    """Run a memory ``check``; when it refuses, say on the error whether a streamed run could still fit.

    TIFF and ``.npy`` files are read by rows: they may stream (the streamed run checks its own,
    small, estimate). Other images are decoded whole, keeping their stored pixels (about half the
    decoder's bytes per pixel): they may stream only when those pixels and a streamed run fit the
    budget, so a decompression bomb is never decoded.
    """
    import os

    from ..limits import RUNTIME_BYTES, MemoryLimitError, memory_budget

    try:
        check()
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
