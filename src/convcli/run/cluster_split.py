"""One huge image split across Dask workers: row strips with their halos computed remotely, written here in order.

A streamed run (:mod:`convcli.run.stream`, :mod:`convcli.run.stream_upsample`)
computes the output in row strips, each reading the input rows its windows
need (filter, pool) or whose kernels reach it (upsample). Here the strips
become Dask tasks (a few strips each, aligned on the streamed run's strips):
a worker rebuilds the same chain of steps, with the **plans made on the
client** (the method, backend and geometry of the whole image, so the
numbers are the in-memory ones), computes its rows and sends them back; the
client writes them in order with the streamed run's row writers (PNG by
rows, TIFF, ``.npy``, Zarr), keeping at most ``window`` tasks in flight, so its memory is
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

How the image is cut into tasks, and which rows each reads, is
:mod:`convcli.run.cluster_spread`; what a task does on its worker is
:mod:`convcli.run.cluster_tasks`. :func:`split_or_stream` picks the split
run or the single-machine streamed one (the command line and the ``*_file``
functions both go through it; :func:`convcli.run.front.run_file` is what those
functions share).

A worker that dies has its tasks run again elsewhere (Dask reschedules them;
a task is a pure computation); Ctrl-C cancels the tasks and removes the
temporary output file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..api.settings import FilterSettings, PoolSettings, ReadSettings, UpsampleSettings, WriteSettings
from ..errors import ConvcliError, ParameterError
from ..io.pixels import PixelMapping, RangeScan
from ..io.strips import TIFF_TILE, RowReader, _Converted, check_tile, row_writer
from ..kernels import Kernel
from ..limits import check_memory
from .cluster import ClusterError
from .cluster_spread import Spread, needed_runs, spread_tasks
from .cluster_tasks import Job, run_task
from .stream import STRIP_BYTES, PooledRows, StreamPlan, build_steps
from .stream_upsample import choose_upsample_rows, stream_upsample, upsampled_rows
from .streamed import (
    Streamed,
    _resolved_scale,
    check_free_space,
    filter_plan,
    needs_range,
    output_bytes,
    pool_dtype,
    pool_strip_rows,
    range_scan,
    stream_filter,
    stream_pool,
)


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


def _split_rows(
    client: Any,
    job: Job,
    spread: Spread,
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
            runs = needed_runs(steps, start, stop)
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
    destination: str,
    fmt: str,
    write: WriteSettings,
    build: Callable[[RowReader], Any],
    unit: int,
    plan: StreamPlan | None,
    *,
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
    spread, workers = spread_tasks(client, source, reader, steps, unit, fmt, write, budget, task_rows, window, tile)
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
    plan = filter_plan(reader, kernels, settings, strip_rows, budget)
    build = functools.partial(build_steps, plan=plan, settings=settings)
    run = functools.partial(_split, client, "filter", reader, source, read, destination, fmt, write)
    return run(
        build, plan.unit_rows, plan, budget=budget, on_rows=on_rows, task_rows=task_rows, window=window, tile=tile
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
    run = functools.partial(_split, client, "pool", reader, source, read, destination, fmt, write)
    return run(build, strip_rows, None, budget=budget, on_rows=on_rows, task_rows=task_rows, window=window, tile=tile)


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

    ``kernel`` is resolved for the stride (:func:`convcli.api.upsampling.upsampling_kernel`). A task's output
    rows ``[a, b)`` read the input rows ``ceil((a + p - d(k - 1)) / s)`` to ``floor((b - 1 + p) / s)``
    (about ``1/s`` of its rows): read by the workers from a shared TIFF or ``.npy``, else sent by the
    client. The file is byte for byte the single-machine streamed one.
    """
    build = upsampled_rows(reader, kernel, settings)
    if strip_rows is None:
        strip_rows = choose_upsample_rows(build(reader), reader.held_bytes, budget, STRIP_BYTES)
    run = functools.partial(_split, client, "upsample", reader, source, read, destination, fmt, write)
    return run(build, strip_rows, None, budget=budget, on_rows=on_rows, task_rows=task_rows, window=window, tile=tile)


#: The split run of each streamed one.
_SPLIT_OF: dict[Callable[..., Streamed], Callable[..., Split]] = {
    stream_filter: split_filter,
    stream_pool: split_pool,
    stream_upsample: split_upsample,
}


def split_or_stream(
    stream: Callable[..., Streamed], client: Any, source: str, read: ReadSettings
) -> Callable[..., Streamed]:
    """``stream`` (:func:`~convcli.run.streamed.stream_filter`, ``stream_pool``, ``stream_upsample``) or, given a
    Dask ``client``, its split run on the workers (the same bytes), called as ``stream`` is.

    The split run is bound to the ``client``, the ``source`` and how to ``read`` it (the workers open it
    themselves when they can): either is called ``(reader, destination, fmt, *operands, write, **limits)``.
    """
    if client is None:
        return stream
    split = _SPLIT_OF[stream]

    def run(reader: RowReader, destination: str, fmt: str, *operands: Any, **limits: Any) -> Streamed:
        return split(client, reader, source, read, destination, fmt, *operands, **limits)

    return run


__all__ = ["Split", "split_filter", "split_or_stream", "split_pool", "split_upsample"]
