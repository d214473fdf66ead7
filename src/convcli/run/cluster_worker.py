"""The set-up of the worker processes of a ``LocalCluster`` convcli starts (a Dask preload module).

Ctrl-C on a terminal reaches the whole foreground process group, the
workers included: they ignore it, as ``--jobs`` workers do, and the client
cancels the tasks, removes its temporary file and stops the cluster (which
ends the workers), so the run ends with one line, ``convcli: interrupted``.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    """Called by Dask in each worker process as it starts: ignore SIGINT (the client handles Ctrl-C), log nothing.

    Dask's own log lines (a heartbeat lost while the cluster stops) would land on convcli's stderr, which
    carries convcli's messages only; a task's failure comes back to the client as its exception.
    """
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    with contextlib.suppress(ValueError):  # not the main thread (a worker inside another program): as it is
        signal.signal(signal.SIGINT, signal.SIG_IGN)
