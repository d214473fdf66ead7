"""The front door of ``filter_file``, ``pool_file`` and ``upsample_file``: one file streamed into another.

:func:`run_file` is what the three public functions do once their settings
are checked: the destination's format checked, the source opened by rows,
then the streamed run, here or, given a ``scheduler``, split across Dask
workers (:func:`convcli.run.cluster_split.split_or_stream` picks which).
Dask itself is imported only when a scheduler is given
(:func:`connected`, by way of :mod:`convcli.run.cluster`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..api.settings import ReadSettings, WriteSettings
from ..io.strips import RowReader, open_rows
from .cluster_split import split_or_stream

if TYPE_CHECKING:
    from .streamed import Streamed


def _reader(source: str, read: ReadSettings) -> RowReader:
    from ..api.files import load_settings

    return open_rows(
        source,
        frame=read.frame,
        gray=read.gray,
        normalize=read.normalize,
        color=read.color,
        max_pixels=read.max_pixels,
        load_whole=lambda: load_settings(source, read),
    )


def _destination(destination: str, format: str | None) -> str:  # noqa: A002 - the option's name
    from ..io import check_output_path, output_format

    fmt = output_format(destination, format)
    check_output_path(destination)
    return fmt


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


def run_file(
    stream: Callable[..., Streamed],
    operands: Callable[[], tuple[Any, ...]],
    source: str,
    destination: str,
    write: WriteSettings,
    read: ReadSettings,
    *,
    max_memory: int | None,
    scheduler: Any,
    **limits: Any,
) -> Streamed:
    """What ``filter_file``, ``pool_file`` and ``upsample_file`` do with their checked settings: the destination's
    format checked, the source opened by rows, then ``stream`` (or on ``scheduler``'s workers) on ``operands()``."""
    fmt = _destination(destination, write.format)
    connection = contextlib.nullcontext() if scheduler is None else connected(scheduler)
    with _reader(source, read) as reader, connection as client:
        run = split_or_stream(stream, client, source, read)
        return run(reader, destination, fmt, *operands(), write, budget=max_memory, **limits)


__all__ = ["connected", "run_file"]
