"""The ``convcli`` program's own process: settings made once, first thing, by :func:`convcli.cli.run`.

Only the program makes them (its ``--jobs`` workers inherit them); ``import convcli`` in a
notebook or a script changes nothing in that process. Both keep a run's time out of the
system: NumPy's BLAS workers spinning at start-up, and memory handed back and faulted in
again between images (docs/performance.md, "NumPy's BLAS workers").
"""

from __future__ import annotations

import os
import sys

#: What ``OPENBLAS_THREAD_TIMEOUT`` is set to for the program when the environment does not say: OpenBLAS's workers
#: wait 2**4 cycles for work before they sleep, instead of its default 2**28 (about 0.1 s at 2.5 GHz).
BLAS_THREAD_TIMEOUT = "4"


def quiet_blas_threads() -> None:
    """Let NumPy's OpenBLAS workers sleep at once (``OPENBLAS_THREAD_TIMEOUT``), unless the environment sets it.

    OpenBLAS starts a worker per core as NumPy loads, and each spins for about 2**28 cycles looking for work
    before it sleeps: in a one-shot run that is 60-70 ms of CPU taken at start-up (``import numpy``: 81 ms of
    user time with the workers asleep, 147-152 without, on a 2-core AMD EPYC), a core the job's own threads
    and the other processes of a ``--jobs`` run then lack. convcli's BLAS products run one thread per strip
    (:class:`convcli.parallel.single_threaded_blas`), so the workers are rarely asked for anything; when they
    are, waking them costs microseconds. Only the program does this, before NumPy is imported (its worker
    processes inherit it); ``import convcli`` in a notebook changes nothing.
    """
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_THREAD_TIMEOUT)


#: glibc's ``mallopt`` parameters (``malloc.h``), and what :func:`keep_freed_memory` sets them to.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: Freed memory at the top of the heap kept for the process's next allocations, up to this much (a run's peak
#: memory grows by at most this; 128 MiB measured the same faults and times on the batch below).
KEPT_FREED_BYTES = 32 << 20
#: Blocks at least this large are mapped and unmapped on their own (glibc's largest threshold), as before.
OWN_MAPPING_BYTES = 32 << 20


def keep_freed_memory() -> bool:
    """Keep freed memory for the process's next allocations instead of handing it back to the system (glibc).

    glibc hands the top of its heap back to the system once more than a threshold of it is free (its
    default moves with the sizes it has seen), and the next image's buffers are then faulted in again,
    page by page. Whether that happens depends on the order the blocks were freed in, so the same
    batch of 200 640x480 PNGs (``--jobs 1``) took 10,400 page faults and 4.6 s in some runs, 399,000 and
    5.9 s in others (on a virtual machine where a fault costs about 4 us). With the thresholds fixed,
    up to :data:`KEPT_FREED_BYTES` of freed memory is reused; blocks of :data:`OWN_MAPPING_BYTES` and more
    (a large image's arrays) are still mapped and unmapped on their own, so they return to the system as
    soon as they are freed. The same batch then takes 8,600-8,800 faults every time, 5.6 -> 5.0 s
    (``--jobs 2``: 104,000 -> 9,700 faults in the workers). The program only (``--jobs`` workers inherit
    it); False where there is no glibc ``mallopt`` or it refused a value.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt: not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, OWN_MAPPING_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_FREED_BYTES))
