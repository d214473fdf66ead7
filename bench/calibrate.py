"""Cost model against measurement: each method's estimated and measured time, NumPy path.

    python bench/calibrate.py                 # 1024 and 4096, k = 3..31, strides 1, 2, 4
    python bench/calibrate.py --sizes 2048 --ks 3,7 --strides 1,2
    CONVCLI_NO_CALIBRATION=1 python bench/calibrate.py   # the fixed model (no per-machine FFT tile table)

For every case and every method that can run it, prints the model's estimate
(``convcli.engine.plan``), the measured median and their ratio. The constants
in plan.py and strips.py are set so the ratio is near 1 where methods compete
(a ratio that is off by the same factor for every method does not change the
choice). Medians of --runs, methods interleaved round-robin. At the end, one line per case:
the chosen method's measured time over the fastest's (target: every case <= 1.1), and how many
cases meet it, for the model as used (this machine's calibration) and, from the same measurements,
for the fixed model and for the calibration without its tap-by-tap scales.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")
os.environ["CONVCLI_NO_OPENCV"] = "1"

import numpy as np  # noqa: E402

from convcli.engine import correlate2d  # noqa: E402
from convcli.engine.plan import _analysis, _costs, separable_rtol  # noqa: E402
from convcli.engine.tap_probe import kernel_for as kernel_of  # noqa: E402  (the same kernels the probe times)
from convcli.shapes import conv_geometry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1024,4096")
    parser.add_argument("--ks", default="3,7,15,31")
    parser.add_argument("--strides", default="1,2,4")
    parser.add_argument("--kinds", default="gaussian,random")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    summary: list[tuple] = []
    by_model: dict[str, list[float]] = {name: [] for name in ALTERNATIVES}
    from convcli.engine import calibration

    table = calibration.fft_table(1 << 30) if calibration.enabled() else {}
    print(f"FFT tile table (ns per element): {table or 'off (fixed model)'}\n")
    print("| size | k | kernel | stride | method | model ms | measured ms | measured/model | chosen |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        image = np.random.default_rng(0).random((size, size), dtype=np.float32)
        for k in map(int, args.ks.split(",")):
            for kind in args.kinds.split(","):
                kernel = kernel_of(kind, k)
                terms = _analysis(kernel.tobytes(), kernel.shape, separable_rtol(np.float32))
                for stride in map(int, args.strides.split(",")):
                    geometry = conv_geometry((size, size), kernel.shape, (stride, stride), (k // 2, k // 2), (1, 1))
                    costs = {m: c for (m, b), c in _costs(geometry, kernel, terms, False).items() if b == "numpy"}
                    others = {name: _numpy_costs(geometry, kernel, terms, name) for name in ALTERNATIVES}
                    times: dict[str, list[float]] = {m: [] for m in costs}
                    for round_ in range(args.runs + 1):
                        for m in costs:
                            start = time.perf_counter()
                            correlate2d(image, kernel, stride=stride, padding=k // 2, method=m, backend="numpy")
                            if round_:
                                times[m].append(time.perf_counter() - start)
                    medians = {m: statistics.median(t) * 1e3 for m, t in times.items()}
                    chosen = min(costs, key=costs.__getitem__)
                    fastest = min(medians, key=medians.__getitem__)
                    summary.append((size, k, kind, stride, chosen, fastest, medians[chosen] / medians[fastest]))
                    for name, alternative in others.items():
                        pick = min(alternative, key=alternative.__getitem__)
                        by_model[name].append(medians[pick] / medians[fastest])
                    for m in costs:
                        flag = ("chosen" if m == chosen else "") + (" fastest" if m == fastest else "")
                        print(
                            f"| {size} | {k} | {kind} | {stride} | {m} | {costs[m] / 1e6:.3g} | {medians[m]:.3g} "
                            f"| {medians[m] / (costs[m] / 1e6):.2f} | {flag.strip()} |",
                            flush=True,
                        )

    print("\n| size | k | kernel | stride | chosen | fastest | chosen / fastest |")
    print("|---|---|---|---|---|---|---|")
    for size, k, kind, stride, chosen, fastest, ratio in summary:
        flag = "" if ratio <= 1.1 else " **over**"
        print(f"| {size} | {k} | {kind} | {stride} | {chosen} | {fastest} | {ratio:.2f}{flag} |")
    met = sum(ratio <= 1.1 for *_, ratio in summary)
    worst = max(ratio for *_, ratio in summary)
    print(f"\n{met} of {len(summary)} cases within 1.1x of the fastest; worst {worst:.2f}")
    for name, ratios in by_model.items():
        print(
            f"{name}, on the same measurements: {sum(r <= 1.1 for r in ratios)} of {len(ratios)} within 1.1x; "
            f"worst {max(ratios):.2f}"
        )


#: Other models judged on the same measurements: the fixed one, and this machine's without the tap scales.
ALTERNATIVES = ("fixed model", "calibrated, taps unscaled")


def _numpy_costs(geometry, kernel, terms, name):  # type: ignore[no-untyped-def]
    from convcli.engine import calibration

    if name == "fixed model":
        costs = _costs(geometry, kernel, terms, False, raw=True)
    else:
        held = calibration._TAPS
        calibration._TAPS = {}
        try:
            costs = _costs(geometry, kernel, terms, False)
        finally:
            calibration._TAPS = held
    return {m: c for (m, b), c in costs.items() if b == "numpy"}


if __name__ == "__main__":
    main()
