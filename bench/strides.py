"""Issue 19 target 6: each method's stride-s time against its operation-count floor relative to stride 1.

    python bench/strides.py                        # 2048x2048 float32, k = 3, 7, 15, 31, strides 2 and 4
    python bench/strides.py --size 1024 --ks 3,15 --runs 5

Every method is forced (``method=...``) so each row compares the same algorithm at stride 1 and at
stride s (``padding=k//2``). The floor is the share of stride 1's operations a stride-s call cannot
avoid, counted per method:

* ``direct`` (NumPy taps; also OpenCV's filter2D on polyphase components): every tap of every kept
  output, ``1/s^2``.
* ``separable``: the pass down runs over every column for the kept rows, the pass across over the
  kept outputs; half the work each at stride 1: ``1/(2s) + 1/(2s^2)``.
* ``box``: running sums down every row and column (a running sum cannot skip rows), across the
  kept rows: ``1/2 + 1/(2s)``.
* ``fft``: the polyphase components together are the whole input, transformed once; the inverse
  transforms only the kept outputs: ``1/2 + 1/(2s^2)``.

Target: measured ratio <= 1.3 x floor. Interleaved rounds, one warm-up, median of --runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from run import load  # noqa: E402

from convcli.engine import correlate2d, opencv_available  # noqa: E402


def kernel_of(kind: str, k: int) -> np.ndarray:
    if kind == "gaussian":
        sigma = max(0.5, k / 6)
        line = np.exp(-0.5 * ((np.arange(k) - k // 2) / sigma) ** 2)
        return np.outer(line, line) / line.sum() ** 2
    if kind == "box":
        return np.full((k, k), 1.0 / (k * k))
    return np.random.default_rng(k).standard_normal((k, k))


FLOORS = {
    "direct": lambda s: 1 / s**2,
    "separable": lambda s: 1 / (2 * s) + 1 / (2 * s**2),
    "box": lambda s: 1 / 2 + 1 / (2 * s),
    "fft": lambda s: 1 / 2 + 1 / (2 * s**2),
}
#: (method, backend, kernel kind) rows; direct tap by tap is run up to 7x7 (beyond, BLAS or the FFT take over).
ROWS = [
    ("direct", "numpy", "random"),
    ("separable", "numpy", "gaussian"),
    ("box", "numpy", "box"),
    ("fft", "numpy", "random"),
    ("direct", "opencv", "random"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ks", default="3,7,15,31")
    parser.add_argument("--strides", default="2,4")
    args = parser.parse_args()
    image = np.random.default_rng(0).random((args.size, args.size), dtype=np.float32)
    strides = [1] + [int(s) for s in args.strides.split(",")]
    rows = [row for row in ROWS if row[1] == "numpy" or opencv_available()]
    cases = [
        (method, backend, kind, int(k))
        for method, backend, kind in rows
        for k in args.ks.split(",")
        if not (method == "direct" and int(k) > 15)
    ]
    times: dict[tuple, list[float]] = {(*case, s): [] for case in cases for s in strides}
    print(f"load before: {load()}; {args.size}x{args.size} float32, padding k//2, median of {args.runs}\n")
    for round_ in range(args.runs + 1):
        for key in times:
            method, backend, kind, k, s = key
            kernel = kernel_of(kind, k)
            start = time.perf_counter()
            correlate2d(image, kernel, stride=s, padding=k // 2, method=method, backend=backend)
            if round_:
                times[key].append(time.perf_counter() - start)
    head = " | ".join(f"s{s} ms | s{s}/s1 (floor) | / floor" for s in strides[1:])
    print(f"| method | backend | k | s1 ms | {head} |")
    print("|---|---|---|---|" + "---|---|---|" * (len(strides) - 1))
    worst = 0.0
    for case in cases:
        method, backend, kind, k = case
        med = {s: statistics.median(times[(*case, s)]) * 1e3 for s in strides}
        cells = []
        for s in strides[1:]:
            ratio, floor = med[s] / med[1], FLOORS[method](s)
            worst = max(worst, ratio / floor)
            flag = "" if ratio <= 1.3 * floor else " **over**"
            cells.append(f"{med[s]:.3g} | {ratio:.2f} ({floor:.2f}) | {ratio / floor:.2f}{flag}")
        print(f"| {method} | {backend} | {k} | {med[1]:.3g} | {' | '.join(cells)} |", flush=True)
    print(f"\nworst measured / floor: {worst:.2f} (target <= 1.3); load after: {load()}")


if __name__ == "__main__":
    main()
