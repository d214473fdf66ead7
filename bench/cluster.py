"""Batches on Dask (--scheduler): overhead per image, throughput with 1 and 2 workers, the client's memory.

Run from the repository root with Dask installed (``pip install -e '.[dask]'``)::

    python bench/cluster.py            # the full run (100,000 sources for the memory row)
    python bench/cluster.py --quick    # smaller counts

Each row runs the real ``convcli filter`` command (a fresh process) against a LocalCluster that this script
starts on 127.0.0.1 (so the cluster's start-up is not counted), or with ``--jobs`` for comparison; wall
times are medians of ``--repeat`` runs; the client's peak RSS is read by ``/usr/bin/time -v`` when present,
else by ``resource.getrusage`` of the child.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def convcli(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB of the client) of one ``convcli`` run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "convcli", *args, "-q"]
    timer = shutil.which("time") and Path("/usr/bin/time").exists()
    if timer:
        command = ["/usr/bin/time", "-f", "%M", *command]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"convcli {' '.join(args)} failed: {done.stderr[-500:]}")
    if timer:
        peak = int(done.stderr.strip().splitlines()[-1]) / 1024
    else:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak


def images(folder: Path, count: int, side: int) -> Path:
    """``count`` random PNGs of ``side`` pixels and a --from list of them."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for number in range(count):
        name = folder / f"i{number:06d}.png"
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(name)
        names.append(str(name))
    listing = folder / "list.txt"
    listing.write_text("\n".join(names) + "\n")
    return listing


def median_run(args: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        shutil.rmtree(cwd / "out", ignore_errors=True)
        runs.append(convcli([*args, "--outdir", "out"], cwd))
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    import logging

    from distributed import LocalCluster

    small, large = (100, 400) if options.quick else (250, 1000)
    many = 10_000 if options.quick else 100_000
    with tempfile.TemporaryDirectory(prefix="convcli-cluster-bench-") as scratch:
        work = Path(scratch)
        tiny_small = images(work / "tiny-small", small, 8)
        tiny_large = images(work / "tiny-large", large, 8)
        photos = images(work / "photos", 48 if options.quick else 96, 512)
        rows = []
        clusters = {}
        try:
            for workers in (1, 2):
                clusters[workers] = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            print(f"{'run':<52} {'wall s':>8} {'client MiB':>11}")

            def row(label: str, args: list[str]) -> float:
                seconds, peak = median_run(args, work, options.repeat)
                rows.append((label, seconds, peak))
                print(f"{label:<52} {seconds:8.2f} {peak:11.0f}", flush=True)
                return seconds

            tiny = ["filter", "--from", "{list}", "-k", "1"]
            times = {}
            for where, extra in (
                ("--jobs 1", ["--jobs", "1"]),
                ("dask, 2 workers", ["--scheduler", clusters[2].scheduler_address]),
            ):
                for count, listing in ((small, tiny_small), (large, tiny_large)):
                    args = [a.replace("{list}", str(listing)) for a in tiny] + extra
                    times[(where, count)] = row(f"{count} tiny images (8x8), {where}", args)
            for where in ("--jobs 1", "dask, 2 workers"):
                per_image = (times[(where, large)] - times[(where, small)]) / (large - small)
                print(f"  time per image, {where}: {per_image * 1000:.2f} ms")
            slope_serial = (times[("--jobs 1", large)] - times[("--jobs 1", small)]) / (large - small)
            slope_dask = (times[("dask, 2 workers", large)] - times[("dask, 2 workers", small)]) / (large - small)
            print(
                f"  Dask's overhead per image over --jobs 1, on 2 workers: {(2 * slope_dask - slope_serial) * 1000:.2f} ms of worker time"
            )
            blur = ["filter", "--from", str(photos), "-k", "gaussian:15"]
            one = row(
                "gaussian:15 on 512x512 photos, dask 1 worker", [*blur, "--scheduler", clusters[1].scheduler_address]
            )
            two = row(
                "gaussian:15 on 512x512 photos, dask 2 workers", [*blur, "--scheduler", clusters[2].scheduler_address]
            )
            print(f"  throughput 2 workers / 1 worker: {one / two:.2f}x")
            one_file = work / "tiny-small" / "i000000.png"
            listing = work / "many.txt"
            listing.write_text((str(one_file) + "\n") * many)
            row(
                f"{many} sources (one 8x8 file listed), dask 2 workers",
                [
                    "filter",
                    "--from",
                    str(listing),
                    "-k",
                    "1",
                    "--name",
                    "{index}.png",
                    "--scheduler",
                    clusters[2].scheduler_address,
                ],
            )
        finally:
            for cluster in clusters.values():
                cluster.close()


if __name__ == "__main__":
    main()
