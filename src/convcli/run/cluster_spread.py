"""How one image is spread over Dask workers (:mod:`convcli.run.cluster_split`): the tasks and their rows.

Everything the client decides before the first task: how many workers there
are, the output rows of each task (whole streamed strips, about
:data:`TASK_BYTES` each, at least :data:`TASKS_PER_WORKER` tasks per worker),
the source rows a task reads through every step of the chain (its strips,
their halos, the border rows of ``circular``; for an upsampling the input
rows whose kernels reach them), whether the workers read those rows from a
file they see or are sent them, and how many tasks may be in flight for the
client's memory to stay within its estimate.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..api.settings import WriteSettings
from ..io.strips import ArrayRows, NpyFileRows, RowReader, TiffRows
from ..limits import RUNTIME_BYTES, Estimate
from .cluster import CONNECT_TIMEOUT, ClusterError
from .cluster_tasks import source_seen
from .stream import FilteredRows, PooledRows
from .stream_upsample import UpsampledRows
from .streamed import _with_writer

#: Bytes of results one task aims at (a few streamed strips; enough work to hide Dask's ~3 ms per task).
TASK_BYTES = 16 << 20
#: Bytes of results a task may grow to so that it covers several bands of a TIFF's tiles.
MAX_TASK_BYTES = 48 << 20
#: Tasks per worker at least, so that workers that are slower or lost do not leave the others idle at the end.
TASKS_PER_WORKER = 4
#: Tasks in flight (submitted and not yet written) per worker: the client's memory is this many tasks' rows.
WINDOW_PER_WORKER = 2


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


def needed_runs(steps: Any, start: int, stop: int) -> list[tuple[int, int]]:
    """The source rows a task's output rows ``[start, stop)`` read, through every step of the chain."""
    runs = [(start, stop)]
    step = steps
    while needs := next((needs for kind, needs in _NEEDS if isinstance(step, kind)), None):
        runs = needs(step, runs)
        step = step.source
    return runs


def reads_itself(reader: RowReader) -> bool:
    """Whether workers can read this source by rows themselves (TIFF segments, a ``.npy`` by offset or mapped)."""
    return isinstance(reader, (TiffRows, NpyFileRows)) or (isinstance(reader, ArrayRows) and reader.held_bytes == 0)


def shared_path(client: Any, source: str, reader: RowReader) -> str | None:
    """The absolute path every worker reads, or ``None`` when the client must send the rows."""
    if not reads_itself(reader) or not os.path.isfile(source):
        return None
    path = os.path.abspath(source)
    stat = os.stat(path)
    seen = client.run(source_seen, path, stat.st_size, stat.st_mtime_ns)
    return path if seen and all(seen.values()) else None


def worker_count(client: Any, timeout: float = CONNECT_TIMEOUT) -> int:
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


def task_ranges(
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


@dataclass(frozen=True)
class Spread:
    """How a run is spread: the tasks' rows, the window, where rows come from, the client's estimate."""

    ranges: list[tuple[int, int]]
    window: int
    shared: str | None
    estimate: Estimate


def spread_tasks(
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
) -> tuple[Spread, int]:
    """The tasks of a split run of ``steps`` over ``reader``, and the number of workers.

    ``unit`` is the streamed strip height (a task is whole strips); ``task_rows`` and ``window`` as given,
    else chosen from the image, the workers and ``budget`` (fewer tasks in flight under a small one).
    """
    workers = worker_count(client)
    shared = shared_path(client, source, reader)
    item = (
        1 if fmt == "png" and write.depth == 8 else 2 if fmt == "png" else 4 if fmt == "tiff" else steps.dtype.itemsize
    )
    row_bytes = steps.width * steps.channels * item
    # A worker decodes whole bands of tiles (or strips): the bands under a task's halos are decoded twice.
    band = int(getattr(reader, "_band", 0)) if shared and isinstance(reader, TiffRows) else 0
    ranges = task_ranges(steps.height, unit, row_bytes, workers, task_rows, 4 * band)
    tallest = max(stop - start for start, stop in ranges)
    per_task = tallest * row_bytes
    if shared is None:  # the rows sent with a task, kept until it is submitted
        runs = needed_runs(steps, *ranges[0])
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
    return Spread(ranges, chosen, shared, estimate), workers


__all__ = ["Spread", "needed_runs", "reads_itself", "shared_path", "spread_tasks", "task_ranges", "worker_count"]
