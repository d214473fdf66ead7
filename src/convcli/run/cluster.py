"""Batches on a Dask cluster: the same items and workers as :func:`convcli.run.batch.run_items`, run remotely.

``--scheduler tcp://host:8786`` connects to a running Dask scheduler;
``local`` or ``local:N`` starts a ``LocalCluster`` of N worker processes on
127.0.0.1 for the run and stops it at the end. Items are grouped into tasks
of many items (:func:`chunk_size`), because Dask spends a few milliseconds on
every task; the workers read their sources and write their outputs
themselves (atomically, as on one machine), and the outcomes come back in
input order, so the reports and files are those of ``--jobs 1``.

Workers must see the same files as the client: each task runs in the
client's working folder, which must exist on the worker (a shared file
system), and a check on every worker before any work refuses a run whose
output folders a worker cannot write. A worker that dies mid-task has its
task run again on another (Dask reschedules it); an item written twice is
written atomically both times, so no output is ever partial.

A run of one source is not sent to a worker: the client runs it, with the
cluster made current (:func:`current_cluster`), so that a streamed run
(forced by ``--stream`` or chosen by the memory budget) splits its row
strips across the workers (:mod:`convcli.run.cluster_split`), and a source
that fits in memory is filtered where it was decoded.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConvcliError, ParameterError
from .batch import Item, Outcome, _call

#: Seconds to reach a scheduler before giving up.
CONNECT_TIMEOUT = 10.0
#: Tasks per worker: enough to keep every worker busy to the end when items take unequal times.
TASKS_PER_WORKER = 8
_LOCAL = re.compile(r"^local(?::(\d+))?$")
_CURRENT: contextvars.ContextVar[Cluster | None] = contextvars.ContextVar("convcli_cluster", default=None)


class ClusterError(ConvcliError, OSError):
    """The cluster cannot be reached, or cannot see the files (exit 1)."""


@dataclass(frozen=True)
class Scheduler:
    """Where batches run: a ``LocalCluster`` of ``workers`` processes, or the scheduler at ``address``."""

    address: str | None
    workers: int = 0

    @property
    def local(self) -> bool:
        return self.address is None


def parse_scheduler(text: str) -> Scheduler:
    """``local``, ``local:N`` or a scheduler address (``tcp://host:8786``; ``host:8786`` means tcp).

    >>> parse_scheduler("local:2"), parse_scheduler("tcp://10.0.0.5:8786").address
    (Scheduler(address=None, workers=2), 'tcp://10.0.0.5:8786')
    """
    value = text.strip()
    match = _LOCAL.match(value)
    if match:
        workers = int(match.group(1)) if match.group(1) else (os.cpu_count() or 1)
        if not 1 <= workers <= 256:
            raise ParameterError(f"--scheduler {text!r}: local:N takes 1 to 256 workers")
        return Scheduler(None, workers)
    if re.match(r"^[a-z]+://", value) is None:
        value = f"tcp://{value}"
    if not re.match(r"^(tcp|tls|ucx|inproc|ws|wss)://[^\s/:]+(:\d{1,5})?/?$", value):
        raise ParameterError(
            f"--scheduler {text!r} is not a scheduler address; give tcp://HOST:PORT (Dask's default port is 8786), "
            "local or local:N"
        )
    return Scheduler(value)


def chunk_size(items: int, workers: int) -> int:
    """Items per task: about :data:`TASKS_PER_WORKER` tasks per worker.

    Dask spends 2-3 ms on a task; a large batch (where that would add up) gets large tasks (1,000 sources
    on 2 workers: 63 per task, 0.04 ms each), a small one enough tasks to keep both workers busy.

    >>> chunk_size(100_000, 2), chunk_size(1_000, 2), chunk_size(96, 2), chunk_size(3, 8)
    (6250, 63, 6, 1)
    """
    return max(1, -(-items // max(1, TASKS_PER_WORKER * workers)))


class Cluster:
    """A Dask client for one run (a context manager): a fresh ``LocalCluster`` on 127.0.0.1, or a connection.

    Raises
    ------
    ClusterError
        Dask is not installed, or the scheduler does not answer within ``timeout`` seconds.
    """

    def __init__(self, scheduler: Scheduler, timeout: float = CONNECT_TIMEOUT) -> None:
        self.scheduler = scheduler
        self.timeout = timeout
        self.client: Any = None
        self.cluster: Any = None

    def __enter__(self) -> Cluster:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ClusterError(
                "--scheduler needs Dask: pip install 'convcli[dask]' (or pip install dask distributed)"
            ) from None
        import logging

        for name in ("distributed", "distributed.worker", "distributed.nanny", "distributed.scheduler"):
            # Dask logs to stderr (a worker's lost heartbeat as the cluster stops, at ERROR); convcli reports its own lines
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            if self.scheduler.local:
                self.cluster = LocalCluster(
                    n_workers=self.scheduler.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,
                    # No dashboard; the scheduler's HTTP routes on a free port (8787 may be taken: no warning)
                    scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                    preload=["convcli.run.cluster_worker"],  # the workers leave Ctrl-C to the client
                    # The workers share this machine's cores: each runs its engine shares on its part of them
                    # (the cuts, and so the bytes, stay the client's thread count's: convcli.parallel).
                    env={"CONVCLI_POOL_THREADS": str(max(1, (os.cpu_count() or 1) // max(1, self.scheduler.workers)))},
                )
                self.client = Client(self.cluster, timeout=self.timeout)
            else:
                self.client = Client(self.scheduler.address, timeout=self.timeout)
        except (OSError, TimeoutError) as exc:
            self.__exit__(None, None, None)
            where = "a local cluster" if self.scheduler.local else f"the scheduler {self.scheduler.address}"
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterError(f"cannot reach {where} within {self.timeout:g} s ({reason[:160]})") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))


def current_cluster() -> Cluster | None:
    """The cluster a one-source run on the client may split its strips across (``None`` elsewhere)."""
    return _CURRENT.get()


@contextlib.contextmanager
def made_current(cluster: Cluster) -> Iterator[Cluster]:
    """Make ``cluster`` the :func:`current_cluster` inside the block."""
    token = _CURRENT.set(cluster)
    try:
        yield cluster
    finally:
        _CURRENT.reset(token)


def _check_worker(cwd: str, folders: Sequence[str]) -> str | None:
    """On a worker: the first problem with the client's folder or an output folder, or ``None``."""
    if not os.path.isdir(cwd):
        return f"the client's working folder {cwd!r} does not exist there"
    for folder in folders:
        path = os.path.join(cwd, folder)
        if not os.path.isdir(path):
            return f"the output folder {folder!r} does not exist there"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"the output folder {folder!r} is not writable there"
    return None


def check_workers(client: Any, items: Sequence[Item]) -> None:
    """Refuse, before any work, a run whose working or output folders a worker cannot use."""
    folders = sorted(
        {
            os.path.dirname(path) or "."
            for item in items
            for path in (*item.destinations, item.figure)
            if path and path != "-"
        }
    )
    problems = client.run(_check_worker, os.getcwd(), folders)
    for worker, problem in sorted(problems.items()):
        if problem is not None:
            raise ClusterError(
                f"worker {worker} cannot do this run: {problem}; workers need the client's files (a shared file system)"
            )


def _call_chunk(worker: Callable[[Item], Any], items: Sequence[Item], cwd: str, threads: int) -> list[Outcome]:
    """On a worker: run the items in the client's working folder (relative paths mean the same there).

    The engine runs on the client's thread count: FFT tiles and box strips are cut by it, and their
    last bits with them, so a worker with another number of cores writes the bytes ``--jobs 1`` writes.
    """
    from .cluster_tasks import pinned_threads

    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with pinned_threads(threads):
            return [_call(worker, item) for item in items]
    finally:
        os.chdir(previous)


def run_items_on_cluster(
    items: Sequence[Item],
    worker: Callable[[Item], Any],
    cluster: Cluster,
    *,
    fail_fast: bool = False,
    on_done: Callable[[int, int], None] | None = None,
    chunk: int | None = None,
) -> Iterator[Outcome]:
    """Run ``worker`` on every item on the cluster; yield the outcomes in input order (as ``run_items`` does).

    ``on_done(finished, failed)`` is called as chunks come back. On Ctrl-C the
    tasks not finished are cancelled and ``KeyboardInterrupt`` is raised again;
    the outputs written are complete (atomic writes).
    """
    from distributed import as_completed

    client = cluster.client
    if len(items) == 1:  # one source: run here, its strips split across the workers when it streams
        with made_current(cluster):
            outcome = _call(worker, items[0])
        if on_done:
            on_done(1, int(not outcome.ok))
        yield outcome
        return
    check_workers(client, items)
    size = chunk or chunk_size(len(items), cluster.workers())
    chunks = [list(items[start : start + size]) for start in range(0, len(items), size)]
    cwd = os.getcwd()
    from ..parallel import workers as engine_threads

    threads = engine_threads()
    futures = [client.submit(_call_chunk, worker, part, cwd, threads, pure=False) for part in chunks]
    position = {future.key: number for number, future in enumerate(futures)}
    ready: dict[int, list[Outcome]] = {}
    next_chunk = 0
    finished = failed = 0
    try:
        for future in as_completed(futures):
            outcomes = future.result()
            ready[position[future.key]] = outcomes
            finished += len(outcomes)
            failed += sum(not outcome.ok for outcome in outcomes)
            if on_done:
                on_done(finished, failed)
            while next_chunk in ready:
                for outcome in ready.pop(next_chunk):
                    yield outcome
                    if fail_fast and not outcome.ok:
                        client.cancel(futures)
                        return
                next_chunk += 1
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        del futures
        remove_stale_parts(items)


def remove_stale_parts(items: Sequence[Item]) -> int:
    """Remove the hidden ``.NAME.*.part`` files a killed worker left beside the run's outputs; returns how many.

    A worker killed while writing (SIGKILL, a lost machine) cannot remove its temporary file; Dask runs
    its task again elsewhere and that run writes the output whole, so the leftover is only litter.
    """
    import glob

    removed = 0
    for item in items:
        for path in (*item.destinations, item.figure):
            if not path or path == "-":
                continue
            folder, name = os.path.split(path)
            for stale in glob.glob(os.path.join(glob.escape(folder or "."), f".{glob.escape(name)}.*.part")):
                try:
                    os.unlink(stale)
                    removed += 1
                except OSError:
                    pass
    return removed
