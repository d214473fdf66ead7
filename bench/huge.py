"""Huge images: streamed convcli against the in-memory path, libvips and dask-image (wall, CPU, peak RSS).

Not a test: run it by hand on a quiet machine, it writes multi-GB files under ``bench/out/`` (gitignored)
and deletes them afterwards::

    PYTHONPATH=src python bench/huge.py --sizes 16000 40000 --tools stream memory vips --vips-best --tiff-out
    PYTHONPATH=src python bench/huge.py --stream-estimates 4000 16000 40000   # streamed estimates vs peaks
    PYTHONPATH=src python bench/huge.py --estimates 1500 4000 8000            # in-memory estimates vs peaks

Each tool runs in its own child under ``/usr/bin/time -v`` (wall seconds, user + system CPU seconds,
maximum resident set size). Inputs: 8-bit tiled (256x256, deflate) BigTIFF of uniform noise. Kernels:
3x3 and 15x15 Gaussians, a random 15x15. Outputs: 8-bit PNG stored without compression (``--compression 0``,
``[compression=0]``: noise does not compress, and the codec should not decide the comparison), borders replicated.
Tools that are not installed are skipped.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # the estimates below are this checkout's, as the timed children run it
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


def _tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and all its descendants now (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def timed(command: list[str], env: dict | None = None) -> dict:
    """Run ``command`` under ``/usr/bin/time -v``; wall, CPU (children included), peak RSS of the process tree."""
    process = subprocess.Popen(
        ["/usr/bin/time", "-v", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.05)
    stdout, text = process.communicate()

    def field(name: str) -> float:
        match = re.search(rf"{re.escape(name)}: ([0-9.]+)\n", text)
        return float(match.group(1)) if match else 0.0

    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)", text)
    seconds = 0.0
    if wall:
        for part in wall.group(1).split(":"):
            seconds = seconds * 60 + float(part)
    largest = field("Maximum resident set size (kbytes)") / 1024
    return {
        "ok": process.returncode == 0,
        "wall": seconds,
        "cpu": field("User time (seconds)") + field("System time (seconds)"),
        # /usr/bin/time's maximum is per process; the sampled sum covers worker processes (dask).
        "rss_mib": max(largest, peak / 2**20),
        "stdout": stdout,
        "error": "" if process.returncode == 0 else (stdout + text).strip().splitlines()[0][:300],
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
    parser.add_argument("--dask-up-to", type=int, default=40000)
    parser.add_argument("--tools", nargs="+", default=["stream", "memory", "vips", "dask"])
    parser.add_argument("--keep-input", action="store_true", help="keep bench/out/in<size>.tif for another run")
    parser.add_argument(
        "--vips-best", action="store_true", help="only vips's best operation per kernel (convsep for the Gaussians)"
    )
    parser.add_argument(
        "--tiff-out", action="store_true", help="also convcli --stream into a tiled float32 TIFF (-o x.tif, 256x256)"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    vips = shutil.which("vips") if "vips" in args.tools else None
    try:
        import dask_image  # noqa: F401

        dask = "dask" in args.tools
    except ImportError:
        dask = False
    print("| size | kernel | tool | wall s | CPU s | peak RSS MiB | note |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for side in args.sizes:
        source = OUT / f"in{side}.tif"
        if not source.exists():
            make_input(source, side)
        for name in args.kernels:
            weights = KERNELS[name]
            kernel_file = OUT / f"{name}.npy"
            np.save(kernel_file, weights)
            runs: dict[str, tuple[list[str], Path | None]] = {}

            common = [PYTHON, "-m", "convcli", "filter", str(source), "-k", str(kernel_file), "-p", "same"]
            common += ["--pad-mode", "replicate", "--scale", "clip", "--compression", "0", "-q"]

            def convcli(target: Path, *extra: str, common: list[str] = common) -> list[str]:
                return [*common, "-o", str(target), *extra]

            if "stream" in args.tools:
                runs["convcli --stream"] = (convcli(OUT / "stream.png", "--stream", "--json"), OUT / "stream.png")
                if args.tiff_out:
                    runs["convcli --stream -o .tif"] = (convcli(OUT / "stream.tif", "--stream", "--json"), None)
            if "memory" in args.tools and side <= args.in_memory_up_to:
                runs["convcli in memory"] = (
                    convcli(OUT / "memory.png", "--no-stream", "--max-pixels", "0"),
                    OUT / "memory.png",
                )
            if vips:
                ints = np.rint(weights * 10000)
                mask = OUT / f"{name}.mat"
                mask.write_text(
                    f"{weights.shape[1]} {weights.shape[0]} {ints.sum():g} 0\n"
                    + "\n".join(" ".join(f"{v:g}" for v in row) for row in ints)
                    + "\n"
                )
                if not (args.vips_best and name.startswith("gauss")):
                    runs["vips conv"] = (
                        [vips, "conv", str(source), str(OUT / "vips.png[compression=0]"), str(mask)],
                        None,
                    )
                if name.startswith("gauss"):
                    middle = weights[weights.shape[0] // 2]
                    row = np.rint(middle / middle.sum() * 10000)
                    sep = OUT / f"{name}-sep.mat"
                    sep.write_text(f"{len(row)} 1 {row.sum():g} 0\n" + " ".join(f"{v:g}" for v in row) + "\n")
                    runs["vips convsep"] = (
                        [vips, "convsep", str(source), str(OUT / "vips.png[compression=0]"), str(sep)],
                        None,
                    )
            if dask and side <= args.dask_up_to:
                script = str(ROOT / "bench" / "dask_filter.py")
                runs["dask-image (2 workers)"] = (
                    [PYTHON, script, str(source), str(kernel_file), str(OUT / "dask.npy")],
                    None,
                )
            for tool, (command, _target) in runs.items():
                result = timed(command, env)
                note = "" if result["ok"] else "FAILED " + result["error"]
                if tool.startswith("convcli --stream") and result["ok"]:
                    import json

                    record = json.loads(result["stdout"])
                    estimate = record["streamed"]["estimate"] / 2**20
                    note = f"estimate {estimate:.0f} MiB ({estimate / result['rss_mib']:.2f}x the peak)"
                if tool == "convcli in memory" and result["ok"]:
                    same = (OUT / "stream.png").read_bytes() == (OUT / "memory.png").read_bytes()
                    note = "the same bytes as --stream" if same else "DIFFERENT bytes from --stream"
                    options = ["-k", str(kernel_file), "-p", "same", "--pad-mode", "replicate", "--compression", "0"]
                    estimate = _estimate(source, [*options, "--scale", "clip"], OUT / "memory.png") / 2**20
                    note += f"; estimate {estimate:.0f} MiB ({estimate / result['rss_mib']:.2f}x the peak)"
                print(
                    f"| {side} | {name} | {tool} | {result['wall']:.1f} | {result['cpu']:.1f} | "
                    f"{result['rss_mib']:.0f} | {note} |",
                    flush=True,
                )
            for produced in ("stream.png", "stream.tif", "memory.png", "vips.png", "dask.npy"):
                (OUT / produced).unlink(missing_ok=True)
        if not args.keep_input:
            source.unlink()
    for leftover in OUT.glob("*"):
        if not (args.keep_input and leftover.name.startswith("in")):
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
    ("gray.tif", ["pool", "--op", "max", "--size", "2"], "png"),
    ("array.npy", ["pool", "--op", "mean", "--size", "3", "-s", "1", "-p", "1"], "npy"),
]


def _estimate(source: Path, args: list[str], target: Path) -> int:
    """The estimate the CLI checks for ``filter`` (or ``pool`` when ``args`` starts with it) on ``source``."""
    command = "filter"
    if args and args[0] == "pool":
        command, args = "pool", args[1:]
    return _estimate_of(command, source, args, target)


def _estimate_of(command_name: str, source: Path, args: list[str], target: Path) -> int:
    """The estimate the CLI checks for this run (its memory guard, called with a recording check_memory)."""
    import convcli.limits as limits
    from convcli.cli import main

    seen = []
    original = limits.check_memory

    class Seen(Exception):
        pass

    def record(estimate, max_memory=None):  # type: ignore[no-untyped-def]
        seen.append(estimate.total)
        raise Seen  # the estimate is known from the header: stop before decoding

    limits.check_memory = record
    try:
        from click.testing import CliRunner

        CliRunner().invoke(
            main, [command_name, str(source), *args, "-o", str(target), "-q", "--no-stream", "--max-pixels", "0"]
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
            verb, rest = ("pool", args[1:]) if args[0] == "pool" else ("filter", args)
            command = [
                PYTHON,
                "-m",
                "convcli",
                verb,
                str(OUT / name),
                *rest,
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


# ---------------------------------------------------------------------------
# Streamed estimates against measured peaks (python bench/huge.py --stream-estimates W ...)

#: (name, source, call, destination suffix): each runs in its own child through the library (convcli.*_file).
STREAM_CASES = [
    ("filter gaussian:15 -> png", "gray.tif", "filter_file(src, dst, 'gaussian:15', padding='same')", "png"),
    ("filter random 15x15 -> tiled tif", "gray.tif", "filter_file(src, dst, RANDOM, padding='same')", "tif"),
    ("filter gaussian:5 then laplacian -> npy", "gray.tif", "filter_file(src, dst, ['gaussian:5', 'laplacian'])",
     "npy"),
    ("filter --color gaussian:9 -> png", "rgb.tif", "filter_file(src, dst, 'gaussian:9', color=True)", "png"),
    ("filter gaussian:7 float64 -> npy", "array.npy", "filter_file(src, dst, 'gaussian:7', padding='same')", "npy"),
    ("pool mean 3 -> png", "gray.tif", "pool_file(src, dst, 3, stride=1, padding=1, op='mean')", "png"),
    ("upsample bilinear x2 -> png", "gray.tif", "upsample_file(src, dst, 'bilinear', stride=2, padding=1)", "png"),
    ("filter gaussian:15 -> zarr", "gray.tif", "filter_file(src, dst, 'gaussian:15', padding='same')", "zarr"),
    ("filter gaussian:15 zarr -> png", "gray.zarr", "filter_file(src, dst, 'gaussian:15', padding='same')", "png"),
]  # fmt: skip

_CHILD = """
import json, sys
import numpy as np
from convcli import filter_file, pool_file, upsample_file
RANDOM = np.load(sys.argv[3])
src, dst = sys.argv[1], sys.argv[2]
done = {call}
print(json.dumps({{"estimate": done.estimate.total, "rows": done.rows}}))
"""


def stream_estimates(widths: list[int], rows: int = 1024) -> None:
    """Each streamed case on a ``rows`` x width image: the estimate the run checked, the measured peak RSS.

    The peak of a streamed run depends on the width (the strips' rows x width), not on the height, so the
    images are short: the widths are those of the huge images.
    """
    import json

    import tifffile

    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    np.save(OUT / "random15.npy", KERNELS["random15"])
    try:
        import zarr  # noqa: F401

        has_zarr = True
    except ImportError:
        has_zarr = False
    print("| width | case | estimate MiB | peak MiB | estimate / peak | strip rows |")
    print("| --- | --- | --- | --- | --- | --- |")
    for width in widths:
        rng = np.random.default_rng(width)
        gray = rng.integers(0, 256, (rows, width), dtype=np.uint8)
        tifffile.imwrite(OUT / "gray.tif", gray, tile=(256, 256), compression="zlib")
        rgb = rng.integers(0, 256, (rows, width, 3), dtype=np.uint8)
        tifffile.imwrite(OUT / "rgb.tif", rgb, photometric="rgb", tile=(256, 256), compression="zlib")
        np.save(OUT / "array.npy", rng.random((rows, width)))
        if has_zarr:
            stored = zarr.open_array(str(OUT / "gray.zarr"), mode="w", shape=gray.shape, chunks=(256, 256), dtype="u1")
            stored[...] = gray
        for name, source, call, suffix in STREAM_CASES:
            if "zarr" in (suffix, source.rsplit(".", 1)[1]) and not has_zarr:
                continue
            target = OUT / f"est.{suffix}"
            script = _CHILD.format(call=call)
            result = timed([PYTHON, "-c", script, str(OUT / source), str(target), str(OUT / "random15.npy")], env)
            if not result["ok"]:
                print(f"| {width} | {name} | | | FAILED {result['error']} | |", flush=True)
                continue
            record = json.loads(result["stdout"])
            estimate, peak = record["estimate"] / 2**20, result["rss_mib"]
            print(
                f"| {width} | {name} | {estimate:.0f} | {peak:.0f} | {estimate / peak:.2f} | {record['rows']} |",
                flush=True,
            )
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    for leftover in OUT.glob("*"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()


if __name__ == "__main__":
    if "--stream-estimates" in sys.argv:
        stream_estimates([int(v) for v in sys.argv[sys.argv.index("--stream-estimates") + 1 :]] or [4000, 16000, 40000])
    elif "--estimates" in sys.argv:
        estimates([int(v) for v in sys.argv[sys.argv.index("--estimates") + 1 :]] or [1500, 3000, 6000])
    else:
        main()
