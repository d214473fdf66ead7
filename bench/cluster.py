"""Dask (--scheduler): batch overhead per image, throughput with 1 and 2 workers, the client's memory, and one
gigapixel image split across the workers against the single-machine streamed run.

Run from the repository root with Dask installed (``pip install -e '.[dask]'``)::

    python bench/cluster.py            # the full run (100,000 sources for the memory row, a 16000x16000 image)
    python bench/cluster.py --quick    # smaller counts, a 6000x6000 image
    python bench/cluster.py --only throughput,gigapixel   # sections: overhead, throughput, memory, gigapixel, sent

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
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def convcli(args: list[str], cwd: Path, cpu: list[float] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB of the client) of one ``convcli`` run; its CPU seconds appended to ``cpu``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "convcli", *args, "-q"]
    timer = shutil.which("time") and Path("/usr/bin/time").exists()
    if timer:
        command = ["/usr/bin/time", "-f", "%U %S %M", *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"convcli {' '.join(args)} failed: {done.stderr[-500:]}")
    if timer:
        user, system, kib = done.stderr.strip().splitlines()[-1].split()
        peak, used = int(kib) / 1024, float(user) + float(system)
    else:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = after.ru_maxrss / 1024
        used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if cpu is not None:
        cpu.append(used)
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


def worker_pids(cluster: Any) -> list[int]:
    from distributed import Client

    with Client(cluster.scheduler_address, timeout=30) as client:
        return list(client.run(os.getpid).values())


def process_cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def big_tiff(path: Path, side: int) -> Path:
    """An 8-bit ``side`` x ``side`` tiled (256x256) BigTIFF of smooth noise, written tile row by tile row."""
    import tifffile

    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 256, (side // 16 + 2, side // 16 + 2)).astype(np.float32)

    def bands():
        for top in range(0, side, 256):
            rows = np.arange(top, min(side, top + 256)) / 16
            cols = np.arange(side) / 16
            band = coarse[rows.astype(int)][:, cols.astype(int)] + rng.integers(0, 32, (len(rows), side))
            yield np.clip(band, 0, 255).astype(np.uint8)

    def tiles():
        for band in bands():
            padded = np.zeros((256, -(-side // 256) * 256), dtype=np.uint8)
            padded[: band.shape[0], :side] = band
            for left in range(0, side, 256):
                yield padded[:, left : left + 256]

    tifffile.imwrite(path, tiles(), shape=(side, side), dtype=np.uint8, tile=(256, 256), bigtiff=True)
    return path


def big_png(path: Path, side: int) -> Path:
    """The picture of :func:`big_tiff` as a PNG (decoded whole: a split run sends the workers their rows)."""
    import tifffile
    from PIL import Image

    Image.fromarray(tifffile.imread(big_tiff(path.with_suffix(".tif"), side))).save(path, compress_level=1)
    return path


def gigapixel(
    work: Path, side: int, cluster: Any, repeat: int, png: bool = False
) -> list[tuple[str, float, float, float]]:
    """The streamed single-machine run against the same run split across the cluster's workers."""
    source = big_png(work / "big.png", side) if png else big_tiff(work / "big.tif", side)
    kind = "PNG (rows sent by the client)" if png else "tiled BigTIFF"
    common = ["filter", str(source), "-k", "gaussian:15", "--stream", "--vmin", "0", "--vmax", "1"]
    pids = worker_pids(cluster)
    rows = []
    outputs = {}
    for label, extra in (
        ("streamed, this machine", []),
        (f"split, Dask {len(pids)} workers", ["--scheduler", cluster.scheduler_address]),
    ):
        walls, peaks, cpus = [], [], []
        for _ in range(repeat):
            target = work / f"{label.split(',')[0]}.png"
            before = process_cpu(pids)
            used: list[float] = []
            wall, peak = convcli([*common, "-o", str(target), *extra], work, used)
            walls.append(wall)
            peaks.append(peak)
            cpus.append(used[0] + (process_cpu(pids) - before if extra else 0.0))
        outputs[label] = target.read_bytes()
        row = (f"{side}x{side} 8-bit {kind}, gaussian:15, {label}", statistics.median(walls), max(peaks))
        rows.append((*row, statistics.median(cpus)))
        print(f"{row[0]:<72} {row[1]:8.2f} {row[2]:11.0f} {statistics.median(cpus):8.1f}", flush=True)
    same = len(set(outputs.values())) == 1
    print(f"  the split file is the streamed one byte for byte: {same}")
    if not same:
        raise SystemExit("the split run wrote a different file")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="overhead,throughput,memory,gigapixel", help="sections, comma-separated")
    parser.add_argument("--side", type=int, default=None, help="the gigapixel image's side (16000; --quick 6000)")
    options = parser.parse_args()
    sections = set(options.only.split(","))
    import logging

    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)

    small, large = (100, 400) if options.quick else (250, 1000)
    many = 10_000 if options.quick else 100_000
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="convcli-cluster-bench-") as scratch:
        work = Path(scratch)
        rows = []
        clusters = {}
        try:
            for workers in (1, 2):
                # One engine thread per worker: N workers use N cores, so 1 against 2 workers measures Dask's scaling.
                clusters[workers] = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                    # One engine thread at a time per worker (the tasks keep the client's cuts): N workers, N cores.
                    env={"CONVCLI_POOL_THREADS": "1"},
                )
            print(f"{'run':<72} {'wall s':>8} {'client MiB':>11} {'CPU s':>8}")

            def row(label: str, args: list[str]) -> float:
                seconds, peak = median_run(args, work, options.repeat)
                rows.append((label, seconds, peak))
                print(f"{label:<72} {seconds:8.2f} {peak:11.0f}", flush=True)
                return seconds

            if "overhead" in sections:
                tiny_small = images(work / "tiny-small", small, 8)
                tiny_large = images(work / "tiny-large", large, 8)
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
                    f"  Dask's overhead per image over --jobs 1, on 2 workers: {(2 * slope_dask - slope_serial) * 1000:.2f}"
                    " ms of worker time"
                )
            if "throughput" in sections:
                # Two batch sizes: the slope (seconds per extra image) leaves out the fixed costs of a run
                # (starting Python, importing Dask's client, connecting), which do not scale with workers.
                counts = (48, 192) if options.quick else (96, 384)
                lists = {count: images(work / f"photos{count}", count, 512) for count in counts}
                walls = {}
                for workers in (1, 2):
                    for count in counts:
                        blur = ["filter", "--from", str(lists[count]), "-k", "gaussian:15"]
                        walls[(workers, count)] = row(
                            f"gaussian:15 on {count} 512x512 images, dask {workers} worker{'s' if workers > 1 else ''}",
                            [*blur, "--scheduler", clusters[workers].scheduler_address],
                        )
                small_count, large_count = counts
                rates = {
                    w: (large_count - small_count) / (walls[(w, large_count)] - walls[(w, small_count)]) for w in (1, 2)
                }
                whole = walls[(1, large_count)] / walls[(2, large_count)]
                print(
                    f"  throughput 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x from the slopes "
                    f"({rates[1]:.1f} and {rates[2]:.1f} images/s), {whole:.2f}x on the {large_count} images"
                )
            if "memory" in sections:
                one_file = images(work / "one", 1, 8).parent / "i000000.png"
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
            if "gigapixel" in sections:
                side = options.side or (6000 if options.quick else 16000)
                gigapixel(work, side, clusters[2], options.repeat)
            if "sent" in sections:
                gigapixel(work, options.side or 6000, clusters[2], options.repeat, png=True)
        finally:
            for cluster in clusters.values():
                cluster.close()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
