"""The program keeps freed memory for its next allocations (glibc), so a batch does not fault its buffers in again.

Each case runs in a new Python process and counts its page faults (``ru_minflt``): a behaviour, not a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Four 0.9 MB blocks allocated, touched and freed, five times over, after one 1 MB block was mapped and freed (which
# moves glibc's own thresholds to 1 MB and 2 MB): by default the freed top of the heap (3.6 MB) is handed back to the
# system each time and faulted in again; kept, it is reused. Prints the page faults of the five rounds.
ROUNDS = """
import resource, sys
import numpy as np
if sys.argv[1] == "kept":
    from convcli.cli.process import keep_freed_memory
    assert keep_freed_memory()
def round_():
    blocks = [np.ones(900_000 // 8) for _ in range(4)]
    del blocks
first = np.ones(1_000_000 // 8)
del first
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    round_()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    if not _has_mallopt():
        pytest.skip("no glibc mallopt (musl?)")
    default, kept = faults("default"), faults("kept")
    assert default > 5 * 500  # the control: 3.6 MB faulted in again each round (about 880 pages)
    assert kept < 100, (default, kept)


def _has_mallopt() -> bool:
    import ctypes

    try:
        return hasattr(ctypes.CDLL(None), "mallopt")
    except OSError:
        return False
