"""One huge image split across Dask workers: row strips with their halos computed remotely, written here in order.

A streamed run (:mod:`convcli.run.stream`, :mod:`convcli.run.stream_upsample`)
computes the output in row strips, each reading the input rows its windows
need (filter, pool) or whose kernels reach them (upsample). Here the strips become Dask
tasks (a few strips each, aligned on the streamed run's strips): a worker
rebuilds the same chain of steps, with the **plans made on the client** (the
method, backend and geometry of the whole image, so the numbers are the
in-memory ones), computes its rows and sends them back; the client writes
them in order with the streamed run's row writers (PNG by rows, TIFF,
``.npy``), keeping at most ``window`` tasks in flight, so its memory is
bounded whatever the image's size.

Where a worker gets its input rows:

* **read by the worker**: a TIFF (tiled or striped) or a ``.npy`` that every
  worker sees at the same absolute path with the same size and modification
  time (a shared file system) is opened by each task, which decodes only the
  segments under its rows;
* **sent by the client**: anything else (PNG, JPEG and the formats decoded
  whole, or files the workers cannot see): the client keeps what the
  streamed run keeps (the stored pixels) and sends each task exactly the
  input rows its strips read, halos and far borders (``circular``) included:
  the stored 8- or 16-bit samples, which the worker turns into floats with
  the reader's own code (gray, normalisation), or the values of arrays.

Scale modes that need the result's range first (``minmax``, ``abs``,
``auto``) make a first pass on the workers too: each task returns the
extremes of each of its strips, and the client folds them in order as the
single-machine range pass does. Workers also map floats to pixels (the
mapping is per value), so they send 8- or 16-bit rows back for PNG.

A worker that dies has its tasks run again elsewhere (Dask reschedules them;
a task is a pure computation); Ctrl-C cancels the tasks and removes the
temporary output file.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..api.settings import FilterSettings, PoolSettings, ReadSettings, UpsampleSettings, WriteSettings
from ..errors import ConvcliError, ParameterError
from ..io.pixels import PixelMapping, RangeScan
from ..io.strips import TIFF_TILE, ArrayRows, NpyFileRows, RowReader, TiffRows, _Converted, check_tile, row_writer
from ..kernels import Kernel
from ..limits import RUNTIME_BYTES, Estimate, check_memory
from .cluster import CONNECT_TIMEOUT, ClusterError
from .cluster_tasks import Job, run_task, source_seen
from .stream import STRIP_BYTES, FilteredRows, PooledRows, StreamPlan, build_steps, plan_stream
from .stream_upsample import UpsampledRows, choose_upsample_rows, upsampled_rows
from .streamed import (
    Streamed,
    _resolved_scale,
    _with_writer,
    _working_dtype,
    check_free_space,
    needs_range,
    output_bytes,
    pool_dtype,
    pool_strip_rows,
    range_scan,
)

#: Bytes of results one task aims at (a few streamed strips; enough work to hide Dask's ~3 ms per task).
TASK_BYTES = 16 << 20
#: Bytes of results a task may grow to so that it covers several bands of a TIFF's tiles.
MAX_TASK_BYTES = 48 << 20
#: Tasks per worker at least, so that workers that are slower or lost do not leave the others idle at the end.
TASKS_PER_WORKER = 4
#: Tasks in flight (submitted and not yet written) per worker: the client's memory is this many tasks' rows.
WINDOW_PER_WORKER = 2


@dataclass(frozen=True)
class Split(Streamed):
    """What a split run did: a :class:`~convcli.run.streamed.Streamed` and how it was spread.

    Attributes
    ----------
    workers, tasks, window : int
        Dask workers at the start, tasks per pass, most tasks in flight.
    rows_from : str
        ``"workers"`` (each task read its rows from the shared file) or ``"client"`` (the rows were sent).
    """

    workers: int = 0
    tasks: int = 0
    window: int = 0
    rows_from: str = "workers"

    def note(self) -> str:
        where = "read by the workers" if self.rows_from == "workers" else "sent by the client"
        return f"split across {self.workers} Dask workers: {self.tasks} tasks, rows {where}"


# ---------------------------------------------------------------------------
# On the client


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Sorted unique rows as maximal runs ``[start, stop)``."""
    if rows.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(rows, cuts)]


def _filtered_needs(step: FilteredRows, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The source rows ``step.read`` of each run reads (the units it computes, their halos, the border rows)."""
    from ..engine.borders import border_map

    g = step.compute
    sh = step.geometry.stride[0]
    subsample = step.plan.full is not None
    top = g.padding[0][0]
    height = step.source.height
    parts = []
    for start, stop in runs:
        first, last = (start * sh, (stop - 1) * sh + 1) if subsample else (start, stop)
        for u0, u1 in step.units:
            if u1 <= first or u0 >= last:
                continue
            count = (u1 - u0 - 1) * g.stride[0] + g.dilation[0] * (g.kernel[0] - 1) + 1
            index = np.arange(u0 * g.stride[0] - top, u0 * g.stride[0] - top + count)
            mapped = border_map(index, height, step.mode)
            parts.append(mapped[mapped >= 0])
    return _runs(np.unique(np.concatenate(parts))) if parts else []


def _pooled_needs(step: PooledRows, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    g = step.geometry
    parts = []
    for start, stop in runs:
        first = start * g.stride[0] - g.padding[0]
        count = (stop - start - 1) * g.stride[0] + g.span[0]
        lo, hi = max(0, first), min(g.input[0], first + count)
        if hi > lo:
            parts.append(np.arange(lo, hi))
    return _runs(np.unique(np.concatenate(parts))) if parts else []


def _upsampled_needs(step: UpsampledRows, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The input rows whose kernels reach each run (none for rows only the bias reaches)."""
    parts = [np.arange(*step.input_rows(start, stop)) for start, stop in runs]
    return _runs(np.unique(np.concatenate(parts))) if parts else []


#: The source rows each kind of streamed step reads for runs of its output rows.
_NEEDS: tuple[tuple[type, Callable[[Any, list[tuple[int, int]]], list[tuple[int, int]]]], ...] = (
    (FilteredRows, _filtered_needs),
    (PooledRows, _pooled_needs),
    (UpsampledRows, _upsampled_needs),
)


def _needed_runs(steps: Any, start: int, stop: int) -> list[tuple[int, int]]:
    """The source rows a task's output rows ``[start, stop)`` read, through every step of the chain."""
    runs = [(start, stop)]
    step = steps
    while needs := next((needs for kind, needs in _NEEDS if isinstance(step, kind)), None):
        runs = needs(step, runs)
        step = step.source
    return runs


def _reads_itself(reader: RowReader) -> bool:
    """Whether workers can read this source by rows themselves (TIFF segments, a ``.npy`` by offset or mapped)."""
    return isinstance(reader, (TiffRows, NpyFileRows)) or (isinstance(reader, ArrayRows) and reader.held_bytes == 0)


def _shared_path(client: Any, source: str, reader: RowReader) -> str | None:
    """The absolute path every worker reads, or ``None`` when the client must send the rows."""
    if not _reads_itself(reader) or not os.path.isfile(source):
        return None
    path = os.path.abspath(source)
    stat = os.stat(path)
    seen = client.run(source_seen, path, stat.st_size, stat.st_mtime_ns)
    return path if seen and all(seen.values()) else None


def _workers(client: Any, timeout: float = CONNECT_TIMEOUT) -> int:
    """The number of workers, once there is one (a scheduler without workers is an error, not a wait forever)."""
    count = len(client.scheduler_info().get("workers", {}))
    if count:
        return count
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ClusterError(
            f"the scheduler has no workers (none joined within {timeout:g} s); start some with dask worker ADDRESS"
        ) from None
    return max(1, len(client.scheduler_info().get("workers", {})))


def _task_ranges(
    height: int, unit: int, row_bytes: int, workers: int, task_rows: int | None, least: int = 0
) -> list[tuple[int, int]]:
    """Output rows per task: whole streamed strips, about :data:`TASK_BYTES`, at least 4 tasks per worker.

    ``least``: rows a task should have at least (4 bands of a TIFF's tiles: a task decodes the bands under
    its halos again), within :data:`MAX_TASK_BYTES` and the 4 tasks per worker.
    """
    units = -(-height // unit)
    if task_rows is None:
        balanced = -(-units // (TASKS_PER_WORKER * workers))
        per_task = max(1, min(TASK_BYTES // max(1, unit * row_bytes), balanced))
        wanted = min(least, MAX_TASK_BYTES // max(1, row_bytes), balanced * unit)
        task_rows = max(per_task * unit, wanted)
    task_rows = max(unit, -(-task_rows // unit) * unit)
    return [(start, min(height, start + task_rows)) for start in range(0, height, task_rows)]


def _submit_in_order(
    client: Any,
    job: Job,
    ranges: Sequence[tuple[int, int]],
    want: str,
    sent_rows: Callable[[int, int], Any] | None,
    window: int,
    on_result: Callable[[int, Any], None],
) -> None:
    """Run a task per range with at most ``window`` in flight; ``on_result(index, value)`` in input order."""
    import dask
    from distributed import as_completed

    futures: dict[str, Any] = {}
    index: dict[str, int] = {}
    ready: dict[int, Any] = {}
    waiting = as_completed()
    submitted = written = 0

    def submit() -> None:
        nonlocal submitted
        start, stop = ranges[submitted]
        sent = sent_rows(start, stop) if sent_rows is not None else None
        future = client.submit(run_task, job, start, stop, sent, want, pure=False)
        futures[future.key] = future
        index[future.key] = submitted
        waiting.add(future)
        submitted += 1

    # The rows sent with a task travel in its spec (kept by the scheduler, so a lost worker's task runs again).
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GiB"}):
        try:
            while submitted < min(window, len(ranges)):
                submit()
            for future in waiting:
                try:
                    value = future.result()
                except ConvcliError:
                    raise
                except Exception as exc:
                    error = _cluster_error(exc)
                    if error is None:
                        raise
                    raise error from None
                ready[index.pop(future.key)] = value
                del futures[future.key]
                while written in ready:
                    on_result(written, ready.pop(written))
                    written += 1
                    if submitted < len(ranges):
                        submit()
        except BaseException:
            client.cancel(list(futures.values()))
            raise


def _cluster_error(exc: Exception) -> ConvcliError | None:
    """A task's failure as one line (its worker died too often, a file error there), or ``None`` for a bug."""
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return ClusterError("the workers running a strip of the image died again and again; the run stops")
    if isinstance(exc, (OSError, MemoryError)):
        return ClusterError(f"a worker failed: {type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}")
    return None


@dataclass(frozen=True)
class _Spread:
    """How a run is spread: the tasks' rows, the window, where rows come from, the client's estimate."""

    ranges: list[tuple[int, int]]
    window: int
    shared: str | None
    estimate: Estimate


def _spread(
    client: Any,
    source: str,
    reader: RowReader,
    steps: Any,
    unit: int,
    fmt: str,
    write: WriteSettings,
    budget: int | None,
    task_rows: int | None,
    window: int | None,
    tile: int | None,
) -> tuple[_Spread, int]:
    workers = _workers(client)
    shared = _shared_path(client, source, reader)
    item = (
        1 if fmt == "png" and write.depth == 8 else 2 if fmt == "png" else 4 if fmt == "tiff" else steps.dtype.itemsize
    )
    row_bytes = steps.width * steps.channels * item
    # A worker decodes whole bands of tiles (or strips): the bands under a task's halos are decoded twice.
    band = int(getattr(reader, "_band", 0)) if shared and isinstance(reader, TiffRows) else 0
    ranges = _task_ranges(steps.height, unit, row_bytes, workers, task_rows, 4 * band)
    tallest = max(stop - start for start, stop in ranges)
    per_task = tallest * row_bytes
    if shared is None:  # the rows sent with a task, kept until it is submitted
        runs = _needed_runs(steps, *ranges[0])
        per_task += sum(b - a for a, b in runs) * reader.width * reader.channels * reader.dtype.itemsize
    parts = {"runtime": RUNTIME_BYTES, "reader": 0 if shared else reader.held_bytes}
    parts["writing"] = unit * row_bytes + (1 << 20)
    chosen = window or WINDOW_PER_WORKER * workers
    if budget is not None and window is None:  # fewer tasks in flight under a small budget (one at least)
        chosen = max(1, min(chosen, (budget - sum(parts.values())) // max(1, per_task)))
    parts["tasks in flight"] = chosen * per_task
    # A Zarr output's band of chunk rows, as on one machine (the other writers hold what "writing" counts).
    estimate = _with_writer(
        Estimate("this split run's client", parts), fmt, (steps.height, steps.width), steps.channels, steps.dtype, tile
    )
    return _Spread(ranges, chosen, shared, estimate), workers


def _split_rows(
    client: Any,
    job: Job,
    spread: _Spread,
    steps: Any,
    reader: RowReader,
    destination: str,
    write: WriteSettings,
    on_rows: Callable[[int, int], None] | None,
    tile: int | None = None,
) -> tuple[tuple[int, ...], PixelMapping | None, int]:
    """The passes of :func:`convcli.run.streamed.stream_rows`, with the strips computed on the workers."""
    height, width, channels = steps.height, steps.width, steps.channels
    shape: tuple[int, ...] = (height, width) + ((channels,) if channels > 1 else ())
    pixels = job.fmt == "png"
    if pixels and write.depth not in (8, 16):
        raise ParameterError(f"depth {write.depth} is not 8 or 16")
    tile = check_tile(tile)
    check_free_space(destination, output_bytes(shape, job.fmt, write.depth, steps.dtype.itemsize, tile))
    passes = 2 if pixels and needs_range(write) else 1
    total = passes * height
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        if on_rows is not None:
            on_rows(done[0], total)

    sent_rows = None
    if spread.shared is None:

        def sent_rows(start: int, stop: int) -> tuple[str, list[tuple[int, int, np.ndarray]]]:
            runs = _needed_runs(steps, start, stop)
            if isinstance(reader, _Converted):  # the stored pixels (1 or 2 bytes a sample), not 4-byte floats
                return "pixels", [(a, b, np.array(reader._pixels(a, b))) for a, b in runs]  # noqa: SLF001
            return "values", [(a, b, np.array(reader.read(a, b))) for a, b in runs]

    data = None
    if passes == 2:
        data = range_scan(steps, write.scale)

        def ranged(number: int, value: RangeScan) -> None:
            data.merge(value)
            advance(spread.ranges[number][1] - spread.ranges[number][0])

        _submit_in_order(
            client, replace(job, scale=write.scale), spread.ranges, "range", sent_rows, spread.window, ranged
        )
    scale, vmin, vmax = _resolved_scale(write, data)
    job = replace(job, scale=scale, vmin=vmin, vmax=vmax, depth=write.depth)
    seen = {"clipped": 0, "low": 0.0, "high": 0.0}

    def written(_number: int, value: Any) -> None:
        rows, clipped, (low, high) = value
        writer.write(rows)
        seen["clipped"] += clipped
        seen["low"], seen["high"] = low, high
        advance(rows.shape[0])

    writer = row_writer(
        destination, job.fmt, shape, depth=write.depth, compression=write.compression, dtype=steps.dtype, tile=tile
    )
    try:
        _submit_in_order(client, job, spread.ranges, "rows", sent_rows, spread.window, written)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    mapping = PixelMapping(seen["low"], seen["high"], int(seen["clipped"]), scale) if pixels else None
    return shape, mapping, passes


def _job(
    kind: str,
    source: str | None,
    read: ReadSettings,
    reader: RowReader,
    unit: int,
    fmt: str,
    steps: Callable[[RowReader], Any],
    plan: StreamPlan | None = None,
) -> Job:
    from ..parallel import workers

    divisor = getattr(reader, "_divisor", None) if read.normalize == "max" else None
    size = (reader.height, reader.width, reader.channels)
    # FFT tiles and running-sum strips are cut by the engine's thread count: the workers then use the client's.
    pinned = plan is not None and any(p.backend == "numpy" and p.method in ("fft", "box") for p in plan.plans)
    threads = workers() if pinned else None
    return Job(kind, source, read, divisor, size, str(reader.dtype), unit, fmt, threads, steps)


#: What the memory check calls each kind of split run.
_WHAT = {"filter": "this split run", "pool": "this split pooling", "upsample": "this split upsampling"}


def _split(
    client: Any,
    kind: str,
    reader: RowReader,
    source: str,
    read: ReadSettings,
    build: Callable[[RowReader], Any],
    unit: int,
    destination: str,
    fmt: str,
    write: WriteSettings,
    *,
    plan: StreamPlan | None,
    budget: int | None,
    on_rows: Callable[[int, int], None] | None,
    task_rows: int | None,
    window: int | None,
    tile: int | None,
) -> Split:
    """What every split run does once its steps are planned: spread the tasks, check the client's memory, run.

    ``build(reader)`` makes the streamed steps over a reader of the source (here over the client's, on each
    worker over the task's); ``unit`` is the streamed run's strip height.
    """
    steps = build(reader)
    spread, workers = _spread(client, source, reader, steps, unit, fmt, write, budget, task_rows, window, tile)
    check_memory(replace(spread.estimate, what=f"{_WHAT[kind]}, even streamed,"), budget)
    job = _job(kind, spread.shared, read, reader, unit, fmt, build, plan)
    shape, mapping, passes = _split_rows(client, job, spread, steps, reader, destination, write, on_rows, tile)
    return Split(
        destination,
        fmt,
        shape,
        mapping,
        unit,
        passes,
        spread.estimate,
        reader.detail,
        reader.kind,
        (reader.height, reader.width),
        plan,
        workers=workers,
        tasks=len(spread.ranges),
        window=spread.window,
        rows_from="workers" if spread.shared else "client",
    )


def split_filter(
    client: Any,
    reader: RowReader,
    source: str,
    read: ReadSettings,
    destination: str,
    fmt: str,
    kernels: Sequence[Kernel],
    settings: FilterSettings,
    write: WriteSettings,
    *,
    strip_rows: int | None = None,
    budget: int | None = None,
    on_rows: Callable[[int, int], None] | None = None,
    task_rows: int | None = None,
    window: int | None = None,
    tile: int | None = TIFF_TILE,
) -> Split:
    """:func:`convcli.run.streamed.stream_filter` with the strips computed on the Dask ``client``'s workers.

    ``reader`` is the client's reader of ``source`` (opened with ``read``); the
    workers open ``source`` themselves when they see it and it reads by rows,
    else the client sends each task its rows. ``task_rows`` (output rows per
    task, rounded up to whole strips) and ``window`` (tasks in flight) default
    from the image and the number of workers. The file is byte for byte the
    single-machine streamed one.
    """
    dtype = _working_dtype(reader, settings.precision)
    size = (reader.height, reader.width)
    plan = plan_stream(
        size, reader.channels, dtype, kernels, settings, strip_rows=strip_rows, budget=budget, held=reader.held_bytes
    )
    build = functools.partial(build_steps, plan=plan, settings=settings)
    return _split(
        client,
        "filter",
        reader,
        source,
        read,
        build,
        plan.unit_rows,
        destination,
        fmt,
        write,
        plan=plan,
        budget=budget,
        on_rows=on_rows,
        task_rows=task_rows,
        window=window,
        tile=tile,
    )


def split_pool(
    client: Any,
    reader: RowReader,
    source: str,
    read: ReadSettings,
    destination: str,
    fmt: str,
    settings: PoolSettings,
    write: WriteSettings,
    *,
    strip_rows: int | None = None,
    budget: int | None = None,
    on_rows: Callable[[int, int], None] | None = None,
    task_rows: int | None = None,
    window: int | None = None,
    tile: int | None = TIFF_TILE,
) -> Split:
    """:func:`convcli.run.streamed.stream_pool` with the strips computed on the Dask ``client``'s workers."""
    build = functools.partial(PooledRows, settings=settings, dtype=pool_dtype(reader))
    if strip_rows is None:
        strip_rows = pool_strip_rows(reader, build(reader), budget)
    return _split(
        client,
        "pool",
        reader,
        source,
        read,
        build,
        strip_rows,
        destination,
        fmt,
        write,
        plan=None,
        budget=budget,
        on_rows=on_rows,
        task_rows=task_rows,
        window=window,
        tile=tile,
    )


def split_upsample(
    client: Any,
    reader: RowReader,
    source: str,
    read: ReadSettings,
    destination: str,
    fmt: str,
    kernel: Kernel,
    settings: UpsampleSettings,
    write: WriteSettings,
    *,
    strip_rows: int | None = None,
    budget: int | None = None,
    on_rows: Callable[[int, int], None] | None = None,
    task_rows: int | None = None,
    window: int | None = None,
    tile: int | None = TIFF_TILE,
) -> Split:
    """:func:`convcli.run.stream_upsample.stream_upsample` with the strips computed on the Dask ``client``'s workers.

    ``kernel`` is resolved for the stride (:func:`convcli.api.arrays.upsampling_kernel`). A task's output
    rows ``[a, b)`` read the input rows ``ceil((a + p - d(k - 1)) / s)`` to ``floor((b - 1 + p) / s)``
    (about ``1/s`` of its rows): read by the workers from a shared TIFF or ``.npy``, else sent by the
    client. The file is byte for byte the single-machine streamed one.
    """
    build = upsampled_rows(reader, kernel, settings)
    if strip_rows is None:
        strip_rows = choose_upsample_rows(build(reader), reader.held_bytes, budget, STRIP_BYTES)
    return _split(
        client,
        "upsample",
        reader,
        source,
        read,
        build,
        strip_rows,
        destination,
        fmt,
        write,
        plan=None,
        budget=budget,
        on_rows=on_rows,
        task_rows=task_rows,
        window=window,
        tile=tile,
    )


@contextlib.contextmanager
def connected(scheduler: Any) -> Iterator[Any]:
    """A Dask client for ``scheduler``: an address or ``local[:N]`` (a cluster for the block), or a client as is."""
    from .cluster import Cluster, parse_scheduler

    if isinstance(scheduler, str):
        with Cluster(parse_scheduler(scheduler)) as cluster:
            yield cluster.client
    elif isinstance(scheduler, Cluster):
        yield scheduler.client
    else:
        yield scheduler


__all__ = ["Split", "connected", "split_filter", "split_pool", "split_upsample"]
