"""The one worker pool: threads over row strips, used by the engine, pool, transpose and the PNG writer.

NumPy and zlib release the GIL inside their loops, so strips of one image run
in parallel threads. The pool is created on first use, sized by
``CONVCLI_THREADS`` or the number of CPUs, and forgotten in a forked child
(whose copy of it has no threads). :class:`single_threaded_blas` pins NumPy's
OpenBLAS to one thread where strips already use every core.

Two counts: :func:`workers` is the one the numbers may depend on (how FFT tiles, box
strips and PNG parts are cut), the same in every process of a run; :func:`limit_pool`
caps the threads that execute the shares (a batch's worker processes each take their
share of the cores), which changes when work runs, never what it computes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported when the pool starts: concurrent.futures pulls in logging (start-up, small files)
    from concurrent.futures import ThreadPoolExecutor

_POOL: ThreadPoolExecutor | None = None
#: Threads that run shares at once in this process (None: :func:`workers`), set by :func:`limit_pool`.
_POOL_LIMIT: int | None = None
#: Set inside :func:`serial`: every share runs on the calling thread.
_SERIAL = False


def _forget_pool_after_fork() -> None:
    # A forked child inherits the pool object but not its threads: work submitted to it would wait
    # forever (a batch with --jobs forks workers from a parent that may have filtered already).
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def workers() -> int:
    """Threads used: ``CONVCLI_THREADS`` or the number of CPUs."""
    text = os.environ.get("CONVCLI_THREADS", "")
    if text.isdigit() and int(text) > 0:
        return int(text)
    return os.cpu_count() or 1


def pool_limit() -> int | None:
    """Shares run at once here: :func:`limit_pool`'s, else ``CONVCLI_POOL_THREADS`` (set on a cluster's workers
    that share a machine), else None (:func:`workers`)."""
    if _POOL_LIMIT is not None:
        return _POOL_LIMIT
    text = os.environ.get("CONVCLI_POOL_THREADS", "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def limit_pool(threads: int | None) -> None:
    """Run at most ``threads`` shares at once in this process (``None``: :func:`workers`).

    For processes that share the cores (``--jobs N`` workers): the tasks and their shares stay those of
    :func:`workers`, so results are the same bytes; only fewer of them run at the same time.
    """
    global _POOL, _POOL_LIMIT
    _POOL_LIMIT = None if threads is None else max(1, int(threads))
    _POOL = None  # sized again on next use (a pool already started keeps running its idle threads harmlessly)


@contextmanager
def serial() -> Iterator[None]:
    """Within this block :func:`run_parallel` runs every share on the calling thread (the same tasks, so the
    same numbers): the calibration times work on one thread by the process's CPU time."""
    global _SERIAL
    before, _SERIAL = _SERIAL, True
    try:
        yield
    finally:
        _SERIAL = before


def run_parallel(tasks: list, function: Callable, parallel: bool = True) -> None:
    """Run ``function(*task)`` for every task: one share per thread, the caller taking the first share."""
    global _POOL
    count = min(workers(), len(tasks))
    limit = pool_limit()
    threads = count if limit is None else min(count, limit)
    if not parallel or count < 2 or threads < 2 or _SERIAL:
        for task in tasks:
            function(*task)
        return
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        size = workers() if limit is None else min(workers(), limit)
        _POOL = ThreadPoolExecutor(max_workers=max(1, size - 1), thread_name_prefix="convcli")

    def share(index: int) -> None:
        for task in tasks[index::count]:
            function(*task)

    futures = [_POOL.submit(share, index) for index in range(1, count)]
    share(0)
    for future in futures:
        future.result()


_BLAS_CONTROL: tuple | None = None


def _blas_control() -> tuple | None:
    """(get, set) thread-count functions of the OpenBLAS that NumPy uses, or None when not found."""
    global _BLAS_CONTROL
    if _BLAS_CONTROL is None:
        import ctypes
        import glob

        found: tuple = ()
        folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
        for path in glob.glob(os.path.join(folder, "*openblas*")):
            try:
                library = ctypes.CDLL(path)
            except OSError:
                continue
            for suffix in (
                "scipy_openblas_{}_num_threads64_",
                "scipy_openblas_{}_num_threads",
                "openblas_{}_num_threads",
            ):
                getter, setter = suffix.format("get"), suffix.format("set")
                if hasattr(library, getter) and hasattr(library, setter):
                    found = (getattr(library, getter), getattr(library, setter))
                    break
            if found:
                break
        _BLAS_CONTROL = found
    return _BLAS_CONTROL or None


class single_threaded_blas:  # noqa: N801 (a context manager used like a function)
    """Pin NumPy's OpenBLAS to one thread inside the block (restored after); yields whether it could."""

    def __enter__(self) -> bool:
        control = _blas_control()
        self.previous = None
        if control is None:
            return False
        get, set_ = control
        self.previous = get()
        set_(1)
        return True

    def __exit__(self, *exc: object) -> None:
        control = _blas_control()
        if control is not None and self.previous is not None:
            control[1](self.previous)
