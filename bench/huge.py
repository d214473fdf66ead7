"""Huge images: streamed convcli against the in-memory path, libvips and dask-image (wall, CPU, peak RSS).

Not a test: run it by hand on a quiet machine, it writes multi-GB files under ``bench/out/`` (gitignored)
and deletes them afterwards::

    PYTHONPATH=src python bench/huge.py --sizes 16000 40000

Each tool runs in its own child under ``/usr/bin/time -v`` (wall seconds, user + system CPU seconds,
maximum resident set size). Inputs: 8-bit tiled (256x256, deflate) BigTIFF of uniform noise. Kernels:
3x3 and 15x15 Gaussians, a random 15x15. Tools that are not installed are skipped.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PYTHON = sys.executable


def make_input(path: Path, side: int) -> None:
    import tifffile

    rng = np.random.default_rng(0)

    def tiles():
        for _ in range((-(-side // 256)) ** 2):
            yield rng.integers(0, 256, (256, 256), dtype=np.uint8)

    tifffile.imwrite(
        path, tiles(), shape=(side, side), dtype=np.uint8, tile=(256, 256), compression="zlib", bigtiff=True
    )


def timed(command: list[str], env: dict | None = None) -> dict:
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env)
    text = run.stderr

    def field(name: str) -> float:
        match = re.search(rf"{re.escape(name)}: ([0-9.:]+)", text)
        return float(match.group(1)) if match and ":" not in match.group(1) else 0.0

    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)", text)
    seconds = 0.0
    if wall:
        for part in wall.group(1).split(":"):
            seconds = seconds * 60 + float(part)
    return {
        "ok": run.returncode == 0,
        "wall": seconds,
        "cpu": field("User time (seconds)") + field("System time (seconds)"),
        "rss_mib": field("Maximum resident set size (kbytes)") / 1024,
        "error": "" if run.returncode == 0 else (run.stdout + text).strip().splitlines()[0][:300],
    }


def gaussian(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


KERNELS = {
    "gauss3": gaussian(3, 0.8),
    "gauss15": gaussian(15, 2.5),
    "random15": np.random.default_rng(1).random((15, 15)) / 112.5,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[16000, 40000])
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS))
    parser.add_argument("--in-memory-up-to", type=int, default=16000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    vips = shutil.which("vips")
    rows = []
    for side in args.sizes:
        source = OUT / f"in{side}.tif"
        if not source.exists():
            make_input(source, side)
        for name in args.kernels:
            weights = KERNELS[name]
            kernel_file = OUT / f"{name}.npy"
            np.save(kernel_file, weights)
            target = OUT / "out.png"
            base = [
                PYTHON,
                "-m",
                "convcli",
                "filter",
                str(source),
                "-k",
                str(kernel_file),
                "-p",
                "same",
                "--pad-mode",
                "replicate",
                "--scale",
                "clip",
                "-o",
                str(target),
                "-q",
            ]
            runs = {"convcli --stream": base + ["--stream"]}
            if side <= args.in_memory_up_to:
                runs["convcli in memory"] = base + ["--no-stream", "--max-pixels", "0"]
            if vips:
                mask = OUT / f"{name}.mat"
                scale = 1.0
                ints = np.rint(weights * 10000)
                mask.write_text(
                    f"{weights.shape[1]} {weights.shape[0]} {ints.sum():g} 0\n"
                    + "\n".join(" ".join(f"{v:g}" for v in row) for row in ints)
                    + "\n"
                )
                del scale
                runs["vips conv"] = [
                    vips,
                    "conv",
                    str(source),
                    str(OUT / "vips.png"),
                    str(mask),
                    "--precision",
                    "float",
                ]
                if name.startswith("gauss"):
                    g1 = weights.sum(axis=0) / np.sqrt(weights.sum())
                    row = np.rint(weights[weights.shape[0] // 2] / weights[weights.shape[0] // 2].sum() * 10000)
                    sep = OUT / f"{name}-sep.mat"
                    sep.write_text(f"{len(row)} 1 {row.sum():g} 0\n" + " ".join(f"{v:g}" for v in row) + "\n")
                    del g1
                    runs["vips convsep"] = [
                        vips,
                        "convsep",
                        str(source),
                        str(OUT / "vips.png"),
                        str(sep),
                        "--precision",
                        "float",
                    ]
            for tool, command in runs.items():
                result = timed(command, env)
                rows.append((side, name, tool, result))
                print(
                    f"{side} {name:9} {tool:18} wall {result['wall']:7.1f} s  cpu {result['cpu']:7.1f} s  "
                    f"peak {result['rss_mib']:7.0f} MiB {'' if result['ok'] else 'FAILED ' + result['error']}",
                    flush=True,
                )
        source.unlink()
    for leftover in OUT.glob("*"):
        leftover.unlink()


# ---------------------------------------------------------------------------
# Estimates against measured peaks (python bench/huge.py --estimates)

ESTIMATE_CASES = [
    ("gray.tif", ["-k", "gaussian:15", "-p", "same"], "png"),
    ("gray.tif", ["-k", "3x3: 1,-2,3,-4,5,-6,7,-8,9", "--pad-mode", "circular", "-p", "1"], "tif"),
    ("gray.tif", ["-k", "gaussian:7", "-s", "2", "-p", "3"], "npy"),
    ("gray.tif", ["--chain", "-k", "gaussian:5", "-k", "laplacian", "-p", "same"], "png"),
    ("gray.png", ["-k", "sobel-x", "-p", "same", "--depth", "16"], "png"),
    ("rgb.tif", ["--color", "-k", "gaussian:9", "-p", "same"], "png"),
    ("array.npy", ["-k", "random15.npy", "-p", "same"], "npy"),
    ("array.npy", ["-k", "random15.npy", "--method", "direct"], "tif"),
]


def _estimate(source: Path, args: list[str], target: Path) -> int:
    """The estimate the CLI checks for this run (its memory guard, called with a recording check_memory)."""
    import convcli.limits as limits
    from convcli.cli import main

    seen = []
    original = limits.check_memory

    def record(estimate, max_memory=None):  # type: ignore[no-untyped-def]
        seen.append(estimate.total)

    limits.check_memory = record
    try:
        from click.testing import CliRunner

        CliRunner().invoke(
            main, ["filter", str(source), *args, "-o", str(target), "-q", "--no-stream", "--max-pixels", "0"]
        )
    finally:
        limits.check_memory = original
    return max(seen) if seen else 0


def estimates(sizes: list[int]) -> None:
    import tifffile
    from PIL import Image

    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    os.chdir(OUT)
    np.save(OUT / "random15.npy", KERNELS["random15"])
    print("| size | source | options | output | estimate MiB | peak MiB | estimate / peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for side in sizes:
        rng = np.random.default_rng(side)
        gray = rng.integers(0, 256, (side, side), dtype=np.uint8)
        tifffile.imwrite(OUT / "gray.tif", gray, tile=(256, 256), compression="zlib")
        Image.fromarray(gray).save(OUT / "gray.png", compress_level=1)
        tifffile.imwrite(OUT / "rgb.tif", rng.integers(0, 256, (side, side, 3), dtype=np.uint8), photometric="rgb")
        np.save(OUT / "array.npy", rng.random((side, side)))
        for name, args, suffix in ESTIMATE_CASES:
            target = OUT / f"est.{suffix}"
            estimate = _estimate(OUT / name, args, target)
            command = [
                PYTHON,
                "-m",
                "convcli",
                "filter",
                str(OUT / name),
                *args,
                "-o",
                str(target),
                "-q",
                "--no-stream",
                "--max-pixels",
                "0",
            ]
            result = timed(command, env)
            peak = result["rss_mib"]
            ratio = estimate / 2**20 / peak if peak else float("nan")
            print(
                f"| {side} | {name} | `{' '.join(args)}` | {suffix} | {estimate / 2**20:.0f} | {peak:.0f} | {ratio:.2f} |",
                flush=True,
            )
    for leftover in OUT.glob("*"):
        leftover.unlink()


if __name__ == "__main__":
    if "--estimates" in sys.argv:
        estimates([int(v) for v in sys.argv[sys.argv.index("--estimates") + 1 :]] or [1500, 3000, 6000])
    else:
        main()
