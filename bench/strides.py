"""Target 3 quick check: stride 2 and 4 against stride 1 at 2048x2048 float32, padding k//2, one path per process.

    python bench/strides.py                      # the OpenCV path (when installed)
    CONVCLI_NO_OPENCV=1 python bench/strides.py  # the NumPy path

Interleaved rounds, one warm-up, median of --runs; ratios are within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")

import numpy as np  # noqa: E402

from convcli.engine import correlate2d, plan_correlation  # noqa: E402


def kernel_of(kind: str, k: int) -> np.ndarray:
    if kind == "gaussian":
        sigma = max(0.5, k / 6)
        line = np.exp(-0.5 * ((np.arange(k) - k // 2) / sigma) ** 2)
        return np.outer(line, line) / line.sum() ** 2
    return np.random.default_rng(k).standard_normal((k, k))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="3,7,15,31")
    args = parser.parse_args()
    image = np.random.default_rng(0).random((args.size, args.size), dtype=np.float32)
    path = "numpy" if os.environ.get("CONVCLI_NO_OPENCV", "") not in ("", "0") else "opencv"
    cases = [(kind, int(k)) for k in args.sizes.split(",") for kind in ("gaussian", "random")]
    jobs = {(kind, k, s): None for kind, k in cases for s in (1, 2, 4)}
    times: dict = {key: [] for key in jobs}
    for round_ in range(args.runs + 1):
        for kind, k, s in jobs:
            kernel = kernel_of(kind, k)
            start = time.perf_counter()
            correlate2d(image, kernel, stride=s, padding=k // 2)
            elapsed = time.perf_counter() - start
            if round_:
                times[(kind, k, s)].append(elapsed)
    print("| path | k | kernel | s1 ms | s2 ms (method) | s4 ms (method) | s2/s1 | s4/s1 |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, k in cases:
        med = {s: statistics.median(times[(kind, k, s)]) * 1e3 for s in (1, 2, 4)}
        how = {}
        for s in (2, 4):
            plan = plan_correlation((args.size, args.size), kernel_of(kind, k), stride=s, padding=k // 2)
            how[s] = f"{plan.method}/{plan.backend}" + ("+sub" if plan.full is not None else "")
        flag2 = " ok" if med[2] / med[1] <= 0.35 else ""
        flag4 = " ok" if med[4] / med[1] <= 0.12 else ""
        print(
            f"| {path} | {k} | {kind} | {med[1]:.3g} | {med[2]:.3g} ({how[2]}) | {med[4]:.3g} ({how[4]}) "
            f"| {med[2] / med[1]:.2f}{flag2} | {med[4] / med[1]:.2f}{flag4} |"
        )


if __name__ == "__main__":
    main()
