"""The worker's side of a split image (:mod:`convcli.run.cluster_split`): one task's rows, from the plan it is sent.

A task gets a :class:`Job` (the client's plans and settings, never pixels),
a range of output rows and, when the workers cannot read the source
themselves, the input rows its strips read. It rebuilds the streamed steps
over its reader with the job's ``steps`` (:func:`convcli.run.stream.build_steps`,
:class:`~convcli.run.stream.PooledRows` or
:class:`~convcli.run.stream_upsample.UpsampledRows`, given the client's plans)
and reads its rows strip by strip, as the single-machine streamed run does,
so its numbers are that run's.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..api.settings import ReadSettings
from ..io.pixels import to_pixels
from ..io.strips import RowReader, _Converted, open_rows
from .cluster import ClusterError
from .streamed import range_scan


@dataclass(frozen=True)
class Job:
    """What every task of a split run needs (small: the client's plans and settings, never pixels)."""

    kind: str  # "filter", "pool" or "upsample"
    source: str | None  # the absolute path the workers read, or None when the rows are sent
    read: ReadSettings
    divisor: float | None  # the client's --normalize max divisor (so workers skip that whole-image pass)
    size: tuple[int, int, int]  # height, width, channels of the source
    source_dtype: str  # what the client's reader gives
    unit: int  # rows the streamed run computes at a time
    fmt: str
    threads: int | None  # the client's engine threads when the numbers depend on them (FFT tiles, box strips)
    #: The streamed steps over a reader, from the client's plans (a picklable partial: build_steps, PooledRows...).
    steps: Callable[[RowReader], Any] | None = None
    scale: str = "clip"
    vmin: float | None = None
    vmax: float | None = None
    depth: int = 8


_THREADS_LOCK = threading.Lock()
_THREADS_USERS: list[Any] = [0, None]  # tasks using the pinned value, the value before


@contextlib.contextmanager
def pinned_threads(count: int | None) -> Iterator[None]:
    """Run with ``CONVCLI_THREADS=count`` (the client's), restored when the worker's last such task ends.

    ``None``: the worker's own setting (direct taps, separable passes, OpenCV and pooling give the same
    numbers on any number of threads).
    """
    if count is None:
        yield
        return
    with _THREADS_LOCK:
        if _THREADS_USERS[0] == 0:
            _THREADS_USERS[1] = os.environ.get("CONVCLI_THREADS")
        _THREADS_USERS[0] += 1
        os.environ["CONVCLI_THREADS"] = str(count)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS[0] -= 1
            if _THREADS_USERS[0] == 0:
                previous = _THREADS_USERS[1]
                if previous is None:
                    os.environ.pop("CONVCLI_THREADS", None)
                else:
                    os.environ["CONVCLI_THREADS"] = previous


class _SentRows(RowReader):
    """The rows a task was sent: runs ``(start, stop, rows)`` of the source; reads fall inside one run."""

    def __init__(self, size: tuple[int, int, int], dtype: str, runs: list[tuple[int, int, np.ndarray]]):
        self.height, self.width, self.channels = size
        self.dtype = np.dtype(dtype)
        self.detail = "rows sent by the client"
        self.kind = "image"
        self.runs = runs

    def read(self, start: int, stop: int) -> np.ndarray:
        for first, last, rows in self.runs:
            if first <= start and stop <= last:
                return rows[start - first : stop - first]
        raise AssertionError(f"rows {start}:{stop} were not sent")  # a bug in _needed_runs


def _sent_pixels(job: Job, runs: list[tuple[int, int, np.ndarray]]) -> RowReader:
    """The stored 8/16-bit pixels a task was sent, turned into floats as the client's reader turns them."""
    lookup = _SentRows(job.size, job.source_dtype, runs)
    first = runs[0][2]
    shape = (job.size[0], job.size[1], *first.shape[2:])
    read = job.read
    normalize = "dtype" if read.normalize == "max" else read.normalize
    reader = _Converted(lookup.read, shape, first.dtype, gray=read.gray, normalize=normalize, color=read.color)
    if read.normalize == "max":
        reader._divisor = job.divisor  # noqa: SLF001 - the client's whole-image pass
    return reader


def _worker_reader(job: Job, sent: tuple[str, list[tuple[int, int, np.ndarray]]] | None) -> RowReader:
    if sent is not None or job.source is None:
        kind, runs = sent if sent is not None else ("values", [])
        if kind == "pixels" and runs:
            return _sent_pixels(job, runs)
        return _SentRows(job.size, job.source_dtype, runs)
    read = job.read
    reader = open_rows(
        job.source,
        frame=read.frame,
        gray=read.gray,
        normalize="dtype" if read.normalize == "max" else read.normalize,
        color=read.color,
    )
    if read.normalize == "max":
        reader._divisor = job.divisor  # type: ignore[attr-defined]  # noqa: SLF001 - the client's whole-image pass
    if (reader.height, reader.width, reader.channels) != job.size:
        reader.close()
        raise ClusterError(
            f"a worker reads {job.source!r} as {reader.height}x{reader.width} but the client as "
            f"{job.size[0]}x{job.size[1]}; workers need the client's files (a shared file system)"
        )
    return reader


def run_task(
    job: Job, start: int, stop: int, sent: tuple[str, list[tuple[int, int, np.ndarray]]] | None, want: str
) -> Any:
    """On a worker: output rows ``[start, stop)`` strip by strip (``want='rows'``), or each strip's extremes."""
    with pinned_threads(job.threads):
        reader = _worker_reader(job, sent)
        try:
            assert job.steps is not None
            steps = job.steps(reader)
            if want == "range":  # what the single-machine range pass reads of these rows
                scan = range_scan(steps, job.scale)
                for first in range(start, stop, job.unit):
                    scan.add(steps.read(first, min(stop, first + job.unit)))
                return scan
            out: np.ndarray | None = None
            clipped = 0
            mapping = (0.0, 0.0)
            for first in range(start, stop, job.unit):
                last = min(stop, first + job.unit)
                block = steps.read(first, last)
                if job.fmt == "png":
                    values, done = to_pixels(block, scale=job.scale, vmin=job.vmin, vmax=job.vmax, depth=job.depth)
                    clipped += done.clipped
                    mapping = (done.low, done.high)
                else:
                    values = block
                if out is None:
                    dtype = np.float32 if job.fmt == "tiff" else values.dtype  # what the TIFF writer stores
                    out = np.empty((stop - start, *values.shape[1:]), dtype=dtype)
                out[first - start : last - start] = values
            return out, clipped, mapping
        finally:
            reader.close()


def source_seen(path: str, size: int, mtime: int) -> bool:
    """On a worker: whether it sees the client's file (same size and modification time)."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_size == size and stat.st_mtime_ns == mtime


__all__ = ["Job", "pinned_threads", "run_task", "source_seen"]
